"""`edgefault eval`: leak-safe evaluation on a dataset manifest (CWRU or any manifest) or
C-MAPSS (:mod:`edgefault.evaluation.cmapss`).

The folds come from :mod:`edgefault.evaluation.protocols` (recordings cut into contiguous blocks
*before* windowing, a gap of one window, every fold checked by ``assert_no_overlap``), the model
from the kind registry (:mod:`edgefault.kinds`): each fold's model is trained, packed into a real
bundle and scored through ``Runtime.push`` exactly as on the device.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from edgefault import kinds
from edgefault.errors import InputError
from edgefault.evaluation.protocols import Split, anomaly_folds, classify_folds, parse_fractions
from edgefault.io.manifest import is_healthy, load_manifest, select_rows

# --band-limit: the common chain when recordings were made at different rates. The resampler is
# flat (ripple < 1e-4) to 0.4 fs and rolls off above; after this low-pass (flat to 0.35 fs, 80 dB
# down from 0.40 fs) a resampled and a native recording have passed through the same response,
# and the features stop at 0.35 fs.
BAND_PASS, BAND_STOP = 0.35, 0.40
CONFOUND_AUROC = 0.75  # a probe above this separates the classes on what it sees

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

    def __init__(self, rows: list[Any], fs: float, channels: list[str], healthy: list[bool],
                 fractions: list[float] | None = None, band_limit: bool = False) -> None:
        self.rows, self.fs, self.channels, self.is_healthy, self.fractions = rows, fs, channels, healthy, fractions
        self.band_limit = band_limit  # every recording through the same low-pass (BAND_PASS, BAND_STOP) x fs
        self.mixed_rates = len({float(r.fs) for r in rows if r.fs}) > 1
        self.index = {r.key: i for i, r in enumerate(rows)}
        self._cache: dict[int, np.ndarray] = {}
        self.assume_model_rate = False  # rate-less files without a manifest fs: refused (naming aside)
        self.rate_warnings: list[str] = []

    def signal(self, i: int) -> np.ndarray:
        if i not in self._cache:
            from edgefault.io.readers import read_recording

            r = self.rows[i]
            rec = read_recording(r.path, channels=self.channels, model_fs=self.fs, default_fs=r.fs,
                                 default_fs_source="manifest", assume_model_rate=self.assume_model_rate)
            if rec.rate_warning and rec.rate_warning not in self.rate_warnings:
                self.rate_warnings.append(rec.rate_warning)
                print(f"edgefault eval: warning: {rec.rate_warning}", file=sys.stderr)
            x = rec.data
            if self.band_limit:
                from edgefault.io.resample import lowpass

                x = lowpass(x, BAND_PASS, BAND_STOP)
            self._cache[i] = x
        return self._cache[i]

    def length(self, row: Any) -> int:
        return int(self.signal(self.index[row.key]).shape[0])


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


def _train_recordings(data: _Data, split: Split) -> tuple[list[Any], list[dict[str, Any]]]:
    """Healthy training recordings of an anomaly fold: train + gap + calib of each recording (the
    kind cuts train | calib itself with the same gap), and the blocks for the report."""
    from edgefault.io.readers import Recording

    calib = {s.row.key: s for s in split.calib}
    test = {s.row.key: s for s in split.test}
    recs, desc = [], []
    for s in split.train:
        c, i = calib[s.row.key], data.index[s.row.key]
        recs.append(Recording(data=data.signal(i)[s.start:c.stop], fs=data.fs, channels=tuple(data.channels),
                              path=str(s.row.path)))
        b = {"train": s, "calib": c, "test": test[s.row.key]}
        desc.append({"file": s.row.path.name, **{k: [int(v.start), int(v.stop)] for k, v in b.items()}})
    return recs, desc


def _run_fold(data: _Data, split: Split, args: argparse.Namespace, kind: Any) -> dict[str, Any]:
    from edgefault.device.runtime import Runtime
    from edgefault.evaluation.metrics import accuracy, auroc, confusion_matrix, macro_f1

    train_recs, blocks_desc = _train_recordings(data, split)
    opts = argparse.Namespace(**vars(args))
    f = data.fractions
    opts.calib_fraction = f[1] / (f[0] + f[1])
    with tempfile.TemporaryDirectory() as tmp:
        trained = kind.train(kinds.TrainData(recordings=train_recs, fs=data.fs, channels=list(data.channels)),
                             opts, Path(tmp) / "eval.efb")
        rt = Runtime(trained.bundle)
    thr = trained.threshold
    test_h = [s for s in split.test if data.is_healthy[data.index[s.row.key]]]
    test_f = [s for s in split.test if not data.is_healthy[data.index[s.row.key]]]
    neg_scores, neg_alarm = [], []
    neg_by_group: dict[str, list[np.ndarray]] = defaultdict(list)
    for s in test_h:
        sc, _, al = _score_block(rt, data.signal(data.index[s.row.key])[s.start:s.stop])
        neg_scores.append(sc)
        neg_alarm.append(al)
        neg_by_group[str(s.row.groups.get(args.group, "-"))].append(sc)
    neg = np.concatenate(neg_scores) if neg_scores else np.zeros(0)
    pos_by_row: dict[int, np.ndarray] = {}
    for s in test_f:
        i = data.index[s.row.key]
        pos_by_row[i], _, _ = _score_block(rt, data.signal(i)[s.start:s.stop])
    if neg.size == 0:
        raise InputError("no healthy test windows: the protocol leaves no healthy signal for testing")
    if not pos_by_row:
        raise InputError("no fault recordings in the test set")
    pos = np.concatenate(list(pos_by_row.values()))
    from edgefault.device.thresholds import alarm_onsets, effective_size, far_evidence, onset_rate, wilson_interval

    n_eff = float(sum(effective_size(sc)[0] for sc in neg_scores if sc.size))
    far = float(np.mean(neg > thr))
    far_ev = far_evidence(int(np.sum(neg > thr)), int(neg.size), n_eff, args.target_far)
    th = trained.bundle.thresholds
    # each healthy block streams from a reset; monitored time = valid windows x hop
    onsets = onset_rate(sum(alarm_onsets(a) for a in neg_alarm), neg.size * rt.spec.hop / data.fs / 3600.0,
                        int(th.get("k", 1)), int(th.get("n", 1)))
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
        "false_alarm_rate": far,
        # overlapping windows are not independent: the interval uses the effective number of windows
        "false_alarm_rate_ci95": list(wilson_interval(far * n_eff, n_eff)),
        "n_healthy_test_effective": n_eff,
        # whether FAR <= 2x target holds within that CI, and the smallest target this block can check
        "false_alarm_evidence": far_ev,
        "false_alarm_rate_debounced": float(np.mean(np.concatenate(neg_alarm))) if neg_alarm else None,
        "false_alarm_onsets": onsets,
        "target_far": args.target_far,
        "detection_rate": float(np.mean(pos > thr)),
        "accuracy": accuracy(lab[y_true], lab[y_pred]),
        "macro_f1": macro_f1(lab[y_true], lab[y_pred]),
        "confusion": {"labels": list(labels), "matrix": np.asarray(cm).tolist()},
        "threshold": thr, "calibration": trained.calibration,
        "n_train_windows": trained.n_train_windows, "n_calib_windows": trained.n_calib_windows,
        "detection_rate_by_label": {k: float(np.mean(v)) for k, v in sorted(per_label.items())},
        # AUROC by group only where healthy test windows of that group exist: healthy windows of
        # one group against faults of another would measure the group (e.g. the load), not the fault.
        f"by_{args.group}": {
            g: {"auroc": auroc(np.r_[np.zeros(sum(a.size for a in neg_by_group[g])),
                                     np.ones(sum(len(a) for a in d["pos"]))],
                               np.r_[np.concatenate(neg_by_group[g]), np.concatenate(d["pos"])]),
                "detection_rate": float(np.mean(np.concatenate(d["pos"]) > thr))}
            for g, d in sorted(per_group.items()) if g in neg_by_group},
        f"by_{args.group}_omitted": sorted(g for g in per_group if g not in neg_by_group),
        f"detection_rate_by_{args.group}": {g: float(np.mean(np.concatenate(d["pos"]) > thr))
                                             for g, d in sorted(per_group.items())},
        "healthy_blocks": blocks_desc,
        "healthy_test_blocks": [{"file": s.row.path.name, "start": int(s.start), "stop": int(s.stop)} for s in test_h],
        **trained.eval_info,
    }
    report["confound_check"] = _confound_check(data, split, trained.bundle.spec, args)
    if test_h:
        report["injected_attribution"] = _injected_attribution(rt, data, test_h)
    if len(data.channels) > 1 and "DE" in data.channels:
        # Root cause: for drive-end faults the top channel of contrib should be the drive end.
        tops = [c for s in test_f if str(s.row.groups.get("fault_end", "")).startswith("drive")
                for c in _top_channels(rt, data.signal(data.index[s.row.key])[s.start:s.stop])]
        report["top_channel_is_DE_for_drive_end_faults"] = float(np.mean([c == "DE" for c in tops])) \
            if tops else None
        report["n_alarmed_drive_end_windows"] = len(tops)
    if kind.reference is not None:
        g = _run_fold(data, split, args, kinds.get(kind.reference, task="anomaly"))
        report[kind.reference] = {k: g.get(k) for k in ("auroc", "false_alarm_rate", "false_alarm_rate_debounced",
                                                        "false_alarm_evidence", "false_alarm_onsets",
                                                        "detection_rate", "threshold", "calibration",
                                                        "top_channel_is_DE_for_drive_end_faults")}
    return report


def _probe_auroc(data: _Data, split: Split, blocks: list[dict[str, Any]], args: argparse.Namespace,
                 unit_rms: bool = False) -> float | None:
    """AUROC of a Gaussian (Ledoit-Wolf) on the given feature blocks only, trained on the fold's
    training blocks and scored on its test blocks: what a model restricted to those features
    scores on the same protocol. ``unit_rms``: every recording first scaled to unit RMS per
    channel (over the whole recording), which removes the level difference between recordings."""
    from edgefault.device.spec import FeatureSpec
    from edgefault.evaluation.metrics import auroc
    from edgefault.train.gaussian import GaussianAnomalyModel

    hop = args.hop or args.window // 2
    spec = FeatureSpec(fs=data.fs, window=args.window, hop=hop, channels=tuple(data.channels), blocks=tuple(blocks))

    def feats(s: Any) -> np.ndarray:
        whole = data.signal(data.index[s.row.key])
        x = whole[s.start:s.stop]
        if unit_rms:
            x = (x / np.sqrt(np.mean(np.square(whole, dtype=np.float64), axis=0))).astype(x.dtype)
        f, _, ok = spec.transform(x)
        return f[ok].astype(np.float64)

    X = np.concatenate([feats(s) for s in split.train])
    model = GaussianAnomalyModel().fit(X)
    neg = [model.score_samples(feats(s)) for s in split.test if data.is_healthy[data.index[s.row.key]]]
    pos = [model.score_samples(feats(s)) for s in split.test if not data.is_healthy[data.index[s.row.key]]]
    if not neg or not pos:
        return None
    n, p = np.concatenate(neg), np.concatenate(pos)
    return auroc(np.r_[np.zeros(n.size), np.ones(p.size)], np.r_[n, p])


def _reaches_above(spec: Any, f_hz: float) -> bool:
    """Whether any feature of ``spec`` may see content above ``f_hz``: a band-energy block whose
    top lies above it, or any other block (time statistics and raw windows see the whole band, the
    spectra and envelope blocks have no upper limit below fs/2)."""
    return any(b.get("kind") != "band_energy" or (b.get("fmax") or spec.fs / 2) > f_hz for b in spec.blocks)


def _confound_check(data: _Data, split: Split, spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Trivial and confounded probes beside the model: a Gaussian on the log band energies above
    0.4 fs only (where a resampled recording's anti-aliasing roll-off lives), one on the window
    RMS only (level), and both again on recordings scaled to unit RMS (does the high band only
    see level?). Fails (InputError) when recordings come at different native rates (so some were
    resampled), the chain was not band-limited, the model's features reach above 0.4 fs and the
    high-band probe separates the classes. With one native rate, content above 0.4 fs can be
    part of a real fault: the probe is reported, not enforced."""
    f_hi = 0.4 * data.fs
    high_blocks = [{"kind": "band_energy", "n_bands": 8, "spacing": "linear", "fmin": f_hi, "fmax": 0.5 * data.fs,
                    "log": True}]
    high = _probe_auroc(data, split, high_blocks, args)
    level = _probe_auroc(data, split, [{"kind": "time_stats", "stats": ["rms"]}], args)
    # the probes again with the level difference between recordings removed
    high_unit = _probe_auroc(data, split, high_blocks, args, unit_rms=True)
    level_unit = _probe_auroc(data, split, [{"kind": "time_stats", "stats": ["rms"]}], args, unit_rms=True)
    reaches = (not data.band_limit) and _reaches_above(spec, f_hi)
    out = {"high_band_probe_auroc": high, "level_only_probe_auroc": level,
           "high_band_probe_auroc_unit_rms_recordings": high_unit,
           "level_only_probe_auroc_unit_rms_recordings": level_unit, "mixed_native_rates": data.mixed_rates,
           "band_limited": data.band_limit, "model_features_reach_above_0.4fs": reaches}
    out["confounded"] = bool(data.mixed_rates and reaches and high is not None and high > CONFOUND_AUROC)
    if out["confounded"] and not args.allow_confound:
        raise InputError(f"confound: a Gaussian on the band energies above 0.4 fs alone separates healthy from fault "
                         f"windows (AUROC {high:.3f}) and the model's features reach there on a chain that is not "
                         f"band-limited (recordings at different native rates?); run with --band-limit on, or "
                         f"--band-limit off --allow-confound to measure it anyway")
    return out


