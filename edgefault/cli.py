"""The `edgefault` command line."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Sequence


from edgefault import __version__
from edgefault.errors import EdgefaultError, InputError, RateUnknownError
from edgefault.device.thresholds import CALIBRATIONS
from edgefault.io.manifest import HEALTHY_LABELS


# -- option values: checked by argparse, so a bad number is refused naming its option -------------
def _number(text: str, kind: type) -> Any:
    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _positive_int(text: str) -> int:
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(v)


def _count(text: str) -> int:
    v = _number(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(v)


def _positive(text: str) -> float:
    v = _number(text, float)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return float(v)


def _far(text: str) -> float:
    v = _number(text, float)
    if not 0 < v < 0.5:
        raise argparse.ArgumentTypeError(f"expected a false-alarm rate per window in (0, 0.5), e.g. 0.01, got {text!r}")
    return float(v)


def _calib_fraction(text: str) -> float:
    v = _number(text, float)
    if not 0.05 <= v <= 0.7:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0.05, 0.7], got {text!r}")
    return float(v)


def _check_k_of_n(k: int | None, n: int | None) -> None:
    if k is not None and n is not None and k > n:
        raise InputError(f"--k {k} is more than --n {n}: the alarm needs k of the last n windows, so k <= n")


def _channels_arg(s: str | None) -> list[str] | None:
    if s is None:
        return None
    out = [c.strip() for c in s.replace("+", ",").split(",") if c.strip()]
    if not out:
        raise InputError(f"--channels {s!r} names no channel; use e.g. --channels DE,FE")
    return out


def _progress(it: Sequence[Any], desc: str):  # type: ignore[no-untyped-def]
    from edgefault.progress import progress

    return progress(it, desc=desc)


# -- train ---------------------------------------------------------------------------------------
def _training_sources(args: argparse.Namespace, kind: Any) -> tuple[list[tuple[Path, float | None, list[str] | None]],
                                                                    list[str] | None]:
    """(path, fs from manifest, channels from manifest) of the recordings to train on, and their
    labels for classify kinds (anomaly kinds: the healthy rows only, no labels)."""
    from edgefault.io.manifest import is_healthy, load_manifest, select_rows

    if kind.task == "classify":
        if not args.manifest:
            raise InputError(f"train classify --method {kind.name} needs --manifest M.csv with "
                             f"path,label[,fs,channels,...] columns")
        rows, labels = select_rows(load_manifest(args.manifest, root=args.root), include_labels=args.include_labels,
                                   where=args.where, label_columns=args.label_columns, healthy=args.healthy_label)
        return [(r.path, r.fs, list(r.channels) if r.channels else None) for r in rows], labels
    if args.manifest:
        rows = load_manifest(args.manifest, root=args.root)
        healthy = [r for r in rows if is_healthy(r.label, args.healthy_label)]
        if not healthy:
            labels = sorted({r.label for r in rows})
            raise InputError(f"manifest {args.manifest} has no rows labelled {args.healthy_label} "
                             f"(labels present: {labels}); pass --healthy-label")
        return [(r.path, r.fs, list(r.channels) if r.channels else None) for r in healthy], None
    if not args.files:
        raise InputError("give healthy recordings: --manifest M.csv or one or more FILEs")
    return [(Path(f), None, None) for f in args.files], None


def cmd_train(args: argparse.Namespace) -> int:
    from edgefault import kinds
    from edgefault.io.readers import read_recording

    kind = kinds.get(args.method or kinds.names(args.task)[0], task=args.task)
    args.window = args.window or 1024
    if args.task == "anomaly":
        _check_k_of_n(args.k, args.n)
    kind.require_training()  # fails early with MissingDependencyError naming the install
    sources, labels = _training_sources(args, kind)
    channels = _channels_arg(args.channels)
    recs = []
    fs = args.fs
    rates: list[dict[str, Any]] = []
    for path, row_fs, row_channels in _progress(sources, "reading"):
        if fs is None:
            fs = row_fs
        rec = read_recording(path, channels=channels or row_channels, model_fs=fs, default_fs=row_fs or args.file_fs,
                             default_fs_source="manifest" if row_fs else "option",
                             assume_model_rate=args.assume_model_rate)
        _note_rate("train", path, rec)
        rates.append({"file": Path(path).name, "fs": rec.source_fs or rec.fs, "fs_source": rec.fs_source})
        fs = rec.fs
        if channels is None:
            channels = list(rec.channels)
        recs.append(dataclasses.replace(rec, path=Path(path).name))
    assert fs is not None and channels is not None
    data = kinds.TrainData(recordings=recs, labels=labels, fs=float(fs), channels=list(channels))
    out = Path(args.out)
    # written beside --out and moved there only when accepted: --strict never leaves a bundle, nor
    # destroys an earlier one at that path
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        trained = kind.train(data, args, partial)
        trained.summary["out"] = str(out)
        trained.summary["file_rates"] = rates
        if trained.calib_scores is not None:
            _calibration_evidence(args, trained)
        cal = trained.summary.get("calibration")
        if isinstance(cal, dict) and "n_calib_effective" in cal:
            low = cal["min_supported_far"]
            msg = (f"the 'not normal' threshold was calibrated on {cal['n_normal_windows']} held-out healthy windows "
                   f"({cal['n_calib_effective']:g} independent), enough for --target-far down to "
                   + (f"{low:.2g}" if low is not None else "no target") + "; 'unknown' below a top-class "
                   f"probability of {cal['unknown_below']:.3g} ({cal['unknown_rate']:.1%} of "
                   f"{cal['n_windows']} held-out windows)")
            if cal["target_supported"]:
                print(f"edgefault train: {msg}", file=sys.stderr)
            else:
                print(f"edgefault train: warning: {msg}: the threshold for --target-far {args.target_far:g} is "
                      f"extrapolated; record longer healthy recordings or raise --calib-fraction or --target-far",
                      file=sys.stderr)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    print(json.dumps(trained.summary, allow_nan=False))
    return 0


EVIDENCE_KEYS = ("n_calib_effective", "calib_autocorr_time", "min_supported_far", "target_supported")


def _calibration_evidence(args: argparse.Namespace, trained: Any) -> None:
    """Say how many independent calibration windows training used and the smallest false-alarm
    target they support (10 expected independent exceedances: n_eff * far >= 10); warn below it,
    refuse with --strict. The numbers are those of the bundle's training record
    (edgefault.device.thresholds.evidence, computed where the threshold is calibrated)."""
    from edgefault.device.thresholds import evidence

    record = trained.bundle.manifest.get("training") or {}
    ev = ({k: record[k] for k in EVIDENCE_KEYS} if all(k in record for k in EVIDENCE_KEYS)
          else evidence(trained.calib_scores, args.target_far))
    trained.summary.update(ev)
    n_calib = trained.summary.get("n_calib_windows")
    n_train = trained.summary.get("n_train_windows", trained.summary.get("n_fit_windows"))
    lowest = ev["min_supported_far"]
    counts = ((f"{n_train} training / " if n_train is not None else "")
              + f"{n_calib} calibration windows; the calibration windows count as "
              f"{ev['n_calib_effective']:g} independent ones (autocorrelation time {ev['calib_autocorr_time']:g} "
              f"windows: overlapping windows are serially correlated), enough for --target-far down to "
              + (f"{lowest:.2g}" if lowest is not None else "no target") + " (10 expected independent exceedances)")
    if ev["target_supported"]:
        print(f"edgefault train: {counts}", file=sys.stderr)
        return
    need = math.ceil(10.0 / args.target_far * ev["calib_autocorr_time"]) if ev["calib_autocorr_time"] else None
    msg = (f"{counts}: the threshold for --target-far {args.target_far:g} is extrapolated; record more healthy "
           f"data" + (f" (about {need} calibration windows, i.e. {need / args.calib_fraction:.0f} windows in all at "
                      f"--calib-fraction {args.calib_fraction:g})" if need else "")
           + (f" or raise --target-far to {lowest:.2g} or more" if lowest is not None else "")
           + ("" if args.strict else " (--strict refuses such a baseline)"))
    if args.strict:
        raise InputError(msg + "; refused by --strict (no bundle written)")
    print(f"edgefault train: warning: {msg}", file=sys.stderr)


def _drift_far(text: str) -> float | None:
    """--drift-far: a rate, or off / none for a bundle without drift monitors."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate such as 1e-4, or 'off'; got {text!r}") from None


