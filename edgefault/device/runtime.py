"""`edgefault.Runtime`: push raw samples, get scored events."""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from collections.abc import Sequence as Sequence_
from typing import Any, Callable, Iterator, Sequence

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
UNKNOWN = "unknown"  # a classifier's label for a window whose top class probability is below the bundle's unknown_below


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
    when they were pushed), ``label`` / ``proba`` (classifiers: the top class, or ``"unknown"`` when
    its probability is below the bundle's calibrated ``unknown_below``; ``anomaly`` is then the
    calibrated "not normal" decision on 1 - P(normal)), ``contrib`` (per channel / band / feature).
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


class EventBatch(Sequence_):
    """The windows completed by one :meth:`Runtime.push` / :meth:`Runtime.push_gap`, column-wise.

    A sequence of :class:`Event` (``for ev in batch``, ``batch[i]``, ``len(batch)``; the Event
    objects are built the first time the batch is iterated or indexed, so code that never asks
    for them pays nothing per window), and numpy columns, one entry per window:

    ``seq`` int64, ``t`` / ``t_start`` / ``t_wall`` float64 seconds (``t_wall`` NaN when the
    batch has no wall time), ``score`` float64 (NaN where not ``valid``), ``threshold`` float64,
    ``valid`` / ``anomaly`` / ``alarm`` / ``alarm_changed`` / ``drift_changed`` / ``retrain``
    bool, ``drift`` bool or None (drift monitoring off), ``flag_bits`` uint16 (the core's FLAG_*
    bits and ``FLAG_GAP``; ``Event.flags`` names them), ``health`` (m, n_channels) uint8 bits of
    the failed sensor-health checks, ``label_index`` int64 (index into ``labels``, -1 where no
    class is predicted), ``unknown`` bool (a classifier window below the bundle's confidence
    floor) and ``label`` (list: a label, ``"unknown"`` or None), ``proba`` (m, n_labels) float32 or None,
    ``contrib`` (m, len(contrib_names)) float32 score terms ("<channel>.<feature>"; 0 where
    not valid) and ``contrib_channel`` (m, n_channels) their per-channel sums. ``columns()``
    gives them as one dict. The batch is read-only; concatenating with ``+`` gives a list of
    events.
    """

    __slots__ = ("_rt", "_meta", "_contrib", "_proba", "_health", "_n", "_ctx", "_reuse", "_events", "_cols")
    _rt: "Runtime"
    _meta: np.ndarray  # rows 0.._n-1: see Runtime._batch
    _contrib: np.ndarray | None
    _proba: np.ndarray | None
    _health: np.ndarray | None
    _n: int
    _ctx: tuple[int, float, float, int, float | None, str | None]  # seq0, threshold, start_time, gap_until, toff, tsrc
    _reuse: bool  # a Runtime.new_batch output: its arrays are overwritten by the next push_into
    _events: list[Event] | None
    _cols: dict[str, Any] | None

    def __init__(self) -> None:
        raise TypeError("EventBatch objects come from Runtime.push / push_gap")

    # -- the sequence of Event --------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def __getitem__(self, i: Any) -> Any:
        return self.events()[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (EventBatch, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> list[Event]:
        return self.events() + list(other)

    def __radd__(self, other: Any) -> list[Event]:
        return list(other) + self.events()

    def __repr__(self) -> str:
        m = len(self)
        if m == 0:
            return "EventBatch([])"
        c = self._columns()
        return (f"EventBatch({m} windows, seq {self._ctx[0]}..{self._ctx[0] + m - 1}, valid {int(c['valid'].sum())}, "
                f"anomalies {int(c['anomaly'].sum())}, alarm at end {bool(c['alarm'][-1])})")

    def events(self) -> list[Event]:
        """The windows as :class:`Event` objects (built once, then cached)."""
        ev = self._events
        if ev is None:
            ev = self._events = self._build_events()
        return ev

    def _build_events(self) -> list[Event]:
        rt = self._rt
        n = self._n
        meta = self._meta[:n]
        rows = meta.tolist()
        drift = meta.shape[1] == 7
        seq, thr, t0, gap_until, toff, tsrc = self._ctx
        fs = rt.spec.fs
        labels = rt.labels
        ub = rt._unknown_below
        proba, contrib_arr, hl = self._proba, self._contrib, self._health
        if self._reuse:  # the events outlive the buffers' next fill
            proba, contrib_arr, hl = (None if a is None else a[:n].copy() for a in (proba, contrib_arr, hl))
        new = Event.__new__
        events = []
        finite_bit = _core.FLAG_FINITE
        ok_mask = finite_bit | _core.FLAG_SENSOR_FAULT
        inf = math.inf
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
                j = int(np.argmax(p))
                ev.label = (labels[j] if p[j] >= ub else UNKNOWN) if labels else None
            else:
                ev.proba = None
                ev.label = None
            ev._contrib = contrib_arr
            ev._i = i
            ev._rt = rt
            ev._drift = r if drift else None  # the row: [4] score stat, [5] latent stat, [6] monitors
            ev._health = hl
            ev._toff = toff
            ev._tsrc = tsrc
            events.append(ev)
        return events

    def to_dicts(self) -> list[dict[str, Any]]:
        """``Event.to_dict()`` of every window (JSON-safe)."""
        return [ev.to_dict() for ev in self.events()]

    # -- columns ----------------------------------------------------------------------------------
    def _columns(self) -> dict[str, Any]:
        c = self._cols
        if c is not None:
            return c
        rt = self._rt
        m = self._n
        meta = self._meta[:m]
        seq0, thr, t0, gap_until, toff, _ = self._ctx
        ends = meta[:, 0]
        bits = meta[:, 1].astype(np.uint16)
        gap = ends < gap_until
        bits[gap] |= FLAG_GAP
        raw = meta[:, 2]
        valid = (~gap & ((bits & (_core.FLAG_FINITE | _core.FLAG_SENSOR_FAULT)) == _core.FLAG_FINITE)
                 & np.isfinite(raw))
        t = t0 + ends / rt.spec.fs
        labels = rt.labels
        proba = self._proba
        if proba is not None and labels and m:
            p = np.nan_to_num(proba[:m], nan=-1.0)
            unknown = valid & (p.max(axis=1) < rt._unknown_below)
            li = np.where(valid & ~unknown, np.argmax(p, axis=1), -1).astype(np.int64)
        else:
            unknown = np.zeros(m, dtype=bool)
            li = np.full(m, -1, dtype=np.int64)
        c = {
            "seq": np.arange(seq0, seq0 + m, dtype=np.int64),
            "t": t,
            "t_start": t - rt.spec.window / rt.spec.fs,
            "t_wall": t + toff if toff is not None else np.full(m, np.nan),
            "score": np.where(valid, raw, np.nan),
            "threshold": meta[:, 3].copy() if meta.shape[1] == 7 else np.full(m, thr),
            "valid": valid,
            "anomaly": (bits & _core.FLAG_ANOMALY) != 0,
            "alarm": (bits & _core.FLAG_ALARM) != 0,
            "alarm_changed": (bits & _core.FLAG_ALARM_CHANGED) != 0,
            "drift": ((bits & _core.FLAG_DRIFT) != 0) if rt._drift_on else None,
            "drift_changed": (bits & _core.FLAG_DRIFT_CHANGED) != 0,
            "retrain": (bits & _core.FLAG_RETRAIN) != 0,
            "flag_bits": bits,
            "label_index": li,
            "unknown": unknown,
        }
        self._cols = c
        return c

    def columns(self) -> dict[str, Any]:
        """Every column by name (see the class docstring), plus ``label``, ``proba``, ``contrib``,
        ``contrib_names``, ``contrib_channel``, ``health`` and ``channels``."""
        out = dict(self._columns())
        for k in ("label", "proba", "contrib", "contrib_names", "contrib_channel", "health", "channels"):
            out[k] = getattr(self, k)
        return out

    seq = property(lambda self: self._columns()["seq"])
    t = property(lambda self: self._columns()["t"])
    t_start = property(lambda self: self._columns()["t_start"])
    t_wall = property(lambda self: self._columns()["t_wall"])
    score = property(lambda self: self._columns()["score"])
    threshold = property(lambda self: self._columns()["threshold"])
    valid = property(lambda self: self._columns()["valid"])
    anomaly = property(lambda self: self._columns()["anomaly"])
    alarm = property(lambda self: self._columns()["alarm"])
    alarm_changed = property(lambda self: self._columns()["alarm_changed"])
    drift = property(lambda self: self._columns()["drift"])
    drift_changed = property(lambda self: self._columns()["drift_changed"])
    retrain = property(lambda self: self._columns()["retrain"])
    flag_bits = property(lambda self: self._columns()["flag_bits"])
    label_index = property(lambda self: self._columns()["label_index"])
    unknown = property(lambda self: self._columns()["unknown"])

    @property
    def t_wall_source(self) -> str | None:
        return self._ctx[5]

    @property
    def channels(self) -> tuple[str, ...]:
        return self._rt.spec.channels

    @property
    def labels(self) -> tuple[str, ...] | None:
        lab = self._rt.labels
        return tuple(lab) if lab else None

    @property
    def label(self) -> list[str | None]:
        lab = self._rt.labels
        return [lab[i] if i >= 0 else UNKNOWN if u else None
                for i, u in zip(self.label_index.tolist(), self.unknown.tolist())]

    @property
    def proba(self) -> np.ndarray | None:
        p = self._proba
        if p is None:
            return None
        return np.where(self.valid[:, None], p[:self._n], np.nan).astype(np.float32)

    @property
    def contrib_names(self) -> list[str]:
        return list(self._rt._contrib_names)

    @property
    def contrib(self) -> np.ndarray:
        rt = self._rt
        m = self._n
        if self._contrib is None:
            return np.zeros((m, len(rt._contrib_names)), dtype=np.float32)
        c = self._contrib[:m]
        if rt._extra is not None:
            c = c[:, rt._term_idx]
        return np.where(self.valid[:, None], c, 0).astype(np.float32)

    @property
    def contrib_channel(self) -> np.ndarray:
        rt = self._rt
        c = self.contrib
        out = np.zeros((c.shape[0], rt.spec.n_channels), dtype=np.float64)
        if c.shape[1]:
            np.add.at(out, (slice(None), rt._channel_of), c)
        return out

    @property
    def health(self) -> np.ndarray:
        m = self._n
        if self._health is None:
            return np.zeros((m, self._rt.spec.n_channels), dtype=np.uint8)
        h = self._health[:m].copy()
        h[self.flag_bits & FLAG_GAP != 0] = 0
        return h


_new_batch = EventBatch.__new__


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
        self._thr = self._base_threshold[0]  # the alarm threshold (changes only with drift's adaptive one)
        self._fs = float(self.spec.fs)
        nc = self.spec.n_channels
        self._row_shape = (nc,)  # chunk.shape[1:] the fast path of push takes
        self._row_shape_1d = () if nc == 1 else (nc,)
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
        self._unknown_below = float(th.get("unknown_below", 0.0)) if self.labels else 0.0
        self._empty = self._batch(np.zeros((0, 7 if self._drift is not None else 3)), None, None, None)

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

    def push(self, chunk: Any, t_wall: float | None = None, *, t_received: float | None = None) -> EventBatch:
        """Push samples; return the events of every window completed by them (maybe none) as an
        :class:`EventBatch`: columns (numpy arrays) for code that processes windows in bulk, and a
        sequence of :class:`Event` (built when first iterated or indexed) for code that reads
        ``ev.alarm``.

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
            tail = x.shape[1:]
            if scale is None or not x.ndim or tail != self._row_shape and tail != self._row_shape_1d:
                x, scale = self._check_chunk(x)  # slow path: converts what it can, raises InputError otherwise
            return self._push_locked(x, scale, t_wall, t_received)

    def _push_locked(self, x: np.ndarray, scale: float, t_wall: float | None,
                     t_received: float | None) -> EventBatch:
        n = len(x)
        if n == 0:
            return self._empty
        if t_wall is None:
            tr = self._clock() if t_received is None else _utc_seconds(t_received, "t_received")
            self._toff = tr - self.start_time - (self._frames + n) / self._fs
            self._tsrc = "receive"
        else:
            self._toff = _utc_seconds(t_wall, "t_wall") - self.start_time - self._frames / self._fs
            self._tsrc = "source"
        st = self._stream
        if st is None:
            return self._push_model(x, scale)
        res = st.push(x, scale, True)
        self._frames += n
        if res is None:
            return self._empty
        return self._batch(res[0], res[1], None, res[2])

    def new_batch(self, capacity: int = 256) -> EventBatch:
        """A reusable output for :meth:`push_into`, with room for ``capacity`` windows."""
        if not (isinstance(capacity, (int, np.integer)) and 1 <= capacity <= 1 << 24):
            raise InputError(f"new_batch: capacity must be an integer in 1..{1 << 24}, got {capacity!r}")
        cap = int(capacity)
        b = _new_batch(EventBatch)
        b._rt = self
        b._meta = np.zeros((cap, 7 if self._drift is not None else 3))
        width = self.spec.feature_dim if self._stream is not None else len(getattr(self.model, "contrib_names", ()))
        b._contrib = np.zeros((cap, width), dtype=np.float32)
        b._health = np.zeros((cap, self.spec.n_channels), dtype=np.uint8)
        b._proba = np.zeros((cap, len(self.labels)), dtype=np.float32) if self.labels else None
        b._n = 0
        b._ctx = (self._seq, self._thr, self.start_time, self._gap_until, self._toff, self._tsrc)
        b._reuse = True
        b._events = b._cols = None
        return b

    def push_into(self, chunk: Any, out: EventBatch, t_wall: float | None = None, *,
                  t_received: float | None = None) -> EventBatch:
        """:meth:`push` into ``out`` (from :meth:`new_batch`), overwriting what it held; returns
        ``out``. For core-scored bundles (Gaussian) nothing is allocated per call; other kinds copy
        their model's output into it. InputError, with nothing accepted, when the chunk can complete
        more windows than ``out`` holds. Events taken from ``out`` (iterating it) stay valid after
        the next fill; its columns and arrays do not (copy them to keep them)."""
        if type(out) is not EventBatch or out._rt is not self or not out._reuse:
            raise InputError("push_into: out must be a batch from this runtime's new_batch()")
        st = self._stream
        if st is None:
            return self._push_model_into(chunk, out, t_wall, t_received)
        with self._lock:
            x = chunk if type(chunk) is np.ndarray else np.asarray(chunk)
            scale = self._scales.get(x.dtype)
            tail = x.shape[1:]
            if scale is None or not x.ndim or tail != self._row_shape and tail != self._row_shape_1d:
                x, scale = self._check_chunk(x)
            before = self._frames
            after = before + len(x)
            # the time anchor of _push_locked, inline: this is the per-push hot path (bench_push.py)
            if t_wall is None:
                tr = self._clock() if t_received is None else _utc_seconds(t_received, "t_received")
                toff = tr - self.start_time - after / self._fs
                tsrc = "receive"
            else:
                toff = _utc_seconds(t_wall, "t_wall") - self.start_time - before / self._fs
                tsrc = "source"
            try:  # the core sizes the output before it accepts a sample
                m = st.push_into(x, scale, out._meta, out._contrib, out._health)
            except ValueError as e:
                raise self._too_many_windows(before, after, out) or InputError(f"push_into: {e}") from None
            self._frames = after
            self._toff = toff
            self._tsrc = tsrc
            seq = self._seq
            self._seq = seq + m
            out._n = m
            out._ctx = (seq, self._thr, self.start_time, self._gap_until, toff, tsrc)
            out._events = out._cols = None
            return out

    def _too_many_windows(self, before: int, after: int, out: EventBatch) -> InputError | None:
        """The refusal of a chunk taking frames before..after, if it can complete more windows than
        out holds."""
        w, hop, cap = self.spec.window, self.spec.hop, out._meta.shape[0]
        m_max = (0 if after < w else (after - w) // hop + 1) - (0 if before < w else (before - w) // hop + 1)
        if m_max <= cap:
            return None
        return InputError(f"push_into: the chunk of {after - before} samples completes {m_max} windows but out "
                          f"holds {cap}; nothing was accepted: push shorter chunks or use new_batch({m_max})")

    def _push_model_into(self, chunk: Any, out: EventBatch, t_wall: float | None,
                         t_received: float | None) -> EventBatch:
        """push_into for kinds scored in Python: push, then copy into out (checked first)."""
        with self._lock:
            x, scale = self._check_chunk(chunk)
            err = self._too_many_windows(self._frames, self._frames + x.shape[0], out)
            if err is not None:
                raise err
            b = self._push_locked(x, scale, t_wall, t_received)
            m = b._n
            out._meta[:m] = b._meta
            for buf, src in ((out._contrib, b._contrib), (out._health, b._health), (out._proba, b._proba)):
                if buf is not None:
                    buf[:m] = 0 if src is None else src
            out._n = m
            out._ctx = b._ctx
            out._events = out._cols = None
            return out

    def _push_model(self, x: np.ndarray, scale: float) -> EventBatch:
        """push for kinds scored in Python (the model's score() on the pipeline's rows)."""
        model = self.model
        dm = self._drift
        need_feats = model.needs_features or (dm is not None and self._drift_source == "features")
        feats, ends, finite, raw, health = self._pipeline.push(x, scale, need_feats, model.needs_raw, health=True)
        self._frames += x.shape[0]
        if ends.shape[0] == 0:
            return self._empty
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
            meta = np.column_stack([ends.astype(np.float64), bits | fbits, scores, stats])
            return self._batch(meta, batch.contrib, batch.proba, health)
        anomaly, alarm, changed = self._alarm.update(scores, valid)
        flags = (fbits + anomaly * _core.FLAG_ANOMALY + alarm * _core.FLAG_ALARM
                 + changed * _core.FLAG_ALARM_CHANGED)
        meta = np.column_stack([ends.astype(np.float64), flags, scores])
        return self._batch(meta, batch.contrib, batch.proba, health)

    def push_gap(self, n_frames: int) -> EventBatch:
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
            return self._empty
        with self._lock:
            return self._push_gap(n)

    def _push_gap(self, n: int) -> EventBatch:
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
        ends = w + hop * np.arange(j0, j0 + shown, dtype=np.float64)
        if self._drift is not None:
            mon, _, cusum, _, _ = self._drift.get_state()
            bit = _core.FLAG_DRIFT if self._drift.drift else 0
            row = [FLAG_GAP | bit, math.nan, float(self._alarm.threshold), float(cusum), math.nan, float(mon)]
        else:
            row = [FLAG_GAP, math.nan]
        meta = np.empty((shown, 1 + len(row)))
        meta[:, 0] = ends
        meta[:, 1:] = row
        batch = self._batch(meta, None, None, None)
        self._seq += count - shown
        return batch

    def _batch(self, meta: np.ndarray, contrib: np.ndarray | None, proba: np.ndarray | None,
               health: np.ndarray | None) -> "EventBatch":
        """The batch of meta rows (end_frame, flags (FLAG_* bits), score) or, with drift monitors,
        (end_frame, flags, score, threshold, score stat, latent stat, monitors); health: the
        (m, n_channels) health bits or None. Advances seq; builds no per-window object."""
        b = _new_batch(EventBatch)
        b._rt = self
        b._meta = meta
        b._contrib = contrib if contrib is not None and contrib.shape[0] > 0 else None
        b._proba = proba
        b._health = health
        b._n = m = meta.shape[0]
        b._ctx = (self._seq, self._thr, self.start_time, self._gap_until, self._toff, self._tsrc)
        b._reuse = False
        b._events = b._cols = None
        self._seq += m
        return b

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
        self._thr = float(self._alarm.threshold)
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
            self._thr = float(self._alarm.threshold)
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


__all__: Sequence[str] = ("Runtime", "Event", "EventBatch")