_BAND_NAME = re.compile(r"^(?P<ch>[^.]+)\.band\d+_(?P<lo>[\d.]+)_(?P<hi>[\d.]+)Hz")


def _injected_attribution(rt: Any, data: _Data, test_h: list[Any], n_bands: int = 6, seed: int = 0) -> dict[str, Any]:
    """Attribution measured where it can fail: into the middle third of each later healthy test
    block, a tone at the centre of one of the model's bands is added on one channel (amplitude =
    that channel's standard deviation in the block), for every channel x ``n_bands`` bands spread
    over the model's range. Over the anomalous windows lying wholly inside the injection: how often
    the top channel of ``contrib`` is the injected one, and the top band the injected band (chance
    levels beside); over the whole block: the share of anomalous windows inside the injection
    (chance: the injected share of windows) and the share of injected windows flagged."""
    names = [n for n in rt._contrib_names if _BAND_NAME.match(n)]
    bands: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for n in names:
        m = _BAND_NAME.match(n)
        assert m is not None
        bands[m["ch"]].append((n, float(np.sqrt(float(m["lo"]) * float(m["hi"])))))
    chans = list(data.channels)
    if not all(bands.get(c) for c in chans):
        return {"skipped": "the model's contrib names no frequency bands"}
    w, fs = rt.spec.window, rt.spec.fs
    hits = {"channel": 0, "band": 0, "windows": 0, "inside": 0, "flagged": 0, "flagged_inside": 0,
            "n_inside": 0, "n_windows": 0, "trials": 0}
    for s in test_h:
        x0 = data.signal(data.index[s.row.key])[s.start:s.stop].astype(np.float64)
        n = x0.shape[0]
        a, b = n // 3, 2 * n // 3
        if b - a < 2 * w:
            continue
        t = np.arange(n) / fs
        for ci, c in enumerate(chans):
            picks = np.unique(np.round(np.linspace(0, len(bands[c]) - 1, n_bands)).astype(int))
            for bi in picks:
                name, f0 = bands[c][bi]
                x = x0.copy()
                x[a:b, ci] += np.std(x0[:, ci]) * np.sqrt(2.0) * np.sin(2 * np.pi * f0 * t[a:b])
                rt.reset()
                feed = x.astype(np.float32) if x.shape[1] > 1 else x[:, 0].astype(np.float32)
                ev = [e for e in rt.push(feed) if e.valid]
                hits["trials"] += 1
                for e in ev:
                    end = int(round(e.t * fs))
                    inside = end - w >= a and end <= b
                    hits["n_windows"] += 1
                    hits["n_inside"] += inside
                    if not e.anomaly:
                        continue
                    hits["flagged"] += 1
                    hits["flagged_inside"] += inside
                    if inside:
                        ctr = e.contrib
                        hits["windows"] += 1
                        hits["channel"] += max(ctr["channel"], key=ctr["channel"].get) == c
                        band = ctr.get("band") or {}
                        hits["band"] += bool(band) and max(band, key=band.get) == name
    if not hits["trials"]:
        return {"skipped": "healthy test blocks too short for an injection"}
    nw = max(hits["windows"], 1)
    return {"trials": hits["trials"], "alarmed_injected_windows": hits["windows"],
            "top_channel_is_injected": hits["channel"] / nw, "chance_top_channel": 1.0 / len(chans),
            "top_band_is_injected": hits["band"] / nw,
            "chance_top_band": 1.0 / sum(len(v) for v in bands.values()),
            "flagged_windows_inside_injection": hits["flagged_inside"] / max(hits["flagged"], 1),
            "chance_inside_injection": hits["n_inside"] / max(hits["n_windows"], 1),
            "injected_windows_flagged": hits["flagged_inside"] / max(hits["n_inside"], 1),
            "injection": "tone at a band centre, amplitude = the channel's std, middle third of each healthy test "
                         "block, one channel at a time"}