# -- score ---------------------------------------------------------------------------------------
def _note_rate(command: str, path: Any, rec: Any) -> None:
    """Tell on stderr the rate a file was read at and where it came from, and any rate_fit warning."""
    native = rec.source_fs or rec.fs
    print(f"edgefault {command}: {path}: read at {native:g} Hz ({rec.fs_source})"
          + (f", resampled to {rec.fs:g} Hz" if rec.source_fs else ""), file=sys.stderr)
    if rec.rate_warning:
        print(f"edgefault {command}: warning: {cli_words(command, rec.rate_warning)}", file=sys.stderr)


def _event_json(file: str, ev: Any) -> str:
    d = ev.to_dict()
    d = {"file": file, **d}
    return json.dumps(d, allow_nan=False, separators=(",", ":"))


def cmd_score(args: argparse.Namespace) -> int:
    from edgefault.io.readers import read_recording
    from edgefault.device.runtime import Runtime

    _check_k_of_n(args.k, args.n)
    rt = Runtime(args.bundle, alarm_k=args.k, alarm_n=args.n, drift=False if args.no_drift else None,
                 adaptive_threshold=args.adaptive_threshold)
    channels = _channels_arg(args.channels) or list(rt.channels)
    if len(channels) != len(rt.channels):
        raise InputError(f"--channels names {len(channels)} channels; the bundle expects "
                         f"{len(rt.channels)} ({list(rt.channels)})")
    out = open(args.out, "w") if args.out and args.out != "-" else sys.stdout
    n_events = n_alarm_windows = 0
    try:
        for f in args.files:
            rec = read_recording(f, channels=channels, model_fs=rt.fs, default_fs=args.fs,
                                 assume_model_rate=args.assume_model_rate)
            _note_rate("score", f, rec)
            rt.reset()
            data = rec.data if rec.data.shape[1] > 1 else rec.data[:, 0]
            for start in range(0, data.shape[0], args.chunk):
                for ev in rt.push(data[start:start + args.chunk]):
                    out.write(_event_json(str(f), ev) + "\n")
                    n_events += 1
                    n_alarm_windows += ev.anomaly
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"scored {n_events} windows from {len(args.files)} file(s); {n_alarm_windows} above threshold",
          file=sys.stderr)
    return 0


