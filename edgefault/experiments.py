"""`edgefault eval`: leak-safe evaluation protocols on a dataset manifest.

Every recording is cut into contiguous blocks *before* windowing (with a gap of one window), so
no test window overlaps training or calibration signal. Models are trained, packed into a real
bundle and scored through ``Runtime.push`` exactly as on the device.
"""
from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

HEALTHY = ("normal", "healthy")


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", required=True, help="CSV with path,label[,fs,channels,group columns]")
    p.add_argument("--root", help="folder that relative manifest paths are relative to")
    p.add_argument("--task", default="anomaly", choices=["anomaly"], help="what to evaluate")
    p.add_argument("--method", default="gaussian", choices=["gaussian", "vae"],
                   help="vae also runs the gaussian on the same blocks, reported under 'gaussian'")
    p.add_argument("--arch", default="cnn", choices=["cnn", "transformer"], help="vae architecture")
    p.add_argument("--epochs", type=int, default=200, help="vae: maximum epochs (early stopping)")
    p.add_argument("--seed", type=int, default=0, help="vae: random seed")
    p.add_argument("--protocol", default="split", choices=["split", "cross-group", "logo"],
                   help="split: chronological blocks of each recording; cross-group: train on "
                        "--train-groups, test on --test-groups; logo: leave one group out")
    p.add_argument("--group", default="load_hp", help="group column for cross-group / logo (default load_hp)")
    p.add_argument("--train-groups", help="comma-separated group values to train on (cross-group)")
    p.add_argument("--test-groups", help="comma-separated group values to test on (cross-group; default: the rest)")
    p.add_argument("--healthy-label", nargs="+", default=list(HEALTHY))
    p.add_argument("--fractions", default="0.5,0.2,0.3",
                   help="train,calib,test fractions of each healthy recording, in time order (default 0.5,0.2,0.3)")
    p.add_argument("--fs", type=float, help="model sample rate (default: the most common rate in the manifest)")
    p.add_argument("--channels", default=None, help="channels, e.g. DE or DE,FE (default: DE if present)")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--hop", type=int, help="default window/2")
    p.add_argument("--bands", type=int, default=16)
    p.add_argument("--target-far", type=float, default=0.01)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--out", help="also write the JSON report here")


def _parse_fractions(s: str) -> list[float]:
    try:
        f = [float(v) for v in s.split(",")]
    except ValueError:
        raise InputError(f"--fractions {s!r}: expected three numbers like 0.5,0.2,0.3") from None
    if len(f) != 3 or min(f) <= 0 or abs(sum(f) - 1.0) > 1e-6:
        raise InputError(f"--fractions {s!r}: expected three positive fractions summing to 1")
    return f


class _Data:
    """Loads each manifest row once at the model rate."""

    def __init__(self, rows: list[Any], fs: float, channels: list[str]) -> None:
        self.rows, self.fs, self.channels = rows, fs, channels
        self._cache: dict[int, np.ndarray] = {}

    def signal(self, i: int) -> np.ndarray:
        if i not in self._cache:
            from .readers import read_recording

            r = self.rows[i]
            rec = read_recording(r.path, channels=self.channels, fs=self.fs, default_fs=r.fs)
            self._cache[i] = rec.data
        return self._cache[i]


def _top_channels(rt: Any, x: np.ndarray) -> list[str]:
    """Top channel of ``contrib`` for every anomalous valid window of one block."""
    rt.reset()
    out = []
    data = x if x.shape[1] > 1 else x[:, 0]
    for s in range(0, data.shape[0], 4096):
        for e in rt.push(data[s:s + 4096]):
            if e.valid and e.anomaly:
                ch = e.contrib.get("channel", {})
                if ch:
                    out.append(max(ch, key=ch.get))
    return out