def _eval_kind(args: argparse.Namespace) -> Any:
    """The kind to evaluate: --method (default: the first kind of --task), its task checked."""
    task = args.task or (kinds.get(args.method).task if args.method else "anomaly")
    kind = kinds.get(args.method or kinds.names(task)[0], task=task)
    kind.require_training()
    return kind


def run_eval(args: argparse.Namespace) -> dict[str, Any]:
    if getattr(args, "dataset", "manifest") == "cmapss":
        from edgefault.evaluation.cmapss import run_cmapss_eval

        return run_cmapss_eval(args)
    if not args.manifest:
        raise InputError("edgefault eval: --manifest is required (or --dataset cmapss --data DIR)")
    if args.window is None:
        args.window = 1024
    kind = _eval_kind(args)
    if kind.task == "classify":
        return run_classify_eval(args, kind)
    from edgefault.io.readers import available_channels

    rows = load_manifest(args.manifest, root=args.root)
    fractions = parse_fractions(args.fractions)
    healthy = [is_healthy(r.label, args.healthy_label) for r in rows]
    if not any(healthy):
        raise InputError(f"manifest has no rows labelled {args.healthy_label}: nothing to train an anomaly model on")
    fs, channels = _rate_and_channels(args, rows, rows[healthy.index(True)])
    # Rows that lack a requested channel cannot be scored by this model: report, don't hide.
    usable, skipped = [], []
    for i, r in enumerate(rows):
        have = {c.upper() for c in (r.channels or available_channels(r.path))}
        (usable if all(c.upper() in have for c in channels) else skipped).append(i)
    native = sorted({float(rows[i].fs) for i in usable if rows[i].fs})
    mixed = len(native) > 1
    band_limit = mixed if args.band_limit == "auto" else args.band_limit == "on"
    if band_limit and args.fmax is None:
        args.fmax = BAND_PASS * fs
    data = _Data([rows[i] for i in usable], fs, channels, [healthy[i] for i in usable], fractions, band_limit)
    data.assume_model_rate = bool(getattr(args, "assume_model_rate", False))
    h_rates = sorted({float(rows[i].fs) for i in usable if healthy[i] and rows[i].fs})
    f_rates = sorted({float(rows[i].fs) for i in usable if not healthy[i] and rows[i].fs})
    h_groups = sorted({str(rows[i].groups.get(args.group, "")) for i in usable if healthy[i]})
    f_groups = sorted({str(rows[i].groups.get(args.group, "")) for i in usable if not healthy[i]})
    confounds = []
    if h_rates != f_rates:
        confounds.append(f"healthy recordings at {h_rates} Hz, faults at {f_rates} Hz: resampled to {fs:g} Hz; "
                         + ("every recording then low-passed by the same filter (flat to 0.35 fs, -80 dB from "
                            "0.40 fs) and features capped at 0.35 fs" if band_limit else
                            "NOT band-limited: content above 0.4 fs differs by recorder (see confound_check)"))
    if h_groups != f_groups:
        confounds.append(f"healthy recordings only at {args.group} {h_groups}, faults at {f_groups}: pooled AUROC "
                         f"compares groups as well as faults; by-{args.group} AUROC only where both exist")
    n_h = sum(1 for i in usable if healthy[i])
    if n_h < 2:
        confounds.append(f"{n_h} healthy recording: one session; the false-alarm rate on later healthy data of the "
                         f"same session does not show between-session shift")
    report: dict[str, Any] = {
        "task": "anomaly", "method": kind.name, "protocol": args.protocol, "fs": fs, "channels": channels,
        "window": args.window, "hop": args.hop or args.window // 2, "fractions": fractions,
        "n_recordings": len(rows), "skipped_recordings": [str(rows[i].path.name) for i in skipped],
        "native_rates": native, "band_limit": ({"pass_hz": BAND_PASS * fs, "stop_hz": BAND_STOP * fs,
                                                "features_fmax_hz": args.fmax} if band_limit else None),
        "confounds": confounds,
    }
    folds = anomaly_folds(data.rows, data.is_healthy, args.protocol, group=args.group, fractions=fractions,
                          window=args.window, length=data.length, train_groups=args.train_groups,
                          test_groups=args.test_groups)
    results = {name: (_run_fold(data, split, args, kind) if isinstance(split, Split) else {"skipped": split})
               for name, split in folds}
    if args.protocol == "logo":
        report["folds"] = results
    else:
        report["result"] = results[folds[0][0]]
    if args.protocol == "cross-group":
        report["train_groups"] = sorted(v.strip() for v in args.train_groups.split(","))
        report["test_groups"] = sorted(v.strip() for v in args.test_groups.split(",")) if args.test_groups else "rest"
    return report


