"""`edgefault eval --dataset cmapss`: anomaly detection on NASA C-MAPSS run-to-failure engines.

Protocol (leak-safe by engine: no unit is in two sets):

* the engines of ``train_<subset>.txt`` are shuffled with ``--seed`` and split by unit id into
  train / calibration / test units (``--fractions``, default 0.5,0.2,0.3);
* each cycle is one sample (fs = 1 "Hz" = one cycle), the channels are the sensors, windows are
  ``--window`` cycles (default 30) with hop ``--hop`` (default 1);
* **early life** of a unit = its first ``floor(--early-fraction x life)`` cycles (default 0.3;
  life = cycles to failure). Models are fitted on the windows lying wholly in the early life of
  the train units; the threshold is calibrated at ``--target-far`` on the early-life windows of
  the calibration units;
* every test unit's whole run-to-failure trajectory is streamed through ``Runtime.push`` from a
  packed bundle, exactly as on a device (k-of-n debounced alarm: ``--k``/``--n``).

Reported per model: per-window false-alarm rate in early life (raw flag and debounced alarm) and
the fraction of test units with an alarm in early life; the evidence behind the raw rate
(``early_far_evidence``: effective number of independent early-life windows, from one
autocorrelation of the log scores pooled over the test units, the Wilson 95 % interval on that
size, whether FAR <= 2x target holds within it, the smallest target these windows can check);
false-alarm onsets (the k-of-n alarm turning on) per 1000 early-life cycles, with k and n;
detection rate (units alarmed after early
life, before the end of the run); lead time (last cycle minus the end cycle of the window that
raised the first alarm after early life: median and IQR); AUROC of early-life windows against
windows ending in the last ``--last-k`` cycles; per-sensor attribution (top channels of
``contrib`` in anomalous windows of the last ``--last-k`` cycles, and how many fall on the
sensors known to trend in FD001); and an independent check on ``test_<subset>.txt`` with
``RUL_<subset>.txt``: alarm status at each truncated trajectory's last cycle against its true
remaining life.

Attribution is also checked under control: a step of ``--inject-sd`` early-life standard
deviations is added to one sensor at a time over the test units' early life, and the top channel
of ``contrib`` should name that sensor (chance: one over the number of sensors).

The whole protocol runs for split seeds ``--seed`` .. ``--seed + --seeds - 1`` (default 0..4);
``summary`` holds the mean and std of the headline figures over the seeds, ``runs`` each split.

The Gaussian model (the foundation's, scored through the core) sees per sensor and window the
time statistics ``--stats`` (default mean and std: the level and the spread, which grows with the
trend inside the window).

``--method vae`` also trains a VAE over the raw windows (waveform input, whatever ``--input``
says: spectra of 30-cycle windows mean little) on the same split, scored through its own bundle
in the same run; see :func:`_train`.

Sensors (``--sensors auto``): those with at least 3 distinct values in the train units' early
life; this drops constant sensors (and two-level quantisation noise such as FD001's s6), which
carry no information and have zero variance.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefault.io.cmapss import FD001_CONSTANT, FD001_MIXED, FD001_TRENDING, SENSOR_NAMES, CmapssUnit, load_subset
from edgefault import kinds
from edgefault.errors import InputError
from edgefault.evaluation.protocols import parse_fractions, split_units

DEFAULT_WINDOW = 30
ROLES = ("train", "calib", "test")


def add_cmapss_arguments(p: Any) -> None:
    """Options of ``edgefault eval --dataset cmapss`` (the shared --method, --window, --hop,
    --fractions, --seed, --target-far, --k, --n, --epochs, --arch, --out apply too)."""
    p.add_argument("--data", help="C-MAPSS folder holding train_<subset>.txt (and test_/RUL_ files). Also used: "
                                  "--fractions (engines train,calib,test), --seed/--seeds (split seeds seed.."
                                  "seed+seeds-1, default 0..4), --window (default 30 cycles), --hop (default 1), "
                                  "--target-far, --k/--n, --method gaussian|vae, --arch, --epochs")
    p.add_argument("--subset", default="FD001", help="C-MAPSS sub-dataset (default FD001)")
    p.add_argument("--early-fraction", type=float, default=0.3,
                   help="early life = the first floor(f x life) cycles of a unit (default 0.3)")
    p.add_argument("--last-k", type=int, default=30,
                   help="near failure = windows ending in the last K cycles (default 30)")
    p.add_argument("--sensors", default="auto",
                   help="comma-separated sensors (s1..s21) or 'auto': those with >= 3 distinct values in the "
                        "train units' early life (default)")
    p.add_argument("--stats", default="mean,std",
                   help="gaussian: time statistics per sensor and window (default mean,std: level and, through the "
                        "window's spread, its trend)")
    p.add_argument("--inject-sd", type=float, default=1.0,
                   help="attribution check: step added to one sensor at a time over the test units' early life, "
                        "in early-life standard deviations (default 1; 0 = skip)")
    p.add_argument("--max-units", type=int, default=None,
                   help="use only this many engines of the training file (after shuffling; for quick runs)")


def early_cycles(unit: CmapssUnit, fraction: float) -> int:
    """Number of early-life cycles of a unit: floor(fraction x life)."""
    life = unit.life if unit.life is not None else unit.n_cycles
    return int(np.floor(fraction * life))


def select_sensors(units: Sequence[CmapssUnit], fraction: float, min_distinct: int = 3) -> list[str]:
    """Sensors with at least ``min_distinct`` distinct values over the units' early life."""
    x = np.concatenate([u.sensors[:early_cycles(u, fraction)] for u in units])
    keep = [n for j, n in enumerate(SENSOR_NAMES) if np.unique(x[:, j]).size >= min_distinct]
    if not keep:
        raise InputError("no sensor varies in the train units' early life")
    return keep


