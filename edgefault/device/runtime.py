"""`edgefault.Runtime`: push raw samples, get scored events."""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgefault import _core
from edgefault.device.drift import monitor_from_settings
from edgefault.device.bundle import Bundle, load_bundle
from edgefault.device.state import read_state, write_state
from edgefault.errors import InputError
from edgefault.samples import LEGACY, scale_offset, to_float
from edgefault.kinds import device_model

STATE_VERSION = 2  # 2: + drift monitors / adaptive threshold; version 1 states still load (drift restarts)
_DRIFT_BITS = _core.FLAG_DRIFT | _core.FLAG_DRIFT_CHANGED | _core.FLAG_RETRAIN
# A window that overlaps samples lost in transport (Runtime.push_gap). The core's flag bits are one
# byte; this bit exists only in the runtime's rows.
FLAG_GAP = 256
MAX_GAP_EVENTS = 1000  # events returned for the windows inside one gap; seq skips the rest
_HEALTH_NAMES = ((_core.FLAG_HEALTH_FLAT, "flat"), (_core.FLAG_HEALTH_CLIP, "clip"),
                 (_core.FLAG_HEALTH_DROPOUT, "dropout"), (_core.FLAG_HEALTH_DC_JUMP, "dc_jump"))
_INVALID_FLAGS = (("nonfinite_input",), ("nonfinite_score",), ("sensor_fault",), ("gap",))
WALL_SOURCES = ("source", "receive")