# -- classification (--task classify) -------------------------------------------------------------
def _classify_fold(data: _Data, split: Split, labels: list[str], args: argparse.Namespace, seed: int,
                   kind: Any) -> dict[str, Any]:
    from edgefault.device.runtime import Runtime
    from edgefault.evaluation.metrics import accuracy, confusion_matrix, macro_f1
    from edgefault.io.readers import Recording

    recs, labs = [], []
    for s in split.train:
        i = data.index[s.row.key]
        recs.append(Recording(data=data.signal(i)[s.start:s.stop], fs=data.fs, channels=tuple(data.channels),
                              path=f"{s.row.path.name}[{s.start}:{s.stop}]"))
        labs.append(labels[i])
    # the evaluation scores labels on held-out recordings: no calibration hold-out unless asked for
    opts = argparse.Namespace(**{**vars(args), "seed": seed,
                                 "calib_fraction": getattr(args, "calib_fraction", None) or 0.0})
    with tempfile.TemporaryDirectory() as tmp:
        trained = kind.train(kinds.TrainData(recordings=recs, labels=labs, fs=data.fs, channels=list(data.channels)),
                             opts, Path(tmp) / "eval.efb")
        rt = Runtime(trained.bundle)
    y_true: list[str] = []
    y_pred: list[str] = []
    per_rec: dict[str, float] = {}
    for s in split.test:
        i = data.index[s.row.key]
        x = data.signal(i)[s.start:s.stop]
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
    train_labels = list(trained.bundle.labels or [])
    labs_all = sorted(set(y_true) | set(train_labels))
    _, cm = confusion_matrix(y_true, y_pred, labels=labs_all)
    return {"seed": seed, "accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred),
            "n_train_windows": trained.n_train_windows, "n_test_windows": len(y_true),
            "train_labels": train_labels, "confusion": {"labels": labs_all, "matrix": np.asarray(cm).tolist()},
            "accuracy_by_recording": per_rec}


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    acc = np.array([r["accuracy"] for r in runs])
    f1 = np.array([r["macro_f1"] for r in runs])
    cm = np.sum([np.asarray(r["confusion"]["matrix"]) for r in runs], axis=0)
    return {"accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
            "macro_f1_mean": float(f1.mean()), "macro_f1_std": float(f1.std()),
            "confusion_summed_over_seeds": {"labels": runs[0]["confusion"]["labels"], "matrix": cm.tolist()},
            "seeds": runs}