# -- report ----------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from edgefault.report.html import write_report

    data, size = write_report(args.events, args.out, strict=args.strict, bundle=args.bundle,
                              explain=args.explain, title=args.title, scale=args.scale,
                              max_plots=args.max_plots, max_spans=args.max_spans)
    if data.n_bad:
        where = "; ".join(f"{src} line {ln}: {why}" for src, ln, why in data.bad[:5])
        print(f"edgefault report: warning: skipped {data.n_bad} bad line(s) of {data.n_lines} ({where}"
              f"{'; ...' if data.n_bad > 5 else ''}); --strict makes them an error", file=sys.stderr)
    print(f"wrote {args.out} ({size / 1024:.0f} KiB): {data.n_events} windows, {len(data.spans)} alarm span(s)",
          file=sys.stderr)
    return 0


# -- explain -------------------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    from edgefault.report.explain import explain_recording

    rep = explain_recording(args.bundle, args.recording, start=args.start, end=args.end,
                            channels=_channels_arg(args.channels), fs=args.fs, baseline=args.baseline,
                            method=args.method, steps=args.steps, tol=args.tol, max_windows=args.max_windows,
                            per_window=not args.no_windows, assume_model_rate=args.assume_model_rate)
    print(f"edgefault explain: {args.recording}: read at {rep['recording_fs']:g} Hz ({rep['fs_source']})",
          file=sys.stderr)
    if rep["rate_warning"]:
        print(f"edgefault explain: warning: {cli_words('explain', rep['rate_warning'])}", file=sys.stderr)
    text = json.dumps(rep, allow_nan=False)
    if args.out and args.out != "-":
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    c = rep["completeness"]
    agg = rep.get("aggregate_above_threshold") or rep["aggregate"]
    top = max(agg["channel"], key=agg["channel"].get)
    print(f"explained {rep['n_windows']} windows ({rep['n_above_threshold']} above threshold) in {rep['seconds']} s; "
          f"top channel {top}" + (f"; completeness max rel. error {c['max_rel_error']:.2g}" if c["ok"] is not None
                                  else "") + (f"; wrote {args.out}" if args.out and args.out != "-" else ""),
          file=sys.stderr)
    if c["ok"] is False:
        print(f"edgefault explain: warning: completeness error above --tol {args.tol} for some windows even at "
              f"{rep['max_steps_used']} steps", file=sys.stderr)
    return 0