def _stats(text: str) -> list[str]:
    s = [v.strip() for v in text.split(",") if v.strip()]
    if not s:
        raise InputError("--stats: give at least one time statistic, e.g. mean or mean,std")
    return s


def _quartiles(v: Sequence[float]) -> dict[str, float | int | None]:
    a = np.asarray(v, dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "median": None, "q25": None, "q75": None, "min": None, "max": None}
    return {"n": int(a.size), "median": float(np.median(a)), "q25": float(np.quantile(a, 0.25)),
            "q75": float(np.quantile(a, 0.75)), "min": float(a.min()), "max": float(a.max())}


def stream_unit(rt: Any, x: np.ndarray) -> dict[str, np.ndarray | list[dict[str, float]]]:
    """Stream one trajectory (n_cycles, n_channels) through a fresh runtime state. Returns the
    valid windows' end cycle (1-based), score, anomaly flag, debounced alarm and channel contrib."""
    rt.reset()
    data = np.ascontiguousarray(x, dtype=np.float32)
    ev = [e for e in rt.push(data if data.shape[1] > 1 else data[:, 0]) if e.valid]
    return {"cycle": np.array([int(round(e.t)) for e in ev], dtype=np.int64),
            "score": np.array([e.score for e in ev], dtype=np.float64),
            "anomaly": np.array([e.anomaly for e in ev], dtype=bool),
            "alarm": np.array([e.alarm for e in ev], dtype=bool),
            "contrib": [e.contrib.get("channel", {}) for e in ev]}