def _utc_seconds(v: Any, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        f = math.nan
    if not 0.0 <= f < 1e11:  # 1970 .. year 5138
        raise InputError(f"{name} must be UTC seconds since 1970 (POSIX time, 0 .. 1e11), got {v!r}")
    return f


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


class Event:
    """One scored window.

    Attributes: ``seq`` (window number since start/reset), ``t`` / ``t_start`` (seconds at the
    window's end / start, from ``start_time``), ``score``, ``threshold``, ``anomaly`` (score >
    threshold), ``alarm`` (debounced k-of-n state), ``alarm_changed``, ``valid`` (False when the
    window was not scored: score is None and nothing was folded into any state), ``flags`` (why
    not: ``nonfinite_input`` NaN/Inf samples, ``sensor_fault`` a channel failed a sensor-health
    check, ``gap`` samples lost in transport inside the window, ``nonfinite_score`` the model's
    score was not finite), ``health`` ({channel: [failed checks]} of the sensor-health checks,
    docs/features.md), ``t_wall`` (UTC POSIX seconds of the window's last sample) and
    ``t_wall_source`` ("source": from the timestamp the samples came with, "receive": the clock
    when they were pushed), ``label`` / ``proba`` (classifiers), ``contrib`` (per channel / band /
    feature).
    With drift monitoring (bundles calibrated for it, see docs/drift.md): ``drift`` (a monitor is
    signalling), ``drift_changed``, ``drift_stats`` ({"score": CUSUM, "latent": MEWMA, "active":
    bool, "monitors": [...]}), ``retrain`` (drift persisted: retraining recommended) and
    ``retrain_reason``; without it ``drift`` / ``drift_stats`` are None and ``retrain`` False.
    """

    __slots__ = ("seq", "t", "score", "threshold", "label", "proba", "_bits", "_contrib", "_i", "_rt", "_drift",
                 "_t_start", "_health", "_toff", "_tsrc")
    seq: int
    t: float
    score: float | None
    threshold: float
    label: str | None
    proba: dict[str, float] | None
    _bits: int  # FLAG_* bits
    _contrib: Any  # from a runtime: the push's contrib array (row _i); built by hand: the dict given
    _i: int
    _rt: Any  # the Runtime that scored the window; None when built by hand
    _drift: list[float] | None  # with drift monitors: the meta row (see Runtime._events)
    _t_start: float  # built by hand only
    _health: Any  # from a runtime: the push's (m, n_channels) health bits or None; by hand: the dict given
    _toff: float | None  # t_wall = t + _toff; None: no wall time (built by hand without one)
    _tsrc: str | None

    def __init__(self, *, seq: int, t: float, score: float | None, threshold: float, anomaly: bool | None = None,
                 alarm: bool = False, alarm_changed: bool = False, flags: Sequence[str] | None = None,
                 label: str | None = None, proba: dict[str, float] | None = None,
                 contrib: dict[str, dict[str, float]] | None = None, t_start: float | None = None,
                 health: dict[str, Sequence[str]] | None = None, t_wall: float | None = None,
                 t_wall_source: str | None = None) -> None:
        """An event built by hand (tests, tools, replaying logged events; the runtime builds its
        events without this), with the keys of :meth:`to_dict` that are not derived.

        Same rules as the runtime's events: ``anomaly`` defaults to score > threshold; ``score``
        None is an invalid window, with one of the ``flags`` ("nonfinite_input",) (default),
        ("nonfinite_score",), ("sensor_fault",) or ("gap",), never an anomaly and without label,
        proba or contrib; a valid window has no flags and no failed health checks. ``t_start``
        defaults to ``t``; ``t_wall`` (with ``t_wall_source`` "source" or "receive") to None. No
        drift monitoring: ``drift`` / ``drift_stats`` are None and ``retrain`` False. ValueError for
        an inconsistent combination."""
        valid = score is not None
        if valid and score != score:
            raise ValueError("Event: score is NaN; an unscored window has score=None, flags=('nonfinite_score',)")
        fl = tuple(flags) if flags is not None else () if valid else ("nonfinite_input",)
        if valid and fl:
            raise ValueError(f"Event: a window with a score has no flags, got {fl}")
        if not valid and fl not in _INVALID_FLAGS:
            raise ValueError(f"Event: a window without a score has one of the flags 'nonfinite_input', "
                             f"'nonfinite_score', 'sensor_fault' or 'gap', got {fl}")
        if not valid and (anomaly or label is not None or proba is not None or contrib):
            raise ValueError("Event: a window without a score (invalid) has no anomaly, label, proba or contrib")
        hl = {str(c): [str(k) for k in v] for c, v in (health or {}).items() if v}
        known = {n for _, n in _HEALTH_NAMES}
        if any(k not in known for v in hl.values() for k in v):
            raise ValueError(f"Event: health checks are {sorted(known)}, got {hl}")
        if (fl == ("sensor_fault",)) != bool(hl) and fl != ("nonfinite_input",):
            raise ValueError("Event: a window has failed health checks exactly when it is flagged 'sensor_fault' "
                             "(or 'nonfinite_input', whose NaN runs count as dropout)")
        if (t_wall is None) != (t_wall_source is None) or (t_wall_source is not None
                                                           and t_wall_source not in WALL_SOURCES):
            raise ValueError(f"Event: t_wall comes with t_wall_source, one of {WALL_SOURCES}")
        if anomaly is None:
            anomaly = valid and float(score) > float(threshold)  # type: ignore[arg-type]
        self.seq = int(seq)
        self.t = float(t)
        self.score = float(score) if valid else None  # type: ignore[arg-type]
        self.threshold = float(threshold)
        self.label = label
        self.proba = dict(proba) if proba is not None else None
        self._bits = ((0 if fl == ("nonfinite_input",) else _core.FLAG_FINITE)
                      | (_core.FLAG_SENSOR_FAULT if fl == ("sensor_fault",) else 0)
                      | (FLAG_GAP if fl == ("gap",) else 0)
                      | (_core.FLAG_ANOMALY if anomaly else 0) | (_core.FLAG_ALARM if alarm else 0)
                      | (_core.FLAG_ALARM_CHANGED if alarm_changed else 0))
        self._contrib = {g: dict(v) for g, v in contrib.items()} if contrib else None
        self._i = 0
        self._rt = None  # not from a runtime: t_start and contrib are the values given here
        self._drift = None
        self._t_start = self.t if t_start is None else float(t_start)
        self._health = hl
        self._toff = None if t_wall is None else float(t_wall) - self.t
        self._tsrc = t_wall_source

    # Derived from the window's flag bits (FLAG_* in the core), so building an event stays cheap.
    @property
    def anomaly(self) -> bool:
        return bool(self._bits & _core.FLAG_ANOMALY)

    @property
    def alarm(self) -> bool:
        return bool(self._bits & _core.FLAG_ALARM)

    @property
    def alarm_changed(self) -> bool:
        return bool(self._bits & _core.FLAG_ALARM_CHANGED)

    @property
    def drift(self) -> bool | None:
        return bool(self._bits & _core.FLAG_DRIFT) if self._drift is not None and self._rt._drift_on else None

    @property
    def drift_changed(self) -> bool:
        return bool(self._bits & _core.FLAG_DRIFT_CHANGED)

    @property
    def retrain(self) -> bool:
        return bool(self._bits & _core.FLAG_RETRAIN)

    @property
    def drift_stats(self) -> dict[str, Any] | None:
        d = self._drift
        if d is None or not self._rt._drift_on:
            return None
        mon = int(d[6])
        return {"score": d[4], "latent": d[5], "active": bool(self._bits & _core.FLAG_DRIFT),
                "monitors": [n for b, n in ((_core.DRIFT_SCORE, "score"), (_core.DRIFT_LATENT, "latent"))
                             if mon & b]}

    @property
    def retrain_reason(self) -> str | None:
        if not self._bits & _core.FLAG_RETRAIN:
            return None
        rt = self._rt
        names = self.drift_stats["monitors"]  # type: ignore[index]
        what = " and ".join({"score": "the anomaly-score level", "latent": "the latent distribution"}[n]
                            for n in names) or "the monitored distribution"
        return (f"{what} has drifted from the healthy calibration for at least "
                f"{rt._drift.retrain_after} valid windows: retrain or recalibrate on recent healthy data")

    @property
    def valid(self) -> bool:
        return self.score is not None

    @property
    def flags(self) -> tuple[str, ...]:
        if self.score is not None:
            return ()
        b = self._bits
        if b & FLAG_GAP:
            return ("gap",)
        if not b & _core.FLAG_FINITE:
            return ("nonfinite_input",)
        return ("sensor_fault",) if b & _core.FLAG_SENSOR_FAULT else ("nonfinite_score",)

    @property
    def health(self) -> dict[str, list[str]]:
        """The sensor-health checks this window failed, per channel ({} when none did)."""
        h = self._health
        if self._rt is None:
            return {c: list(v) for c, v in h.items()}
        if h is None or self._bits & FLAG_GAP:
            return {}
        row = h[self._i]
        if not row.any():
            return {}
        return {c: [n for b, n in _HEALTH_NAMES if int(v) & b]
                for c, v in zip(self._rt.spec.channels, row.tolist()) if v}

    @property
    def t_wall(self) -> float | None:
        """UTC (POSIX seconds) of the window's last sample; see ``t_wall_source``."""
        return None if self._toff is None else self.t + self._toff

    @property
    def t_wall_source(self) -> str | None:
        return self._tsrc

    @property
    def t_start(self) -> float:
        rt = self._rt
        if rt is None:
            return self._t_start
        return self.t - rt.spec.window / rt.spec.fs

    @property
    def contrib(self) -> dict[str, dict[str, float]]:
        if self._contrib is None or self.score is None:
            return {}
        if self._rt is None:
            return {g: dict(v) for g, v in self._contrib.items()}
        return self._rt._contrib_dict(self._contrib[self._i])

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "t": self.t, "t_start": self.t_start, "score": self.score,
            "threshold": self.threshold, "anomaly": self.anomaly, "alarm": self.alarm,
            "alarm_changed": self.alarm_changed, "valid": self.valid, "flags": list(self.flags),
            "health": self.health, "t_wall": self.t_wall, "t_wall_source": self.t_wall_source,
            "label": self.label, "proba": self.proba, "contrib": self._json_contrib(),
            "drift": self._json_drift(), "drift_changed": self.drift_changed, "retrain": self.retrain,
            "retrain_reason": self.retrain_reason,
        }

    # to_dict is JSON-safe (sinks dump it with allow_nan=False): a statistic or contribution that
    # overflowed to inf in a valid window is written as null.
    def _json_contrib(self) -> dict[str, dict[str, float | None]]:
        c = self.contrib
        if not c:
            return c
        return {g: {k: _finite_or_none(v) for k, v in d.items()} for g, d in c.items()}

    def _json_drift(self) -> dict[str, Any] | None:
        d = self.drift_stats
        if d is not None:
            d["score"], d["latent"] = _finite_or_none(d["score"]), _finite_or_none(d["latent"])
        return d

    def __repr__(self) -> str:
        s = "None" if self.score is None else f"{self.score:.4g}"
        return (f"Event(seq={self.seq}, t={self.t:.4f}, score={s}, threshold={self.threshold:.4g}, "
                f"anomaly={self.anomaly}, alarm={self.alarm}, valid={self.valid})")