# -- info ------------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from edgefault.device.bundle import load_bundle

    b = load_bundle(args.bundle)
    d = b.describe()
    if not args.verbose:
        d.get("training", {}).pop("blocks", None) if isinstance(d.get("training"), dict) else None
    print(json.dumps(d, indent=2, default=str))
    return 0


# -- serve ------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from edgefault.daemon import serve

    return serve(args.config, log_level=args.log_level)


# -- eval -------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from edgefault.evaluation.experiments import run_eval

    report = run_eval(args)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    print(text)
    return 0


# -- demo -------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from edgefault.demo import run_demo

    return run_demo(out_dir=args.out_dir, seed=args.seed, quiet=args.quiet)


def _method_help(task: str | None = None) -> str:
    from edgefault import kinds

    return "; ".join(f"{k.name} ({k.task}{', default' if k is kinds.kinds(k.task)[0] else ''}): {k.help}"
                     for k in kinds.kinds(task))


def _add_model_arguments(p: argparse.ArgumentParser, *, calib_fraction: bool, task: str | None = None) -> None:
    """Options every model kind (of ``task``) reads, for train and eval."""
    p.add_argument("--method", help="model kind: " + _method_help(task))
    p.add_argument("--fs", type=_positive, help="model sample rate in Hz; files at another rate are resampled "
                                            "(eval default: the most common rate in the manifest)")
    p.add_argument("--assume-model-rate", action="store_true",
                   help="read files whose rate is known from nothing (file, manifest fs, --file-fs, CWRU 12k/48k "
                        "naming) at the model rate (--fs, else the first file's) instead of refusing them")
    p.add_argument("--channels", help="channels to use, e.g. DE,FE (train default: all of the first file; "
                                      "eval default: DE if present)")
    p.add_argument("--window", type=_positive_int, default=None, help="window length in samples (default 1024; "
                                                            "eval --dataset cmapss: 30 cycles)")
    p.add_argument("--hop", type=_positive_int, help="hop in samples (default window/2)")
    p.add_argument("--fmax", type=_positive, help="highest frequency in Hz any spectral feature may use (default: the "
                                              "kind's own, about 0.45 fs; eval: set by --band-limit)")
    p.add_argument("--seed", type=int, default=0, help="random seed of training (default 0; eval --dataset "
                                                       "cmapss: the first split seed)")
    if task == "classify":
        p.add_argument("--healthy-label", nargs="+", default=list(HEALTHY_LABELS),
                       help="manifest labels that mark healthy recordings (default: normal healthy)")
        p.add_argument("--target-far", type=_far, default=0.01,
                       help="classify: target rate of false 'not normal' decisions per window on the held-out "
                            "healthy windows (see the method's --calib-fraction; default 0.01)")
        return
    p.add_argument("--target-far", type=_far, default=0.01, help="anomaly: target false-alarm rate per window "
                                                                  "(default 0.01)")
    p.add_argument("--calibration", default="auto", choices=list(CALIBRATIONS),
                   help="anomaly: threshold calibration on held-out healthy windows: robust = block bootstrap for "
                        "serial correlation and a between-session offset, threshold at the 90 %% guaranteed-"
                        "performance quantile; auto = percentile, or a log-normal tail below 10 expected "
                        "exceedances; pot = peaks over threshold (generalised Pareto) (default auto)")
    if calib_fraction:
        p.add_argument("--calib-fraction", type=_calib_fraction, default=0.3,
                       help="anomaly: fraction at the end of each healthy recording held out for calibration "
                            "(default 0.3)")
    p.add_argument("--k", type=_positive_int, default=3, help="anomaly: alarm when k of the last n windows are anomalous "
                                                    "(default 3)")
    p.add_argument("--n", type=_positive_int, default=5, help="see --k (default 5)")
    p.add_argument("--drift-far", type=_drift_far, default=1e-4, metavar="RATE",
                   help="anomaly: target false-drift onsets per window of the drift monitors, calibrated on "
                        "the held-out healthy blocks (default 1e-4; 'off': no drift monitors; docs/drift.md)")
    p.add_argument("--adaptive-threshold", action="store_true",
                   help="anomaly: enable the per-machine adaptive threshold in the bundle (default off)")
    p.add_argument("--healthy-label", nargs="+", default=list(HEALTHY_LABELS),
                   help="manifest labels that mark healthy recordings (default: normal healthy)")