def evaluate_runtime(rt: Any, test_units: Sequence[CmapssUnit], test_file_units: Sequence[CmapssUnit],
                     sensors: Sequence[str], early_fraction: float, last_k: int,
                     effect: dict[str, float] | None = None, inject_scale: np.ndarray | None = None,
                     inject_sd: float = 0.0) -> dict[str, Any]:
    """All figures for one model's runtime on the test units (see the module docstring)."""
    from edgefault.evaluation.metrics import auroc

    from edgefault.device.thresholds import alarm_onsets, far_evidence, onset_rate, pooled_effective_size

    neg, pos = [], []
    early_flags, early_alarms = [], []
    early_onsets = 0
    units_early_alarm = 0
    detected, lead, lead_any = 0, [], []
    top1: dict[str, int] = {}
    top3_trend, top3_total, top1_trend, top3_mixed = 0, 0, 0, 0
    share_near = np.zeros(len(sensors))
    per_unit = []
    for u in test_units:
        r = stream_unit(rt, u.channels(sensors))
        cyc, sc = r["cycle"], r["score"]
        assert isinstance(cyc, np.ndarray) and isinstance(sc, np.ndarray)
        an, al = r["anomaly"], r["alarm"]
        assert isinstance(an, np.ndarray) and isinstance(al, np.ndarray)
        n_early = early_cycles(u, early_fraction)
        last = u.n_cycles
        is_early = cyc <= n_early
        is_near = cyc > last - last_k
        neg.append(sc[is_early])
        pos.append(sc[is_near])
        early_flags.append(an[is_early])
        early_alarms.append(al[is_early])
        early_onsets += alarm_onsets(al[is_early])  # the stream starts from a reset in early life
        units_early_alarm += bool(np.any(al[is_early]))
        late = np.flatnonzero(al & ~is_early)
        first_any = np.flatnonzero(al)
        if first_any.size:
            lead_any.append(last - int(cyc[first_any[0]]))
        first_late = None
        if late.size:
            detected += 1
            first_late = int(cyc[late[0]])
            lead.append(last - first_late)
        contrib = r["contrib"]
        assert isinstance(contrib, list)
        for i in np.flatnonzero(is_near):
            ch = contrib[i]
            if not ch:
                continue
            vals = np.array([ch.get(s, 0.0) for s in sensors])
            tot = float(np.sum(np.abs(vals)))
            if tot > 0:
                share_near += np.abs(vals) / tot
            if not an[i]:
                continue
            order = [sensors[j] for j in np.argsort(-vals)[:3]]
            top1[order[0]] = top1.get(order[0], 0) + 1
            top1_trend += order[0] in FD001_TRENDING
            top3_trend += sum(s in FD001_TRENDING for s in order)
            top3_mixed += sum(s in FD001_MIXED for s in order)
            top3_total += len(order)
        per_unit.append({"unit": u.unit, "life": last, "early_cycles": n_early,
                         "first_alarm_after_early_life": first_late,
                         "alarm_in_early_life": bool(np.any(al[is_early]))})
    negs, poss = np.concatenate(neg), np.concatenate(pos)
    n_top1 = sum(top1.values())
    n_near = sum(int(np.sum(u.n_cycles - np.arange(1, u.n_cycles + 1) < last_k)) for u in test_units)
    trending_in_model = [s for s in sensors if s in FD001_TRENDING]
    flags = np.concatenate(early_flags)
    # windows of one engine overlap and share its offset: one autocorrelation over the engines
    early_n_eff, early_tau = pooled_effective_size(neg)
    k_alarm, n_alarm = int(rt.bundle.thresholds.get("k", 1)), int(rt.bundle.thresholds.get("n", 1))
    target = rt.bundle.thresholds.get("target_far")
    out: dict[str, Any] = {
        "n_test_units": len(test_units),
        "n_early_windows": int(negs.size), "n_near_failure_windows": int(poss.size),
        "early_far_per_window": float(np.mean(np.concatenate(early_flags))),
        "early_alarm_rate_per_window": float(np.mean(np.concatenate(early_alarms))),
        # raw per-window flag rate with its effective size and Wilson CI (the threshold's target)
        "early_far_evidence": {**far_evidence(int(flags.sum()), int(flags.size), early_n_eff, target),
                               "autocorr_time_windows": early_tau,
                               "n_effective_method": "autocorrelation of log scores pooled over the test engines"},
        # a cycle is one flight, not a clock time: onsets per 1000 early-life cycles monitored (hop x windows)
        "early_false_alarm_onsets": onset_rate(early_onsets, flags.size * rt.spec.hop / 1000.0, k_alarm, n_alarm,
                                               unit="1000 cycles"),
        "early_units_with_alarm": units_early_alarm / len(test_units),
        "detection_rate": detected / len(test_units),
        "lead_time_cycles": _quartiles(lead),
        "lead_time_cycles_first_alarm_anywhere": _quartiles(lead_any),
        "auroc_early_vs_last_k": auroc(np.r_[np.zeros(negs.size), np.ones(poss.size)], np.r_[negs, poss])
        if negs.size and poss.size else None,
        "attribution": {
            "n_anomalous_near_failure_windows": n_top1,
            "top1_counts": dict(sorted(top1.items(), key=lambda kv: -kv[1])),
            "top1_on_trending": top1_trend / n_top1 if n_top1 else None,
            "top3_on_trending": top3_trend / top3_total if top3_total else None,
            "top3_on_mixed_s8_s9_s13_s14": top3_mixed / top3_total if top3_total else None,
            "chance_top3_on_trending": len(trending_in_model) / len(sensors),
            "mean_abs_share_near_failure": {s: float(v) for s, v in
                                            sorted(zip(sensors, share_near / max(1, n_near)),
                                                   key=lambda kv: -kv[1])},
        },
        "units": per_unit,
    }
    out["near_failure_detection_per_window"] = float(np.mean(poss > rt.threshold)) if poss.size else None
    if effect is not None:
        share = out["attribution"]["mean_abs_share_near_failure"]
        out["attribution"]["spearman_share_vs_abs_effect_size"] = _spearman(
            np.array([share[s] for s in sensors]), np.abs([effect[s] for s in sensors]))
    if inject_scale is not None and inject_sd > 0:
        out["injected_step"] = injection_attribution(rt, test_units, sensors, early_fraction, inject_scale, inject_sd)
    if test_file_units:
        out["test_file_check"] = _test_file_check(rt, test_file_units, sensors, last_k)
    return out