def run_classify_eval(args: argparse.Namespace, kind: Any) -> dict[str, Any]:
    """Leak-safe classification protocols (:func:`edgefault.evaluation.protocols.classify_folds`),
    each run for ``--seeds`` training seeds; accuracy and macro-F1 are reported as mean and std
    over seeds, per fold and averaged over folds."""
    rows, labels = select_rows(load_manifest(args.manifest, root=args.root), include_labels=args.include_labels,
                               where=args.where, label_columns=args.label_columns, healthy=args.healthy_label)
    fs, channels = _rate_and_channels(args, rows, rows[0])
    is_h = [is_healthy(lab, args.healthy_label) for lab in labels]
    data = _Data(rows, fs, channels, is_h)
    data.assume_model_rate = bool(getattr(args, "assume_model_rate", False))
    w = args.window
    n_seeds = int(args.seeds)
    if n_seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {n_seeds}")
    folds = classify_folds(rows, is_h, args.protocol, group=args.group, window=w, length=data.length,
                           per_group=args.per_group, train_groups=args.train_groups, test_groups=args.test_groups)
    report: dict[str, Any] = {
        "task": "classify", "method": kind.name, "protocol": args.protocol, "group": args.group, "fs": fs,
        "channels": channels, "window": w, "hop": args.hop or w // 2,
        **kind.eval_description(args),
        "seeds": list(range(n_seeds)), "labels": sorted(set(labels)),
        "n_recordings": len(rows), "folds": {}}

    def name(s: Any) -> str:
        return f"{s.row.path.parent.name}/{s.row.path.name}[{s.start}:{s.stop}]"

    for fold, split in folds:
        runs = [_classify_fold(data, split, labels, args, seed, kind) for seed in range(n_seeds)]
        report["folds"][fold] = {"train": [name(s) for s in split.train], "test": [name(s) for s in split.test],
                                 **_summarise(runs)}
    fm = [f["accuracy_mean"] for f in report["folds"].values()]
    report["accuracy_mean_over_folds"] = float(np.mean(fm))
    per_seed = np.mean([[r["accuracy"] for r in f["seeds"]] for f in report["folds"].values()], axis=0)
    report["accuracy_std_over_seeds_of_fold_mean"] = float(np.std(per_seed))
    report["macro_f1_mean_over_folds"] = float(np.mean([f["macro_f1_mean"] for f in report["folds"].values()]))
    return report