def _add_kind_arguments(p: argparse.ArgumentParser, task: str | None = None, only: str | None = None) -> None:
    """Each registered kind's (of ``task``) own options, in a group of its own; ``only``: that
    kind's alone (`--method NAME --help` shows only that method's options)."""
    from edgefault import kinds

    for k in kinds.kinds(task):
        if only is None or k.name == only:
            k.add_arguments(p.add_argument_group(f"--method {k.name} ({k.task})"))


def _add_row_arguments(p: Any) -> None:
    """Manifest row selection and class labels (classify kinds, train and eval)."""
    p.add_argument("--label-columns", help="manifest columns joined with '@' into the class label of non-healthy "
                                           "rows, e.g. fault,diameter_in (default: the label column)")
    p.add_argument("--include-labels", help="keep only rows with these labels (comma-separated)")
    p.add_argument("--where", action="append", help="keep only rows with COLUMN in values: COLUMN=V1,V2 (repeatable)")


def _add_eval_arguments(p: argparse.ArgumentParser, only: str | None = None) -> None:
    from edgefault.evaluation.cmapss import add_cmapss_arguments

    p.add_argument("--dataset", default="manifest", choices=["manifest", "cmapss"],
                   help="manifest: recordings listed in --manifest (default); cmapss: NASA C-MAPSS engines in --data "
                        "(see edgefault/evaluation/cmapss.py)")
    p.add_argument("--manifest",
                   help="CSV with path,label[,fs,channels,group columns] (required with --dataset manifest)")
    p.add_argument("--root", help="folder that relative manifest paths are relative to")
    p.add_argument("--task", choices=["anomaly", "classify"],
                   help="what to evaluate (default: the task of --method, else anomaly)")
    p.add_argument("--protocol", default="split", choices=["split", "cross-group", "logo"],
                   help="split: chronological blocks of each recording; cross-group: train on "
                        "--train-groups, test on --test-groups; logo: leave one group out")
    p.add_argument("--group", default="load_hp", help="group column for cross-group / logo (default load_hp)")
    p.add_argument("--train-groups", help="comma-separated group values to train on (cross-group)")
    p.add_argument("--test-groups", help="comma-separated group values to test on (cross-group; default: the rest)")
    p.add_argument("--fractions", default="0.5,0.2,0.3",
                   help="train,calib,test fractions of each healthy recording, in time order (default 0.5,0.2,0.3)")
    p.add_argument("--out", help="also write the JSON report here")
    p.add_argument("--band-limit", default="auto", choices=["auto", "on", "off"],
                   help="anomaly: pass every recording through the same low-pass (flat to 0.35 fs, -80 dB from "
                        "0.40 fs) and cap features at 0.35 fs, so recordings resampled from another rate do not "
                        "differ from native ones above the resampler's pass band (default auto: on when the "
                        "manifest's recordings have different native rates)")
    p.add_argument("--allow-confound", action="store_true",
                   help="anomaly: report instead of refusing when a probe on content above 0.4 fs alone separates "
                        "healthy from fault and the model's features reach there")
    _add_model_arguments(p, calib_fraction=False)
    add_cmapss_arguments(p.add_argument_group("C-MAPSS (--dataset cmapss)"))
    c = p.add_argument_group("classify (--task classify)")
    _add_row_arguments(c)
    c.add_argument("--seeds", type=_positive_int, default=5, help="seeds 0..N-1 of the training (default 5)")
    c.add_argument("--per-group", action="store_true", help="split protocol: one model per value of --group")
    _add_kind_arguments(p, only=only)


