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

from edgefault.errors import InputError

HEALTHY = ("normal", "healthy")


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="manifest", choices=["manifest", "cmapss"],
                   help="manifest: recordings listed in --manifest (default); cmapss: NASA C-MAPSS engines in --data "
                        "(see edgefault/experiments_cmapss.py)")
    p.add_argument("--manifest",
                   help="CSV with path,label[,fs,channels,group columns] (required with --dataset manifest)")
    p.add_argument("--root", help="folder that relative manifest paths are relative to")
    p.add_argument("--task", default="anomaly", choices=["anomaly", "classify"], help="what to evaluate")
    p.add_argument("--method", default="gaussian", choices=["gaussian", "vae", "sfdsc"],
                   help="vae also runs the gaussian on the same blocks, reported under 'gaussian'")
    p.add_argument("--arch", default="cnn", choices=["cnn", "transformer"], help="vae architecture")
    p.add_argument("--input", default="spectrum", choices=["spectrum", "waveform"],
                   help="vae input: per-channel band spectra (default) or the raw window of every channel")
    p.add_argument("--forecast", action="store_true",
                   help="vae --input waveform: forecasting head over the window's last samples (default off)")
    p.add_argument("--forecast-horizon", type=int, help="samples the forecasting head predicts (default window/8)")
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
    p.add_argument("--window", type=int, default=None, help="samples per window (default 1024; cmapss: 30 cycles)")
    p.add_argument("--hop", type=int, help="default window/2")
    p.add_argument("--bands", type=int, default=16)
    p.add_argument("--target-far", type=float, default=0.01)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--out", help="also write the JSON report here")
    from edgefault.evaluation.cmapss import add_cmapss_arguments

    add_cmapss_arguments(p.add_argument_group("C-MAPSS (--dataset cmapss)"))
    c = p.add_argument_group("classify (--task classify --method sfdsc)")
    add_classify_arguments(c)
    c.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 of the dictionary initialisation (default 5)")
    c.add_argument("--per-group", action="store_true", help="split protocol: one model per value of --group")


def add_classify_arguments(p: Any) -> None:
    """Row selection and SFDSC options, shared by `train classify` and `eval --task classify`."""
    p.add_argument("--label-columns", help="manifest columns joined with '@' into the class label of non-healthy "
                                           "rows, e.g. fault,diameter_in (default: the label column)")
    p.add_argument("--include-labels", help="keep only rows with these labels (comma-separated)")
    p.add_argument("--where", action="append", help="keep only rows with COLUMN in values: COLUMN=V1,V2 (repeatable)")
    p.add_argument("--atoms", type=int, default=12, help="sfdsc: atoms per class (default 12)")
    p.add_argument("--representation", default="log_power",
                   choices=["log_power", "bands", "envelope", "magnitude", "raw"],
                   help="sfdsc: what the dictionary is learned on (default log_power spectra of windows)")
    p.add_argument("--env-fmax", type=float, default=1000.0, help="envelope representation: top frequency (Hz)")
    p.add_argument("--max-windows", type=int, default=300, help="sfdsc: training windows kept per class (default 300)")
    p.add_argument("--svm-c", type=float, default=10.0, help="sfdsc: SVM C (default 10)")
    p.add_argument("--no-window-stats", action="store_true",
                   help="sfdsc: leave the window's mean and std out of the SVM inputs (they track load and fault size)")


def _parse_fractions(s: str) -> list[float]:
    try:
        f = [float(v) for v in s.split(",")]
    except ValueError:
        raise InputError(f"--fractions {s!r}: expected three numbers like 0.5,0.2,0.3") from None
    if len(f) != 3 or min(f) <= 0 or abs(sum(f) - 1.0) > 1e-6:
        raise InputError(f"--fractions {s!r}: expected three positive fractions summing to 1")
    return f


def _rate_and_channels(args: argparse.Namespace, rows: list[Any], probe: Any) -> tuple[float, list[str]]:
    """Model rate (--fs, else the manifest's most common rate) and channels (--channels, else DE
    if the probe recording has it, else its first channel)."""
    from edgefault.io.readers import available_channels

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
        avail = available_channels(probe.path)
        channels = ["DE"] if "DE" in avail else [avail[0]]
    return float(fs), channels