class Runtime:
    """Streaming scorer for one bundle.

    >>> rt = Runtime("model.efb")
    >>> events = rt.push(samples)   # (n,) or (n, n_channels), any n

    Parameters
    ----------
    bundle : path, bytes or a loaded :class:`Bundle`.
    input_scale : multiplier applied to every sample (any dtype, int64 / uint64 included). Default:
        the bundle's ``input_scaling`` rule (see :mod:`edgefault.samples`): ``"full_scale"``
        maps integers to [-1, 1) as the file readers do, ``"float"`` takes them as is; bundles
        without the entry keep the earlier rule (int16 / 32768, int32 / 2**31, others as is).
    start_time : seconds added to every event's ``t``.
    alarm_k, alarm_n : override the bundle's k-of-n debouncing.
    top_features : how many features to list in ``contrib['feature']``.
    drift : None (default) = drift monitors as the bundle was calibrated (on for bundles trained
        with drift settings, off for older ones), False = off, True = required (InputError when
        the bundle has no drift calibration).
    adaptive_threshold : None (default) = the bundle's choice (off unless training enabled it),
        True / False: per-machine adaptive threshold on / off (needs the bundle's drift settings).
    retrain_after : override how many valid windows of persistent drift raise ``retrain``.
    wall_clock : the receive clock for ``t_wall`` when a push brings no timestamp (UTC POSIX
        seconds; default ``time.time``).

    Thread safety: one lock per runtime serialises push, push_gap, reset and the state calls, so
    windows, alarm state and ``seq`` stay in order when several threads push (the order of their
    chunks is the order they take the lock; push from one thread per stream for a defined order).
    """

    def __init__(self, bundle: str | Path | bytes | Bundle, *, input_scale: float | None = None,
                 start_time: float = 0.0, alarm_k: int | None = None, alarm_n: int | None = None,
                 top_features: int = 5, drift: bool | None = None, adaptive_threshold: bool | None = None,
                 retrain_after: int | None = None, wall_clock: Callable[[], float] = time.time) -> None:
        if not math.isfinite(start_time):
            raise InputError(f"start_time must be a finite number of seconds, got {start_time!r}")
        for name, v in (("alarm_k", alarm_k), ("alarm_n", alarm_n)):
            if v is not None and not (isinstance(v, (int, np.integer)) and 1 <= v <= 64):
                raise InputError(f"{name} must be an integer in 1..64, got {v!r}")
        self._lock = threading.Lock()
        self._frames = 0  # frames accepted so far (the pipeline's frames_seen, kept here for speed)
        self._clock = wall_clock
        self._toff: float | None = None  # t_wall - t of the last push's windows
        self._tsrc: str | None = None
        self._gap_until = 0  # windows ending before this frame overlap a gap (push_gap)
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.spec = self.bundle.spec
        self.model = device_model(self.bundle)
        self._pipeline = self.spec.pipeline()
        th = self.bundle.thresholds
        threshold = float(th.get("threshold", np.inf))
        if not np.isfinite(threshold):
            threshold = float(np.finfo(np.float32).max)
        clear = float(th.get("clear_threshold", threshold))
        k = int(alarm_k if alarm_k is not None else th.get("k", 1))
        n = int(alarm_n if alarm_n is not None else th.get("n", 1))
        try:
            self._alarm = _core.AlarmState(threshold, min(clear, threshold), k, n)
        except ValueError as e:
            raise InputError(f"alarm settings: {e}") from None
        self.input_scale = input_scale
        # edgefault.samples: the bundle's training-input rule (older bundles: the legacy rule).
        self._rule = self.bundle.manifest.get("input_scaling", LEGACY)
        # Scale per dtype the core takes with a plain scale (the fast path of push); other dtypes
        # (offset-binary unsigned, int8, float16, ...) are converted by edgefault.samples first.
        self._scales = {np.dtype(t): so[0] for t in (np.float32, np.float64, np.int16, np.int32)
                        if (so := scale_offset(t, self._rule, input_scale))[1] == 0.0}
        self._base_threshold = (float(self._alarm.threshold), float(self._alarm.clear_threshold))
        scorer = getattr(self.model, "core_scorer", None)
        dset = th.get("drift")
        self._drift_source = (dset.get("latent") or {}).get("source") if isinstance(dset, dict) else None
        try:
            self._drift = monitor_from_settings(
                dset, threshold=threshold, clear_threshold=float(self._alarm.clear_threshold), drift=drift,
                adaptive_threshold=adaptive_threshold, retrain_after=retrain_after,
                latent_dim=self.spec.feature_dim if self._drift_source == "features"
                else getattr(self.model, "latent_dim", None),
                where=f"bundle {self.bundle.path or self.bundle.bundle_id}")
        except ValueError as e:
            raise InputError(f"drift settings: {e}") from None
        self._drift_on = self._drift is not None and (self._drift.has_score or self._drift.has_latent)
        if self._drift is not None and self._drift.has_latent and self._drift_source not in ("features", "latent"):
            raise InputError(f"bundle drift settings: latent source {self._drift_source!r} is not 'features' or "
                             f"'latent'")
        self._stream = _core.ScoredStream(self._pipeline, scorer, self._alarm, self._drift) \
            if scorer is not None else None
        self.start_time = float(start_time)
        self.top_features = int(top_features)
        self._seq = 0
        names = list(getattr(self.model, "contrib_names", ()))
        self._contrib_names = names
        chans = list(self.spec.channels)
        # "<channel>.<term>" names are terms of the score (summed per channel, ranked as features /
        # bands); "<group>.<key>" with a group that is no channel (VAE: "time", "latent") are extra
        # views of the same window, reported whole as contrib[group] = {key: value}.
        terms = [i for i, n in enumerate(names) if n.split(".", 1)[0] in chans]
        self._extra: dict[str, tuple[np.ndarray, list[str]]] | None = None
        if len(terms) < len(names):
            self._extra = {}
            for i, n in enumerate(names):
                g, _, key = n.partition(".")
                if g not in chans:
                    idx, keys = self._extra.setdefault(g, (np.zeros(0, dtype=np.intp), []))
                    self._extra[g] = (np.append(idx, i).astype(np.intp), keys + [key])
            self._term_idx = np.array(terms, dtype=np.intp)
            self._contrib_names = names = [names[i] for i in terms]
        self._channel_of = np.array([chans.index(n.split(".", 1)[0]) for n in names], dtype=np.intp) \
            if names else np.zeros(0, dtype=np.intp)
        self._band_idx = np.array([i for i, n in enumerate(names) if ".band" in n], dtype=np.int64)
        self.labels = self.bundle.labels

    # -- properties ---------------------------------------------------------------------------
    @property
    def fs(self) -> float:
        return self.spec.fs

    @property
    def channels(self) -> tuple[str, ...]:
        return self.spec.channels

    @property
    def threshold(self) -> float:
        return float(self._alarm.threshold)

    @property
    def alarm(self) -> bool:
        return bool(self._alarm.alarm)

    @property
    def drift(self) -> bool | None:
        """Drift state after the last window (None when drift monitoring is off)."""
        return bool(self._drift.drift) if self._drift_on else None

    @property
    def samples_seen(self) -> int:
        return int(self._pipeline.frames_seen)

    # -- streaming ----------------------------------------------------------------------------
    def _check_chunk(self, chunk: Any) -> tuple[np.ndarray, float]:
        """The chunk as the core takes it and the scale to pass with it (edgefault.samples rule)."""
        x = chunk if isinstance(chunk, np.ndarray) else np.asarray(chunk)
        scale_offset(x.dtype, self._rule, self.input_scale, what="chunk samples")
        nc = self.spec.n_channels
        if not (x.ndim == 1 and nc == 1 or x.ndim == 2 and x.shape[1] == nc):
            raise InputError(f"chunk has shape {x.shape}, expected (n_samples, {nc}) for channels "
                             f"{list(self.spec.channels)}" + (" or (n_samples,)" if nc == 1 else ""))
        if x.dtype in self._scales:
            return x, self._scales[x.dtype]
        return to_float(x, self._rule, self.input_scale, what="chunk samples"), 1.0

    def _scale_for(self, x: np.ndarray) -> float:
        """Scale the core applies to samples of x's dtype (one the core takes without an offset)."""
        return scale_offset(x.dtype, self._rule, self.input_scale, what="samples")[0]

    def push(self, chunk: Any, t_wall: float | None = None, *, t_received: float | None = None) -> list[Event]:
        """Push samples; return the events of every window completed by them (maybe none).

        ``t_wall``: UTC (POSIX seconds) of the chunk's first sample, from the source (a packet or
        file timestamp); events then carry ``t_wall_source="source"``. Without it the receive
        clock is taken as the time of the chunk's last sample (``"receive"``): ``t_received``
        (UTC seconds when the chunk arrived, for callers that queue chunks) or ``wall_clock()`` now.

        Raises InputError for a chunk of the wrong shape or dtype, before accepting any of it.
        NaN/Inf samples are accepted: windows containing them come back with ``valid=False`` and
        the flag ``nonfinite_input``, and are not scored; so are windows in which a channel fails a
        sensor-health check (``sensor_fault``, see ``Event.health``).
        """
        with self._lock:  # one lock: windows, alarm state and seq stay in order across threads
            x = chunk if type(chunk) is np.ndarray else np.asarray(chunk)
            scale = self._scales.get(x.dtype)
            nc = self.spec.n_channels
            if scale is None or not (x.ndim == 2 and x.shape[1] == nc or x.ndim == 1 and nc == 1):
                x, scale = self._check_chunk(x)  # slow path: converts what it can, raises InputError otherwise
            n = x.shape[0]
            if n == 0:
                return []
            if t_wall is None:
                tr = self._clock() if t_received is None else _utc_seconds(t_received, "t_received")
                self._toff = tr - self.start_time - (self._frames + n) / self.spec.fs
                self._tsrc = "receive"
            else:
                self._toff = _utc_seconds(t_wall, "t_wall") - self.start_time - self._frames / self.spec.fs
                self._tsrc = "source"
            if self._stream is not None:
                res = self._stream.push(x, scale, health=True)
                self._frames += n
                if res is None:
                    return []
                meta, contrib, health = res
                return self._events(meta.tolist(), contrib, None, health)
            model = self.model
            dm = self._drift
            need_feats = model.needs_features or (dm is not None and self._drift_source == "features")
            feats, ends, finite, raw, health = self._pipeline.push(x, scale, need_feats, model.needs_raw, health=True)
            self._frames += n
            if ends.shape[0] == 0:
                return []
            batch = model.score(feats, raw if model.needs_raw else None)
            scores = batch.scores
            sensor = health.any(axis=1)
            valid = finite & ~sensor & np.isfinite(scores)  # sensor faults: marked, not scored (as in the core)
            fbits = finite * _core.FLAG_FINITE + sensor * _core.FLAG_SENSOR_FAULT
            if dm is not None:
                vec = feats if self._drift_source == "features" else batch.latent
                if dm.has_latent and vec is None:
                    raise InputError("drift: the bundle's latent monitor needs the model's latent output, which "
                                     "this model does not give")
                bits, stats = dm.step(self._alarm, scores, valid, vec)
                rows = np.column_stack([ends.astype(np.float64), bits | fbits, scores, stats]).tolist()
                return self._events(rows, batch.contrib, batch.proba, health)
            anomaly, alarm, changed = self._alarm.update(scores, valid)
            flags = (fbits + anomaly * _core.FLAG_ANOMALY + alarm * _core.FLAG_ALARM
                     + changed * _core.FLAG_ALARM_CHANGED)
            rows = np.column_stack([ends.astype(np.float64), flags, scores]).tolist()
            return self._events(rows, batch.contrib, batch.proba, health)

    def push_gap(self, n_frames: int) -> list[Event]:
        """Mark ``n_frames`` samples per channel as lost (a dropped packet or chunk, a source gap).

        The stream is not spliced: ``t`` and ``seq`` advance as if the samples had arrived, and
        every window that overlaps the lost samples comes back invalid with the flag ``gap`` (not
        scored, nothing folded into any state), including those completed by later pushes. Returns
        the events of the windows that end inside the gap: at most ``MAX_GAP_EVENTS`` (the first
        ones); for a longer gap ``seq`` skips the rest, so ``seq`` stays the window number.
        """
        try:
            n = int(n_frames)
            ok = n == n_frames and n >= 0
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise InputError(f"push_gap: n_frames must be an integer >= 0, got {n_frames!r}")
        if n == 0:
            return []
        with self._lock:
            return self._push_gap(n)

    def _push_gap(self, n: int) -> list[Event]:
        w, hop, nc = self.spec.window, self.spec.hop, self.spec.n_channels
        before = self._frames
        after = before + n
        # Every window ending after the gap that reaches into it sees only lost or NaN samples in
        # the tail, so the whole tail is replaced: nothing valid is lost.
        n_tail = min(after, w - 1)
        self._pipeline.set_state(np.full((n_tail, nc), np.nan, dtype=np.float32), after)
        self._frames = after
        self._gap_until = max(self._gap_until, after + w)
        # windows end at frames w + j * hop; those in (before, after]
        j0 = 0 if before < w else (before - w) // hop + 1
        j1 = (after - w) // hop if after >= w else -1
        count = max(0, j1 - j0 + 1)
        shown = min(count, MAX_GAP_EVENTS)
        if self._drift is not None:
            mon, _, cusum, _, _ = self._drift.get_state()
            bit = _core.FLAG_DRIFT if self._drift.drift else 0
            thr = float(self._alarm.threshold)
            rows = [[float(w + j * hop), FLAG_GAP | bit, math.nan, thr, float(cusum), math.nan, float(mon)]
                    for j in range(j0, j0 + shown)]
        else:
            rows = [[float(w + j * hop), FLAG_GAP, math.nan] for j in range(j0, j0 + shown)]
        events = self._events(rows, None, None, None)
        self._seq += count - shown
        return events

    def _events(self, rows: list[list[float]], contrib: np.ndarray | None,
                proba: np.ndarray | None, health: np.ndarray | None) -> list[Event]:
        """Events from rows of (end_frame, flags (FLAG_* bits), score) or, with drift monitors,
        (end_frame, flags, score, threshold, score stat, latent stat, monitors); health: the
        (m, n_channels) health bits or None."""
        drift = bool(rows) and len(rows[0]) == 7
        thr = float(self._alarm.threshold)
        fs = self.spec.fs
        t0 = self.start_time
        labels = self.labels
        contrib_arr = contrib if contrib is not None and contrib.shape[0] > 0 else None
        new = Event.__new__
        events = []
        seq = self._seq
        finite_bit = _core.FLAG_FINITE
        ok_mask = finite_bit | _core.FLAG_SENSOR_FAULT
        inf = math.inf
        gap_until = self._gap_until
        hl = health
        toff, tsrc = self._toff, self._tsrc
        for i, r in enumerate(rows):
            sc = r[2]
            fl = int(r[1])
            if r[0] - gap_until < 0:  # the window overlaps a gap: that is why it is invalid
                fl |= FLAG_GAP
                ok = False
            else:  # finite input, healthy channels and a finite score
                ok = fl & ok_mask == finite_bit and -inf < sc < inf
            ev = new(Event)
            ev.seq = seq + i
            ev.t = t0 + r[0] / fs
            ev.score = sc if ok else None
            ev.threshold = r[3] if drift else thr
            ev._bits = fl
            if proba is not None and ok:
                p = proba[i]
                ev.proba = {lab: float(v) for lab, v in zip(labels or (), p)}
                ev.label = labels[int(np.argmax(p))] if labels else None
            else:
                ev.proba = None
                ev.label = None
            ev._contrib = contrib_arr
            ev._i = i
            ev._rt = self
            ev._drift = r if drift else None  # the row: [4] score stat, [5] latent stat, [6] monitors
            ev._health = hl
            ev._toff = toff
            ev._tsrc = tsrc
            events.append(ev)
        self._seq = seq + len(events)
        return events

    def _contrib_dict(self, row: np.ndarray) -> dict[str, dict[str, float]]:
        names = self._contrib_names
        full = row
        if self._extra is not None:
            row = full[self._term_idx]
        per_ch = np.bincount(self._channel_of, weights=row, minlength=self.spec.n_channels)
        out: dict[str, dict[str, float]] = {
            "channel": {c: float(v) for c, v in zip(self.spec.channels, per_ch)},
        }
        k = min(self.top_features, row.shape[0])
        top = np.argsort(-row)[:k]
        out["feature"] = {names[i]: float(row[i]) for i in top}
        if self._band_idx.size:
            b = self._band_idx[np.argsort(-row[self._band_idx])[:k]]
            out["band"] = {names[i]: float(row[i]) for i in b}
        if self._extra is not None:
            for g, (idx, keys) in self._extra.items():
                out[g] = {k: float(v) for k, v in zip(keys, full[idx])}
        return out

    # -- state --------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget buffered samples, alarm history and the window counter."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._gap_until = 0
        self._frames = 0
        self._pipeline.reset()
        self._alarm.reset()
        if self._drift is not None:
            self._drift.reset()
            self._alarm.set_threshold(*self._base_threshold)
        self._seq = 0

    def get_state(self) -> dict[str, Any]:
        with self._lock:
            return self._get_state()

    def _get_state(self) -> dict[str, Any]:
        tail, frames = self._pipeline.get_state()
        above, above_clear, n_valid, alarm = self._alarm.get_state()
        return {
            "version": STATE_VERSION, "bundle_id": self.bundle.bundle_id, "seq": self._seq,
            "frames_seen": int(frames), "tail": tail,
            "alarm": {"above": int(above), "above_clear": int(above_clear), "n_valid": int(n_valid),
                      "alarm": bool(alarm), "threshold": self.threshold,
                      "clear_threshold": float(self._alarm.clear_threshold)},
            "drift": self._drift_state(),
            "gap_until": int(self._gap_until),
        }

    def _drift_state(self) -> dict[str, Any] | None:
        if self._drift is None:
            return None
        mon, persist, cusum, ewma, level = self._drift.get_state()
        return {"monitors": int(mon), "persist": int(persist), "cusum": float(cusum),
                "ewma": [float(v) for v in ewma], "level": float(level)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`get_state`. A refused state (InputError) changes nothing:
        every part applied before the bad one is put back."""
        with self._lock:
            prev = self._get_state()
            try:
                self._set_state(state)
            except Exception:
                self._set_state(prev)
                raise

    def _set_state(self, state: dict[str, Any]) -> None:
        try:
            if state.get("version") not in (1, STATE_VERSION):
                raise InputError(f"runtime state version {state.get('version')!r} is not supported "
                                 f"(expected 1 or {STATE_VERSION})")
            if state.get("bundle_id") != self.bundle.bundle_id:
                raise InputError(f"runtime state belongs to bundle {state.get('bundle_id')}, "
                                 f"this runtime runs {self.bundle.bundle_id}")
            tail = np.asarray(state["tail"], dtype=np.float32)
            a = state["alarm"]
            d = state.get("drift")  # absent in version 1 states and when drift was off: monitors restart
            if d is not None and not isinstance(d, dict):
                raise InputError("runtime state is malformed: 'drift' must be an object or null")
            if self._drift is not None:
                if d is not None:
                    ewma = np.asarray(d["ewma"], dtype=np.float64).reshape(-1)
                    self._drift.set_state(int(d["monitors"]), int(d["persist"]), float(d["cusum"]), ewma,
                                          float(d["level"]))
                else:
                    self._drift.reset()
            self._pipeline.set_state(tail, int(state["frames_seen"]))
            self._frames = int(state["frames_seen"])
            self._alarm.set_threshold(float(a["threshold"]), float(a["clear_threshold"]))
            self._alarm.set_state(int(a["above"]), int(a["above_clear"]), int(a["n_valid"]), bool(a["alarm"]))
            seq = int(state["seq"])
            gap_until = int(state.get("gap_until", 0))  # absent before gaps were marked
            if not 0 <= seq < 1 << 63 or not 0 <= gap_until <= int(state["frames_seen"]) + self.spec.window:
                raise ValueError(f"seq {seq} must be >= 0 and gap_until {gap_until} in 0..frames_seen + window")
            self._seq = seq
            self._gap_until = gap_until
        except InputError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
            raise InputError(f"runtime state is malformed: {e}") from None

    def save_state(self, path: str | Path) -> None:
        """Write the state atomically (temp file, fsync, rename); format: :mod:`edgefault.device.state`."""
        write_state(path, self.get_state())

    def load_state(self, path: str | Path) -> None:
        """Restore a state written by :meth:`save_state` (or by the daemon for this bundle).
        InputError when the file cannot be read or the state does not fit this runtime."""
        self.set_state(read_state(path))


__all__: Sequence[str] = ("Runtime", "Event")