# -- errors in the command line's words ------------------------------------------------------------
# The library's messages name its Python parameters (fs=, default_fs=, model_fs, format=, ...);
# each pattern here says the same in the options of the command that failed. Keys: (pattern,
# replacement or {command: replacement}); a command without an entry gets the "*" one.
_CLI_WORDS: list[tuple[str, Any]] = [
    (r" \(channels= / --channels\)", " (--channels)"),
    (r"; expected one of ([^;]*), or pass format=$", r"; expected one of \1 (rename the file: the command line "
                                                      r"takes the format from the extension)"),
    (r" \(fix the file, or pass fs=\)", " (fix the file)"),
    (r"give it with --fs <Hz> \(fs=\)", {"train": "give it with --file-fs <Hz> (or a manifest fs column)",
                                         "eval": "give it in the manifest's fs column", "*": "give it with --fs <Hz>"}),
    (r"\bchannels=\[([^\]]*)\]", lambda m: "--channels " + ",".join(c.strip(" '\"") for c in m.group(1).split(","))),
    (r"\bchannels=", "--channels "),
    (r"\bor use lognormal$", "or use --calibration lognormal"),
    (r"^(time range \[.*\) s of .* holds no full window of .*)$", r"\1 (choose --start / --end)"),
    (r"\bfs_in=(\S+) Hz to fs_out=(\S+) Hz", r"\1 Hz (the file's rate) to \2 Hz (the model's)"),
    (r"fewer than min_len=(\d+)", r"fewer than one window of \1 samples (--window)"),
    (r"\bmodel_fs\b", {"train": "--fs", "eval": "--fs", "*": "the bundle's rate"}),
    (r"\bdefault_fs\b", {"train": "--file-fs", "eval": "the manifest fs", "*": "--fs"}),
    (r"blocks\[\d+\]\.n_bands:", "--bands:"),
    (r"blocks\[\d+\] \(band_energy\)\.fmax:", "--fmax:"),
    (r"\bor (use )?a smaller hop\b", r"or \1a smaller --hop (or --window)"),
    (r"(too short for \d+ blocks of at least \d+ samples.*)$", r"\1 (use a smaller --window or longer recordings)"),
    (r"^alarm settings: alarm: k must be in \[1, n=(\d+)\], got (\S+)$",
     r"--k \2 must be in [1, n = \1] (n: --n, else the bundle's)"),
    (r"^alarm settings: alarm: n must be", "--n must be"),
]


def _rate_advice(command: str, e: RateUnknownError) -> str:
    """What to pass when a file's rate is unknown, in the options of ``command``."""
    head = f"{e.path!r} ({e.format}) does not store its sample rate"
    if command == "train":
        return (f"{head}: give the rate it was recorded at with --file-fs <Hz> (or an fs column in --manifest), "
                f"or pass --fs <Hz> --assume-model-rate to read it at the model rate")
    if command == "eval":
        return (f"{head}: give the rate it was recorded at in the manifest's fs column, or pass --assume-model-rate "
                f"(read at --fs)")
    model = f" ({e.model_fs:g} Hz)" if e.model_fs else ""
    return (f"{head}: give the rate it was recorded at with --fs <Hz>, or pass --assume-model-rate to read "
            f"it at the bundle's rate{model}")


def cli_message(command: str, e: BaseException) -> str:
    """The message of an error raised under `edgefault COMMAND`, naming that command's options
    instead of the Python parameters the library's message names."""
    if isinstance(e, RateUnknownError):
        return _rate_advice(command, e)
    return cli_words(command, str(e))


def cli_words(command: str, msg: str) -> str:
    """``msg`` (an error or warning of the library) in the words of `edgefault COMMAND`."""
    prefix = f"edgefault {command}: "
    if msg.startswith(prefix):
        msg = msg[len(prefix):]
    for pattern, repl in _CLI_WORDS:
        if isinstance(repl, dict):  # by command; a str or a function of the match otherwise
            repl = repl.get(command, repl["*"])
        msg = re.sub(pattern, repl, msg)
    return msg


def _help_method(argv: Sequence[str]) -> str | None:
    """The --method of a `--help` request (`train anomaly --method vae --help`), else None."""
    from edgefault import kinds

    if not any(a in ("-h", "--help") for a in argv):
        return None
    for i, a in enumerate(argv):
        name = a.split("=", 1)[1] if a.startswith("--method=") else (argv[i + 1] if a == "--method" and
                                                                      i + 1 < len(argv) else None)
        if name in kinds.names():
            return name
    return None