class _Data:
    """Loads each manifest row once at the model rate."""

    def __init__(self, rows: list[Any], fs: float, channels: list[str]) -> None:
        self.rows, self.fs, self.channels = rows, fs, channels
        self._cache: dict[int, np.ndarray] = {}

    def signal(self, i: int) -> np.ndarray:
        if i not in self._cache:
            from edgefault.io.readers import read_recording

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
    from edgefault.train.vae import pack_vae, train_vae, vae_spec, vae_waveform_spec

    hop = args.hop or args.window // 2
    inp = getattr(args, "input", "spectrum")
    spec = (vae_waveform_spec(data.fs, data.channels, window=args.window, hop=hop) if inp == "waveform"
            else vae_spec(data.fs, data.channels, window=args.window, hop=hop))
    fc = getattr(args, "forecast_horizon", None) or max(1, args.window // 8)
    fc = fc if getattr(args, "forecast", False) else 0
    res = train_vae(train_recs, spec, arch=args.arch, epochs=args.epochs, seed=args.seed, input=inp, forecast=fc,
                    target_far=args.target_far, calib_fraction=calib_frac, val_fraction=0.2)
    bundle = pack_vae(res, out, k=args.k, n=args.n)
    extra = {"vae": {k: res.info[k] for k in ("arch", "input", "epochs_run", "best_epoch", "stopped", "train_seconds",
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
    from edgefault.evaluation.protocols import contiguous_blocks
    from edgefault.evaluation.metrics import accuracy, auroc, confusion_matrix, macro_f1
    from edgefault.io.readers import Recording
    from edgefault.device.runtime import Runtime
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

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
    if getattr(args, "dataset", "manifest") == "cmapss":
        from edgefault.evaluation.cmapss import run_cmapss_eval

        return run_cmapss_eval(args)
    if not args.manifest:
        raise InputError("edgefault eval: --manifest is required (or --dataset cmapss --data DIR)")
    if args.window is None:
        args.window = 1024
    if args.task == "classify" or args.method == "sfdsc":
        if args.task != "classify" or args.method != "sfdsc":
            raise InputError(f"--task {args.task} --method {args.method}: sfdsc is the classify method "
                             f"(use --task classify --method sfdsc)")
        return run_classify_eval(args)
    from edgefault.io.manifest import load_manifest
    from edgefault.io.readers import available_channels

    rows = load_manifest(args.manifest, root=args.root)
    fractions = _parse_fractions(args.fractions)
    healthy_set = {h.lower() for h in args.healthy_label}
    is_healthy = [r.label.lower() in healthy_set for r in rows]
    if not any(is_healthy):
        raise InputError(f"manifest has no rows labelled {args.healthy_label}: nothing to train an anomaly model on")
    fs, channels = _rate_and_channels(args, rows, rows[is_healthy.index(True)])
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


# -- classification (--task classify --method sfdsc) ---------------------------------------------
def _classify_rows(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """Manifest rows kept by --include-labels / --where, and their labels (--label-columns)."""
    from edgefault.io.manifest import load_manifest

    rows = load_manifest(args.manifest, root=args.root)
    keep = {v.strip() for v in args.include_labels.split(",")} if args.include_labels else None
    where: list[tuple[str, set[str]]] = []
    for w in args.where or []:
        if "=" not in w:
            raise InputError(f"--where {w!r}: expected COLUMN=V1,V2,...")
        col, vals = w.split("=", 1)
        where.append((col.strip(), {v.strip() for v in vals.split(",")}))
    cols = [c.strip() for c in args.label_columns.split(",")] if args.label_columns else []
    out_rows, labels = [], []
    for r in rows:
        if keep is not None and r.label not in keep:
            continue
        ok = True
        for col, vals in where:
            v = r.label if col in ("label", "fault") and col not in r.groups else r.groups.get(col)
            if v is None:
                raise InputError(f"--where: {r.path.name} has no column {col!r} (columns: {sorted(r.groups)})")
            ok &= v in vals
        if not ok:
            continue
        lab = r.label
        if cols and r.label.lower() not in {h.lower() for h in args.healthy_label}:
            parts = []
            for c in cols:
                if c in ("label", "fault"):
                    parts.append(r.label)
                elif c in r.groups:
                    parts.append(r.groups[c])
                else:
                    raise InputError(f"--label-columns: {r.path.name} has no column {c!r} "
                                     f"(columns: {sorted(r.groups)})")
            lab = "@".join(parts)
        out_rows.append(r)
        labels.append(lab)
    if not out_rows:
        raise InputError("no manifest rows left after --include-labels / --where")
    return out_rows, labels


def _classify_fold(data: "_Data", train: list[tuple[int, int, int]], test: list[tuple[int, int, int]],
                   labels: list[str], args: argparse.Namespace, seed: int) -> dict[str, Any]:
    from edgefault.evaluation.metrics import accuracy, confusion_matrix, macro_f1
    from edgefault.device.runtime import Runtime
    from edgefault.train.sfdsc import pack_sfdsc, sfdsc_spec, train_sfdsc

    spec = sfdsc_spec(data.fs, data.channels, window=args.window, hop=args.hop or args.window // 2,
                      representation=args.representation, env_fmax=args.env_fmax)
    blocks = [(data.signal(i)[s:e], labels[i], f"{data.rows[i].path.name}[{s}:{e}]") for i, s, e in train]
    res = train_sfdsc(blocks, spec, max_windows_per_class=args.max_windows, random_state=seed,
                      n_atoms_per_class=args.atoms, C=args.svm_c, use_extra=not args.no_window_stats)
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(pack_sfdsc(res, Path(tmp) / "eval.efb"))
    y_true: list[str] = []
    y_pred: list[str] = []
    per_rec: dict[str, float] = {}
    for i, s, e in test:
        x = data.signal(i)[s:e]
        rt.reset()
        ev = []
        feed = x if x.shape[1] > 1 else x[:, 0]
        for k in range(0, feed.shape[0], 8192):
            ev.extend(rt.push(np.ascontiguousarray(feed[k:k + 8192])))
        pred = [e.label for e in ev if e.valid]
        y_pred.extend(pred)
        y_true.extend([labels[i]] * len(pred))
        key = f"{data.rows[i].path.parent.name}/{data.rows[i].path.name}"
        per_rec[key] = float(np.mean(np.array(pred) == labels[i]))
    labs = sorted(set(y_true) | set(res.labels))
    _, cm = confusion_matrix(y_true, y_pred, labels=labs)
    return {"seed": seed, "accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred),
            "n_train_windows": res.info["n_train_windows"], "n_test_windows": len(y_true),
            "train_labels": res.labels, "confusion": {"labels": labs, "matrix": np.asarray(cm).tolist()},
            "accuracy_by_recording": per_rec}


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    acc = np.array([r["accuracy"] for r in runs])
    f1 = np.array([r["macro_f1"] for r in runs])
    cm = np.sum([np.asarray(r["confusion"]["matrix"]) for r in runs], axis=0)
    return {"accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
            "macro_f1_mean": float(f1.mean()), "macro_f1_std": float(f1.std()),
            "confusion_summed_over_seeds": {"labels": runs[0]["confusion"]["labels"], "matrix": cm.tolist()},
            "seeds": runs}


def run_classify_eval(args: argparse.Namespace) -> dict[str, Any]:
    """Leak-safe classification protocols (see ``edgefault eval --help``):

    * split: every recording cut into [first half train | gap of one window | second half test];
      with --per-group one model per value of --group (e.g. per load);
    * cross-group: train on whole recordings with --group in --train-groups, test on whole
      recordings in --test-groups (labels absent from training are counted as errors);
    * logo: for each value of --group among the non-healthy rows, train on the others and test on
      it; healthy rows (no group value of their own, e.g. diameter 0) are split in halves in every
      fold, first half train, second half test.

    Each protocol runs for --seeds seeds (dictionary initialisation); accuracy and macro-F1 are
    reported as mean and std over seeds, per fold and averaged over folds.
    """
    from edgefault.evaluation.protocols import contiguous_blocks

    if args.method != "sfdsc":
        raise InputError(f"--task classify: available methods: sfdsc (got {args.method!r})")
    rows, labels = _classify_rows(args)
    fs, channels = _rate_and_channels(args, rows, rows[0])
    data = _Data(rows, fs, channels)
    healthy = {h.lower() for h in args.healthy_label}
    is_h = [lab.lower() in healthy for lab in labels]
    w = args.window
    n_seeds = int(args.seeds)
    if n_seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {n_seeds}")

    def halves(i: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        (_, s0, e0), (_, s1, e1) = contiguous_blocks(data.signal(i).shape[0], [0.5, 0.5], gap=w, min_len=w)
        return (i, s0, e0), (i, s1, e1)

    def whole(i: int) -> tuple[int, int, int]:
        return (i, 0, data.signal(i).shape[0])

    def gval(i: int) -> str:
        return str(rows[i].groups.get(args.group, ""))

    folds: dict[str, tuple[list[Any], list[Any]]] = {}
    idx = list(range(len(rows)))
    if args.protocol == "split":
        groups = sorted({gval(i) for i in idx}) if args.per_group else ["all"]
        for g in groups:
            sel = [i for i in idx if not args.per_group or gval(i) == g]
            hv = [halves(i) for i in sel]
            folds[g] = ([a for a, _ in hv], [b for _, b in hv])
    elif args.protocol == "cross-group":
        if not args.train_groups:
            raise InputError("--protocol cross-group needs --train-groups (e.g. --train-groups 0)")
        tg = {v.strip() for v in args.train_groups.split(",")}
        sg = {v.strip() for v in args.test_groups.split(",")} if args.test_groups else None
        train = [whole(i) for i in idx if gval(i) in tg]
        test = [whole(i) for i in idx if gval(i) not in tg and (sg is None or gval(i) in sg)]
        if not train or not test:
            raise InputError(f"cross-group: {len(train)} training and {len(test)} test recordings with "
                             f"{args.group} in {sorted(tg)} / {sorted(sg) if sg else 'the rest'}")
        folds[f"train {','.join(sorted(tg))}"] = (train, test)
    else:
        values = sorted({gval(i) for i in idx if not is_h[i]})
        if args.test_groups:
            values = [v.strip() for v in args.test_groups.split(",")]
        hv = {i: halves(i) for i in idx if is_h[i]}
        for v in values:
            train = [whole(i) for i in idx if not is_h[i] and gval(i) != v] + [a for a, _ in hv.values()]
            test = [whole(i) for i in idx if not is_h[i] and gval(i) == v] + [b for _, b in hv.values()]
            if not any(not is_h[i] for i, _, _ in test):
                raise InputError(f"logo: no recording with {args.group}={v}")
            folds[v] = (train, test)
    report: dict[str, Any] = {
        "task": "classify", "method": "sfdsc", "protocol": args.protocol, "group": args.group, "fs": fs,
        "channels": channels, "window": w, "hop": args.hop or w // 2, "representation": args.representation,
        "atoms_per_class": args.atoms, "window_stats": not args.no_window_stats,
        "seeds": list(range(n_seeds)), "labels": sorted(set(labels)),
        "n_recordings": len(rows), "folds": {}}
    for name, (train, test) in folds.items():
        runs = [_classify_fold(data, train, test, labels, args, seed) for seed in range(n_seeds)]
        report["folds"][name] = {
            "train": [f"{rows[i].path.parent.name}/{rows[i].path.name}[{s}:{e}]" for i, s, e in train],
            "test": [f"{rows[i].path.parent.name}/{rows[i].path.name}[{s}:{e}]" for i, s, e in test],
            **_summarise(runs)}
    fm = [f["accuracy_mean"] for f in report["folds"].values()]
    report["accuracy_mean_over_folds"] = float(np.mean(fm))
    per_seed = np.mean([[r["accuracy"] for r in f["seeds"]] for f in report["folds"].values()], axis=0)
    report["accuracy_std_over_seeds_of_fold_mean"] = float(np.std(per_seed))
    report["macro_f1_mean_over_folds"] = float(np.mean([f["macro_f1_mean"] for f in report["folds"].values()]))
    return report