def _train_vae_bundle(data: _Data, train_recs: list[Any], calib_frac: float, args: argparse.Namespace,
                      out: Path) -> tuple[Any, float, str, int, int, dict[str, Any]]:
    from .train.vae import pack_vae, train_vae, vae_spec

    hop = args.hop or args.window // 2
    spec = vae_spec(data.fs, data.channels, window=args.window, hop=hop)
    res = train_vae(train_recs, spec, arch=args.arch, epochs=args.epochs, seed=args.seed,
                    target_far=args.target_far, calib_fraction=calib_frac, val_fraction=0.2)
    bundle = pack_vae(res, out, k=args.k, n=args.n)
    extra = {"vae": {k: res.info[k] for k in ("arch", "epochs_run", "best_epoch", "stopped", "train_seconds",
                                              "n_fit_windows", "n_val_windows", "n_parameters")},
             "mflop_per_window": bundle.model["mflop_per_window"],
             "onnx_score_max_rel_diff": res.parity["score_max_rel_diff"]}
    return (bundle, res.calibration.threshold, res.calibration.method, res.info["n_fit_windows"],
            res.info["n_calib_windows"], extra)


def _score_block(rt: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream one contiguous block through a fresh runtime state; (scores, anomaly, alarm)."""
    rt.reset()
    ev = []
    step = 4096
    data = x if x.shape[1] > 1 else x[:, 0]
    for s in range(0, data.shape[0], step):
        ev.extend(rt.push(data[s:s + step]))
    ok = [e for e in ev if e.valid]
    return (np.array([e.score for e in ok], dtype=np.float64), np.array([e.anomaly for e in ok], dtype=bool),
            np.array([e.alarm for e in ok], dtype=bool))


def _run_fold(data: _Data, train_idx: list[int], test_healthy_full: list[int], test_fault: list[int],
              fractions: list[float], args: argparse.Namespace, healthy_test_from_train: bool) -> dict[str, Any]:
    from .evaluation import contiguous_blocks
    from .metrics import accuracy, auroc, confusion_matrix, macro_f1
    from .readers import Recording
    from .runtime import Runtime
    from .spec import FeatureSpec
    from .train.anomaly import pack_gaussian, train_gaussian

    window = args.window
    hop = args.hop or window // 2
    spec = FeatureSpec.for_anomaly(data.fs, data.channels, window=window, hop=hop, n_bands=args.bands)
    train_recs, healthy_test_blocks, blocks_desc = [], [], []
    for i in train_idx:
        x = data.signal(i)
        blocks = contiguous_blocks(x.shape[0], fractions, gap=window, names=["train", "calib", "test"],
                                   min_len=window)
        b = {name: (s, e) for name, s, e in blocks}
        (s0, _), (_, e1) = b["train"], b["calib"]
        # train_gaussian cuts train|calib itself with the same gap: hand it train+gap+calib.
        train_recs.append(Recording(data=x[s0:e1], fs=data.fs, channels=tuple(data.channels),
                                    path=str(data.rows[i].path)))
        if healthy_test_from_train:
            healthy_test_blocks.append((i, *b["test"]))
        blocks_desc.append({"file": data.rows[i].path.name, **{k: [int(v[0]), int(v[1])] for k, v in b.items()}})
    for i in test_healthy_full:
        healthy_test_blocks.append((i, 0, data.signal(i).shape[0]))
    calib_frac = fractions[1] / (fractions[0] + fractions[1])
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.method == "vae":
            bundle, thr, cal_method, n_train, n_calib, extra = _train_vae_bundle(
                data, train_recs, calib_frac, args, Path(tmp) / "eval.efb")
        else:
            result = train_gaussian(train_recs, spec, target_far=args.target_far, calib_fraction=calib_frac)
            bundle = pack_gaussian(result, Path(tmp) / "eval.efb", k=args.k, n=args.n)
            thr, cal_method = result.calibration.threshold, result.calibration.method
            n_train, n_calib = result.info["n_train_windows"], result.info["n_calib_windows"]
        rt = Runtime(bundle)
    neg_scores, neg_anom, neg_alarm = [], [], []
    for i, s, e in healthy_test_blocks:
        sc, an, al = _score_block(rt, data.signal(i)[s:e])
        neg_scores.append(sc)
        neg_anom.append(an)
        neg_alarm.append(al)
    neg = np.concatenate(neg_scores)
    pos_by_row: dict[int, np.ndarray] = {}
    pos_anom: dict[int, np.ndarray] = {}
    for i in test_fault:
        sc, an, _ = _score_block(rt, data.signal(i))
        pos_by_row[i], pos_anom[i] = sc, an
    if neg.size == 0:
        raise InputError("no healthy test windows: the protocol leaves no healthy signal for testing")
    if not pos_by_row:
        raise InputError("no fault recordings in the test set")
    pos = np.concatenate(list(pos_by_row.values()))
    y_true = np.r_[np.zeros(neg.size, dtype=int), np.ones(pos.size, dtype=int)]
    y_score = np.r_[neg, pos]
    y_pred = (y_score > thr).astype(int)
    lab = np.array(["normal", "fault"])
    labels, cm = confusion_matrix(lab[y_true], lab[y_pred], labels=["normal", "fault"])
    per_label: dict[str, list[float]] = defaultdict(list)
    per_group: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: {"pos": []})
    for i, sc in pos_by_row.items():
        row = data.rows[i]
        per_label[row.label].append(float(np.mean(sc > thr)))
        per_group[str(row.groups.get(args.group, "-"))]["pos"].append(sc)
    report = {
        "n_healthy_test_windows": int(neg.size), "n_fault_windows": int(pos.size),
        "auroc": auroc(y_true, y_score),
        "false_alarm_rate": float(np.mean(neg > thr)),
        "false_alarm_rate_debounced": float(np.mean(np.concatenate(neg_alarm))) if neg_alarm else None,
        "target_far": args.target_far,
        "detection_rate": float(np.mean(pos > thr)),
        "accuracy": accuracy(lab[y_true], lab[y_pred]),
        "macro_f1": macro_f1(lab[y_true], lab[y_pred]),
        "confusion": {"labels": list(labels), "matrix": np.asarray(cm).tolist()},
        "threshold": thr, "calibration": cal_method,
        "n_train_windows": n_train, "n_calib_windows": n_calib,
        "detection_rate_by_label": {k: float(np.mean(v)) for k, v in sorted(per_label.items())},
        f"by_{args.group}": {
            g: {"auroc": auroc(np.r_[np.zeros(neg.size), np.ones(sum(len(a) for a in d["pos"]))],
                               np.r_[neg, np.concatenate(d["pos"])]),
                "detection_rate": float(np.mean(np.concatenate(d["pos"]) > thr))}
            for g, d in sorted(per_group.items())},
        "healthy_blocks": blocks_desc,
        "healthy_test_blocks": [{"file": data.rows[i].path.name, "start": int(s), "stop": int(e)}
                                for i, s, e in healthy_test_blocks],
        **extra,
    }
    if len(data.channels) > 1 and "DE" in data.channels:
        # Root cause: for drive-end faults the top channel of contrib should be the drive end.
        tops = [c for i in test_fault if str(data.rows[i].groups.get("fault_end", "")).startswith("drive")
                for c in _top_channels(rt, data.signal(i))]
        report["top_channel_is_DE_for_drive_end_faults"] = float(np.mean([c == "DE" for c in tops])) \
            if tops else None
        report["n_alarmed_drive_end_windows"] = len(tops)
    if args.method == "vae":
        base = argparse.Namespace(**{**vars(args), "method": "gaussian"})
        g = _run_fold(data, train_idx, test_healthy_full, test_fault, fractions, base, healthy_test_from_train)
        report["gaussian"] = {k: g.get(k) for k in ("auroc", "false_alarm_rate", "false_alarm_rate_debounced",
                                                    "detection_rate", "threshold", "calibration",
                                                    "top_channel_is_DE_for_drive_end_faults")}
    return report


def run_eval(args: argparse.Namespace) -> dict[str, Any]:
    from .evaluation import load_manifest
    from .readers import available_channels

    rows = load_manifest(args.manifest, root=args.root)
    fractions = _parse_fractions(args.fractions)
    healthy_set = {h.lower() for h in args.healthy_label}
    is_healthy = [r.label.lower() in healthy_set for r in rows]
    if not any(is_healthy):
        raise InputError(f"manifest has no rows labelled {args.healthy_label}: nothing to train an anomaly model on")
    fs = args.fs
    if fs is None:
        rates = [r.fs for r in rows if r.fs]
        if not rates:
            raise InputError("the manifest has no fs column: pass --fs")
        vals, counts = np.unique(rates, return_counts=True)
        fs = float(vals[np.argmax(counts)])
    if args.channels:
        channels = [c.strip() for c in args.channels.replace("+", ",").split(",") if c.strip()]
    else:
        avail = available_channels(rows[is_healthy.index(True)].path)
        channels = ["DE"] if "DE" in avail else [avail[0]]
    # Rows that lack a requested channel cannot be scored by this model: report, don't hide.
    usable, skipped = [], []
    for i, r in enumerate(rows):
        have = {c.upper() for c in (r.channels or available_channels(r.path))}
        (usable if all(c.upper() in have for c in channels) else skipped).append(i)
    data = _Data(rows, fs, channels)
    healthy = [i for i in usable if is_healthy[i]]
    faults = [i for i in usable if not is_healthy[i]]
    report: dict[str, Any] = {
        "task": "anomaly", "method": args.method, "protocol": args.protocol, "fs": fs, "channels": channels,
        "window": args.window, "hop": args.hop or args.window // 2, "fractions": fractions,
        "n_recordings": len(rows), "skipped_recordings": [str(rows[i].path.name) for i in skipped],
    }
    group = args.group

    def gval(i: int) -> str:
        return str(rows[i].groups.get(group, ""))

    if args.protocol == "split":
        report["result"] = _run_fold(data, healthy, [], faults, fractions, args, True)
    elif args.protocol == "cross-group":
        if not args.train_groups:
            raise InputError("--protocol cross-group needs --train-groups (e.g. --train-groups 0)")
        train_g = {v.strip() for v in args.train_groups.split(",")}
        test_g = {v.strip() for v in args.test_groups.split(",")} if args.test_groups else None
        in_test = (lambda i: gval(i) in test_g) if test_g else (lambda i: gval(i) not in train_g)  # noqa: E731
        train_h = [i for i in healthy if gval(i) in train_g]
        if not train_h:
            raise InputError(f"no healthy recordings with {group} in {sorted(train_g)}")
        test_h = [i for i in healthy if in_test(i) and gval(i) not in train_g]
        report["result"] = _run_fold(data, train_h, test_h, [i for i in faults if in_test(i)], fractions, args,
                                     healthy_test_from_train=True)
        report["train_groups"], report["test_groups"] = sorted(train_g), sorted(test_g) if test_g else "rest"
    else:
        folds = {}
        for g in sorted({gval(i) for i in usable}):
            train_h = [i for i in healthy if gval(i) != g]
            if not train_h:
                folds[g] = {"skipped": f"no healthy recordings outside {group}={g}"}
                continue
            test_h = [i for i in healthy if gval(i) == g]
            test_f = [i for i in faults if gval(i) == g]
            if not test_f:
                folds[g] = {"skipped": f"no fault recordings with {group}={g}"}
                continue
            folds[g] = _run_fold(data, train_h, test_h, test_f, fractions, args, healthy_test_from_train=True)
        report["folds"] = folds
    return report