def sensor_effect_sizes(units: Sequence[CmapssUnit], sensors: Sequence[str], early_fraction: float,
                        last_k: int) -> dict[str, float]:
    """How far each sensor moves by failure: (mean over the last K cycles - mean over early life)
    / early-life standard deviation, pooled over the units (train units: no test data involved)."""
    e = np.concatenate([u.channels(sensors)[:early_cycles(u, early_fraction)] for u in units])
    late = np.concatenate([u.channels(sensors)[-last_k:] for u in units])
    sd = np.maximum(e.std(axis=0), 1e-12)
    return {s: float(v) for s, v in zip(sensors, (late.mean(axis=0) - e.mean(axis=0)) / sd)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def injection_attribution(rt: Any, units: Sequence[CmapssUnit], sensors: Sequence[str], early_fraction: float,
                          scale: np.ndarray, delta: float) -> dict[str, Any]:
    """Controlled attribution check: add a step of ``delta`` x ``scale[j]`` to sensor j alone over
    the whole early life of each unit, one sensor at a time, and count how often the top channel of
    ``contrib`` is sensor j among the windows flagged anomalous (chance: 1 / n_sensors)."""
    hits, flagged, total = 0, 0, 0
    per_sensor: dict[str, float | None] = {}
    for j, s in enumerate(sensors):
        h_j = f_j = 0
        for u in units:
            x = u.channels(sensors)[:early_cycles(u, early_fraction)].copy()
            if x.shape[0] < rt.spec.window:
                continue
            x[:, j] += delta * scale[j]
            r = stream_unit(rt, x)
            an, contrib = r["anomaly"], r["contrib"]
            assert isinstance(an, np.ndarray) and isinstance(contrib, list)
            total += an.size
            for i in np.flatnonzero(an):
                ch = contrib[i]
                f_j += 1
                h_j += max(ch, key=lambda name: ch[name]) == s
        hits += h_j
        flagged += f_j
        per_sensor[s] = h_j / f_j if f_j else None
    return {"step_in_early_life_sd": delta, "n_windows": total,
            "flagged_fraction": flagged / total if total else None,
            "top1_is_injected_sensor": hits / flagged if flagged else None,
            "chance": 1.0 / len(sensors), "top1_is_injected_sensor_by_sensor": per_sensor}


def _test_file_check(rt: Any, units: Sequence[CmapssUnit], sensors: Sequence[str], last_k: int) -> dict[str, Any]:
    """State at the last cycle of each truncated test trajectory against its true remaining life."""
    from edgefault.evaluation.metrics import auroc

    score, alarm, rul = [], [], []
    too_short = 0
    for u in units:
        r = stream_unit(rt, u.channels(sensors))
        sc, al = r["score"], r["alarm"]
        assert isinstance(sc, np.ndarray) and isinstance(al, np.ndarray)
        if sc.size == 0 or u.rul_end is None:
            too_short += 1
            continue
        score.append(float(sc[-1]))
        alarm.append(bool(al[-1]))
        rul.append(int(u.rul_end))
    s, a, r_ = np.array(score), np.array(alarm), np.array(rul)
    near, mid, far = r_ <= last_k, (r_ > last_k) & (r_ <= 100), r_ > 100

    def rate(m: np.ndarray) -> float | None:
        return float(np.mean(a[m])) if np.any(m) else None

    return {"n_units": int(s.size), "n_too_short_for_a_window": too_short,
            f"alarm_at_end_rul_le_{last_k}": rate(near), f"n_rul_le_{last_k}": int(near.sum()),
            f"alarm_at_end_rul_{last_k}_to_100": rate(mid), f"n_rul_{last_k}_to_100": int(mid.sum()),
            "alarm_at_end_rul_gt_100": rate(far), "n_rul_gt_100": int(far.sum()),
            f"auroc_end_score_rul_le_{last_k}_vs_rest": auroc(near.astype(int), s)
            if 0 < near.sum() < near.size else None}


def _early_blocks(units: Sequence[CmapssUnit], sensors: Sequence[str], fraction: float,
                  window: int) -> tuple[list[np.ndarray], int]:
    """Early-life blocks (n_early, n_sensors) of units with at least one whole window in early life."""
    blocks, skipped = [], 0
    for u in units:
        n = early_cycles(u, fraction)
        if n < window:
            skipped += 1
            continue
        blocks.append(np.ascontiguousarray(u.channels(sensors)[:n], dtype=np.float32))
    return blocks, skipped


def _train(kind: Any, sensors: Sequence[str], spec: Any, train_blocks: list[np.ndarray],
           calib_blocks: list[np.ndarray], args: argparse.Namespace, seed: int, train_ids: list[int],
           out: Path) -> tuple[Any, dict[str, Any]]:
    """Train ``kind`` on the train engines' early life, threshold calibrated on the calibration
    engines' early life (``TrainData.calib``).

    The train engines' early-life blocks are joined into one recording with a NaN row between
    engines: windows across a boundary are non-finite and dropped, so no training window mixes two
    engines. Kinds that take a feature spec (the Gaussian) see the time statistics ``spec``; the
    others (the VAE) build their own input, raw windows of the sensors (``--input waveform``)."""
    from edgefault.io.readers import Recording

    opts = argparse.Namespace(**{**vars(args), "seed": seed, "input": "waveform", "calib_fraction": None,
                                 "name": f"cmapss-{args.subset}-{kind.name}" + (f"-{args.arch}" if kind.reference else "")})
    info = {"dataset": f"C-MAPSS {args.subset}", "train_units": train_ids, "early_fraction": args.early_fraction}
    sep = np.full((1, len(sensors)), np.nan, dtype=np.float32)
    parts: list[np.ndarray] = []
    for b in train_blocks:
        parts += [b, sep]
    rec = Recording(data=np.ascontiguousarray(np.concatenate(parts[:-1]), dtype=np.float32), fs=1.0,
                    channels=tuple(sensors), path="cmapss-train-engines-early-life")
    data = kinds.TrainData(recordings=[rec], fs=1.0, channels=list(sensors), calib=calib_blocks, train_hop=1,
                           spec=spec if kind.takes_feature_spec else None, info=info)
    opts.window = spec.window
    opts.hop = spec.hop
    trained = kind.train(data, opts, out)
    return trained.bundle, {"threshold": trained.threshold, "calibration": trained.calibration,
                            "n_train_windows": trained.n_train_windows, "n_calib_windows": trained.n_calib_windows,
                            **trained.eval_info}


SUMMARY_KEYS: tuple[tuple[str, ...], ...] = (
    ("early_far_per_window",), ("early_alarm_rate_per_window",), ("early_units_with_alarm",), ("detection_rate",),
    ("lead_time_cycles", "median"), ("lead_time_cycles", "q25"), ("lead_time_cycles", "q75"),
    ("auroc_early_vs_last_k",), ("near_failure_detection_per_window",), ("attribution", "top1_on_trending"),
    ("attribution", "top3_on_trending"), ("attribution", "chance_top3_on_trending"),
    ("attribution", "spearman_share_vs_abs_effect_size"), ("injected_step", "top1_is_injected_sensor"),
    ("injected_step", "flagged_fraction"), ("early_far_evidence", "n_effective"),
    ("early_far_evidence", "smallest_target_checkable"),
    ("early_far_evidence", "smallest_target_confirmed_at_target_rate"), ("early_false_alarm_onsets", "per_time_unit"),
)


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over the split seeds of the headline figures of every model."""
    out: dict[str, Any] = {}
    for m in runs[0]["models"]:
        d: dict[str, Any] = {}
        keys = list(SUMMARY_KEYS) + [("test_file_check", k) for k in runs[0]["models"][m].get("test_file_check", {})
                                     if k.startswith(("alarm_at_end", "auroc"))]
        for path in keys:
            vals = []
            for r in runs:
                v: Any = r["models"][m]
                for k in path:
                    v = v.get(k) if isinstance(v, dict) else None
                if v is not None:
                    vals.append(float(v))
            if vals:
                d[".".join(path)] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)}
        # per seed: the splits share engines, so their intervals are not pooled
        d["early_far_evidence_by_seed"] = [{"seed": r["seed"], **r["models"][m]["early_far_evidence"]} for r in runs]
        d["early_false_alarm_onsets_by_seed"] = [{"seed": r["seed"], **r["models"][m]["early_false_alarm_onsets"]}
                                                 for r in runs]
        out[m] = d
    return out


def run_cmapss_eval(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol of the module docstring over split seeds ``--seed`` .. ``--seed + --seeds - 1``."""
    if not args.data:
        raise InputError("--dataset cmapss needs --data (the folder with train_FD001.txt)")
    kind = kinds.get(args.method or kinds.names("anomaly")[0], task="anomaly")
    kind.require_training()
    if not 0.05 <= args.early_fraction <= 0.8:
        raise InputError(f"--early-fraction must be in [0.05, 0.8], got {args.early_fraction}")
    if args.last_k < 1:
        raise InputError(f"--last-k must be >= 1, got {args.last_k}")
    n_seeds = int(getattr(args, "seeds", 1) or 1)
    if n_seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {n_seeds}")
    fractions = parse_fractions(args.fractions)
    train_file, test_file = load_subset(args.data, args.subset)
    runs = [_run_split(args, kind, train_file, test_file, fractions, args.seed + i) for i in range(n_seeds)]
    head = {k: runs[0][k] for k in ("dataset", "protocol", "fractions", "window_cycles", "hop_cycles",
                                    "early_fraction", "last_k", "target_far", "k", "n")}
    return {**head, "method": kind.name, "seeds": [r["seed"] for r in runs], "summary": _summarise(runs),
            "runs": runs}


def _run_split(args: argparse.Namespace, kind: Any, train_file: list[CmapssUnit], test_file: list[CmapssUnit],
               fractions: list[float], seed: int) -> dict[str, Any]:
    from edgefault.device.runtime import Runtime
    from edgefault.device.spec import FeatureSpec

    window = int(args.window) if args.window else DEFAULT_WINDOW
    hop = int(args.hop) if args.hop else 1
    by_id = {u.unit: u for u in train_file}
    split = split_units(list(by_id), fractions, seed=seed, max_units=args.max_units)
    units = {role: [by_id[i] for i in split[role]] for role in ROLES}
    if args.sensors.strip().lower() == "auto":
        sensors = select_sensors(units["train"], args.early_fraction)
    else:
        sensors = [s.strip() for s in args.sensors.split(",") if s.strip()]
        bad = [s for s in sensors if s not in SENSOR_NAMES]
        if bad or not sensors:
            raise InputError(f"--sensors: unknown sensors {bad}; expected names s1..s21 or 'auto'")
    spec = FeatureSpec(fs=1.0, window=window, hop=hop, channels=tuple(sensors),
                       blocks=({"kind": "time_stats", "stats": _stats(args.stats)},), taper="rect")
    train_blocks, skip_t = _early_blocks(units["train"], sensors, args.early_fraction, window)
    calib_blocks, skip_c = _early_blocks(units["calib"], sensors, args.early_fraction, window)
    if not train_blocks or not calib_blocks:
        raise InputError(f"no train or calibration unit has {window} early-life cycles: lower --window or "
                         f"raise --early-fraction")
    effect = sensor_effect_sizes(units["train"], sensors, args.early_fraction, args.last_k)
    early_train = np.concatenate([u.channels(sensors)[:early_cycles(u, args.early_fraction)] for u in units["train"]])
    inject_scale = early_train.std(axis=0)
    report: dict[str, Any] = {
        "dataset": f"C-MAPSS {args.subset}", "protocol": "units split train/calib/test (no unit in two sets)",
        "seed": seed, "fractions": fractions, "split": split,
        "window_cycles": window, "hop_cycles": hop, "early_fraction": args.early_fraction, "last_k": args.last_k,
        "target_far": args.target_far, "k": args.k, "n": args.n, "sensors": sensors,
        "dropped_sensors": [s for s in SENSOR_NAMES if s not in sensors],
        "dropped_known_constant": sorted(set(FD001_CONSTANT) - set(sensors), key=SENSOR_NAMES.index),
        "units_skipped_short_early_life": {"train": skip_t, "calib": skip_c},
        "sensor_effect_size_train_units": effect,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for k in ([kinds.get(kind.reference, task="anomaly")] if kind.reference else []) + [kind]:
            bundle, info = _train(k, sensors, spec, train_blocks, calib_blocks, args, seed, split["train"],
                                  Path(tmp) / f"{k.name}.efb")
            extra = {"stats": _stats(args.stats)} if k.takes_feature_spec else {}
            report["models"][k.name] = {**info, **extra, **evaluate_runtime(
                Runtime(bundle), units["test"], test_file, sensors, args.early_fraction, args.last_k, effect,
                inject_scale, args.inject_sd)}
    return report