def build_parser(help_method: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. ``help_method``: list only that method's own options (for
    `--method NAME --help`); parsing always uses the full parser."""
    p = argparse.ArgumentParser(prog="edgefault", description="Machine-fault detection at the edge.")
    p.add_argument("--version", action="version", version=f"edgefault {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           help="what to do; `edgefault COMMAND --help` describes each")

    t = sub.add_parser("train", help="train a model and pack a bundle",
                       description="train anomaly: a model of healthy signal that scores how unusual each window "
                                   "is; train classify: a fault classifier from labelled recordings. "
                                   "`edgefault train TASK --help` lists that task's methods and options; "
                                   "`edgefault train TASK --method NAME --help` only that method's.")
    tsub = t.add_subparsers(dest="task", metavar="TASK", required=True,
                            help="anomaly or classify; `edgefault train TASK --help` lists its options")
    for task, what in (("anomaly", "an anomaly model from healthy recordings"),
                       ("classify", "a fault classifier from labelled manifest rows")):
        tp = tsub.add_parser(task, help=f"train {what}",
                             description=f"Train {what}. Options of one method only: "
                                         f"`edgefault train {task} --method NAME --help`.")
        if task == "anomaly":
            tp.add_argument("files", nargs="*", help="healthy recordings: WAV, CSV, NPY/NPZ, .mat, Parquet "
                                                     "(instead of --manifest)")
        tp.add_argument("--out", required=True, help="bundle file to write (.efb)")
        tp.add_argument("--name", help="a name stored in the bundle")
        tp.add_argument("--manifest", help="CSV with path,label[,fs,channels,...]" +
                        ("; the healthy rows are used" if task == "anomaly" else "; every kept row trains"))
        tp.add_argument("--root", help="folder that relative manifest paths are relative to")
        tp.add_argument("--file-fs", type=_positive, help="sample rate of files that carry none (.mat, .csv, .npy) "
                                                      "and have no manifest fs")
        if task == "anomaly":
            tp.add_argument("--strict", action="store_true",
                            help="refuse (no bundle) when the calibration data cannot support --target-far "
                                 "(fewer than 10 expected independent exceedances); default: warn")
        _add_model_arguments(tp, calib_fraction=True, task=task)
        if task == "classify":
            _add_row_arguments(tp.add_argument_group("manifest rows and labels"))
        _add_kind_arguments(tp, task, only=help_method)
        tp.set_defaults(func=cmd_train)

    s = sub.add_parser("score", help="score files with a bundle: JSON lines, one object per window")
    s.add_argument("bundle", help="the model bundle (.efb) to score with")
    s.add_argument("files", nargs="+", help="recordings to score: WAV, CSV, NPY/NPZ, .mat, Parquet")
    s.add_argument("--channels", help="file channels to feed the bundle's channels, in order, e.g. DE,FE")
    s.add_argument("--fs", type=_positive, help="sample rate of files that carry none (.mat, .csv without a time "
                                            "column, .npy): the rate they were recorded at; they are resampled "
                                            "to the bundle's rate")
    s.add_argument("--assume-model-rate", action="store_true",
                   help="read files whose rate is known from nothing (file, --fs, CWRU 12k/48k naming) at the "
                        "bundle's rate instead of refusing them")
    s.add_argument("--chunk", type=_positive_int, default=4096, help="samples per push (default 4096)")
    s.add_argument("--k", type=_positive_int, help="override the bundle's k-of-n alarm k")
    s.add_argument("--n", type=_positive_int, help="override the bundle's k-of-n alarm n")
    s.add_argument("--out", help="write JSON lines here instead of stdout")
    s.add_argument("--no-drift", action="store_true", help="turn the bundle's drift monitors off")
    s.add_argument("--adaptive-threshold", action=argparse.BooleanOptionalAction, default=None,
                   help="force the adaptive threshold on (or off with --no-adaptive-threshold; default: the "
                        "bundle's choice); needs a bundle with drift settings")
    s.set_defaults(func=cmd_score)

    e = sub.add_parser("eval", help="leak-safe evaluation on a manifest or C-MAPSS; metrics as JSON")
    _add_eval_arguments(e, only=help_method)
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="describe a bundle (verifies it)")
    i.add_argument("bundle", help="the bundle (.efb) to verify and describe")
    i.add_argument("--verbose", action="store_true", help="include training block details")
    i.set_defaults(func=cmd_info)

    d = sub.add_parser("demo", help="train and score end to end on a simulated bearing (no data needed)")
    d.add_argument("--out-dir", default=None, help="keep the bundle and events here (default: temp dir)")
    d.add_argument("--seed", type=_count, default=7, help="seed of the simulated machine (default 7)")
    d.add_argument("--quiet", action="store_true", help="print nothing (the exit code says whether the demo detected the fault)")
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("serve", help="the field daemon: sources -> bundles -> sinks, from a TOML config")
    v.add_argument("--config", required=True, help="TOML file (docs/daemon.md lists every setting)")
    v.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="override [daemon] log_level")
    v.set_defaults(func=cmd_serve)

    r = sub.add_parser("report", help="self-contained HTML report (score, threshold, alarms, top "
                                      "channels/bands) from scored events (JSON lines)")
    r.add_argument("events", nargs="+", help="JSON-lines files from `edgefault score` / the daemon ('-' = stdin)")
    r.add_argument("--out", required=True, help="HTML file to write")
    r.add_argument("--bundle", help="the bundle that scored the events (its id, kind and name go in the summary)")
    r.add_argument("--explain", help="JSON from `edgefault explain` to include")
    r.add_argument("--title", help="page title")
    r.add_argument("--scale", default="auto", choices=["auto", "log", "linear"],
                   help="score axis (default auto: log when positive scores span > 30x)")
    r.add_argument("--strict", action="store_true", help="stop at the first bad line (default: skip and count)")
    r.add_argument("--max-plots", type=_count, default=20, help="recordings plotted, those with alarms first (default 20)")
    r.add_argument("--max-spans", type=_count, default=100, help="alarm spans listed in the table (default 100)")
    r.set_defaults(func=cmd_report)

    x = sub.add_parser("explain", help="gradient attribution (integrated gradients) of a VAE bundle's score "
                                       "per channel and band / time segment; needs the [train] extra")
    x.add_argument("bundle", help="a VAE bundle (.efb)")
    x.add_argument("recording", help="the recording whose windows to explain")
    x.add_argument("--out", help="JSON file to write (default stdout)")
    x.add_argument("--start", type=float, help="first second of the recording to explain (default 0)")
    x.add_argument("--end", type=float, help="last second (default: the end)")
    x.add_argument("--channels", help="file channels to feed the bundle's channels, in order")
    x.add_argument("--fs", type=_positive, help="sample rate of a recording that carries none (.mat, .csv, .npy)")
    x.add_argument("--assume-model-rate", action="store_true",
                   help="read a recording whose rate is known from nothing (file, --fs, CWRU 12k/48k naming) at "
                        "the bundle's rate instead of refusing it")
    x.add_argument("--method", default="ig", choices=["ig", "gradxinput"],
                   help="ig = integrated gradients (default), gradxinput = (x - baseline) * gradient")
    x.add_argument("--baseline", default="mean", choices=["mean", "zero"],
                   help="reference input: the training mean of every input (default) or zeros")
    x.add_argument("--steps", type=_positive_int, default=32, help="Gauss-Legendre nodes, doubled per window until "
                                                         "completeness holds within --tol (default 32)")
    x.add_argument("--tol", type=_positive, default=1e-3,
                   help="completeness tolerance relative to |score(x) - score(baseline)| (default 1e-3)")
    x.add_argument("--max-windows", type=_positive_int, default=5000, help="refuse larger ranges (default 5000)")
    x.add_argument("--no-windows", action="store_true", help="aggregates only, no per-window rows")
    x.set_defaults(func=cmd_explain)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_help_method(argv))
    # argparse cannot take `train anomaly --method m FILE --out x` (positionals after options)
    # with a nargs="*" positional; collect such files here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "files") and getattr(args, "command", None) == "train" and not any(e.startswith("-") for e in extra):
            args.files = list(args.files) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except EdgefaultError as e:
        print(f"edgefault {args.command}: error: {cli_message(args.command, e)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:  # e.g. --out
        print(f"edgefault {args.command}: error: {e.strerror}: {e.filename!r}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
