"""`edgefault report`: one self-contained HTML page from scored events (JSON lines).

The page needs nothing but a browser: no network, no scripts, no style sheets from elsewhere.
The plots are inline SVG drawn here with numpy and the standard library (no matplotlib), so a
report can be built on the device that wrote the events.

Input: JSON lines as written by ``edgefault score``, ``Event.to_dict`` (``edgefault demo``) or
the daemon's file sink, read as a stream (1e6 events take one pass and ~40 MB). Per line:

- required: ``t`` (seconds, finite number) and ``score`` (number, or null for an invalid window);
- optional: ``threshold``, ``anomaly``, ``alarm`` (booleans), ``valid``, ``flags`` (list),
  ``contrib`` (``{group: {name: value}}``, e.g. ``channel`` / ``band`` / ``time`` / ``feature``),
  ``adaptive_threshold`` (a second threshold line), ``drift`` (bool, number or object: see
  :func:`_drift_on`), ``file`` / ``sensor`` (one plot per recording or sensor), ``bundle_id`` /
  ``bundle_name``.

Bad lines (not JSON, not an object, a required field missing or of the wrong type, a truncated
last line) are skipped and counted; the first ones are listed, with their line numbers, on the
page and by the CLI on stderr. ``strict=True`` turns the first bad line into an
:class:`InputError` naming the file and line number. A file without a single good event is an
error either way.

A time series of more points than pixel columns is drawn as a min/max envelope per column, so
the page stays small (tens of KB per plot) whatever the number of events.
"""
from __future__ import annotations

import html
import json
import math
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

import numpy as np

from edgefault.errors import InputError

__all__ = ["ReportData", "read_events", "build_report", "write_report"]

# bits per window
_ANOM, _ALARM, _INVALID, _DRIFT = 1, 2, 4, 8
_MAX_BAD_LISTED = 20
_MAX_LABELS = 254  # classifier labels tracked by name; more are counted as "other"
_TIME_BINS = 10  # rows of the labels-over-time table per recording
_MAX_SPANS_DRAWN = 5000  # per plot; beyond it, spans closer than one pixel are drawn merged
_GROUP_ORDER = ("channel", "band", "time", "feature")
_NOT_TERMS = ("latent",)  # views that are not shares of the score (VAE latent sensitivity): no bars


def _drift_on(v: Any) -> bool:
    """Whether an event's ``drift`` value marks drift: true, a non-zero number, or an object with
    a true ``event`` / ``drift`` / ``detected`` / ``alarm`` / ``active`` / ``retrain`` member or a
    ``state`` / ``status`` other than ok / normal / stable / none."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, (int, float)):
        return v != 0 and v == v
    if isinstance(v, dict):
        for k in ("event", "drift", "detected", "alarm", "active", "retrain"):
            if v.get(k) is True or (isinstance(v.get(k), (int, float)) and not isinstance(v.get(k), bool)
                                    and v.get(k) != 0):
                return True
        for k in ("state", "status"):
            s = v.get(k)
            if isinstance(s, str) and s.lower() not in ("ok", "normal", "stable", "none", "", "healthy"):
                return True
        return False
    if isinstance(v, str):
        return v.lower() not in ("ok", "normal", "stable", "none", "", "false", "healthy")
    return False


@dataclass
class Span:
    """One alarm span: consecutive windows of one segment with ``alarm`` true."""
    segment: int
    t_start: float
    t_end: float
    n_windows: int = 0
    n_anomalous: int = 0
    peak: float = -math.inf
    t_peak: float = math.nan
    contrib: dict[str, dict[str, float]] = field(default_factory=dict)
    n_contrib: int = 0

    @property
    def duration(self) -> float:
        return self.t_end - self.t_start


class Segment:
    """Events of one recording / sensor in time order (a new segment starts when t goes back)."""

    def __init__(self, key: str, index: int) -> None:
        self.key = key
        self.index = index
        self.t = array("d")
        self.score = array("d")
        self.thr = array("d")
        self.adaptive = array("d")
        self.bits = bytearray()
        self.has_adaptive = False
        self.window_s: float | None = None  # t - t_start of the first event that carries t_start
        self.spans: list[Span] = []
        self.open: Span | None = None
        self.drift_spans: list[list[Any]] = []  # [t_first, t_last, windows, drift value at onset]
        self.drift_open: list[Any] | None = None
        self.retrain: tuple[float, Any] | None = None  # first window recommending retraining
        self.label = bytearray()  # classifier label per window: 0 none, i + 1 = ReportData.label_names[i]
        self.has_label = False

    def __len__(self) -> int:
        return len(self.bits)


@dataclass
class ReportData:
    sources: list[str]
    segments: list[Segment]
    n_lines: int
    n_bad: int
    bad: list[tuple[str, int, str]]  # (source, line number, reason), the first _MAX_BAD_LISTED
    bundles: dict[str, int]  # "id (name)" -> events
    label_names: list[str] = field(default_factory=list)  # classifier labels seen, in order of appearance
    read_seconds: float = 0.0

    @property
    def n_events(self) -> int:
        return sum(len(s) for s in self.segments)

    @property
    def spans(self) -> list[Span]:
        return [sp for s in self.segments for sp in s.spans]


def _num(v: Any) -> bool:
    return type(v) is float or (type(v) is int and abs(v) < 2**53)  # huge ints: bad line, not OverflowError


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    if str(path) == "-":
        yield from enumerate(sys.stdin, 1)
        return
    p = Path(path)
    try:
        fh: IO[str] = p.open("r", encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"events file {p} not found") from None
    except IsADirectoryError:
        raise InputError(f"events file {p} is a folder, expected a JSON-lines file") from None
    except OSError as e:
        raise InputError(f"events file {p} cannot be read: {e.strerror or e}") from None
    with fh:
        yield from enumerate(fh, 1)


def read_events(paths: str | Path | Sequence[str | Path], *, strict: bool = False) -> ReportData:
    """Stream-read JSON-lines event files into compact per-segment arrays and alarm spans."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    t0 = time.perf_counter()
    segments: list[Segment] = []
    current: dict[str, Segment] = {}
    bad: list[tuple[str, int, str]] = []
    n_bad = n_lines = 0
    bundles: dict[str, int] = {}
    labels: dict[str, int] = {}
    loads = json.loads
    for src in paths:
        name = str(src)
        for lineno, line in _lines(src):
            n_lines += 1
            if not line.strip():
                continue
            reason = None
            try:
                ev = loads(line)
            except ValueError as e:
                ev = None
                reason = ("truncated line (no newline at the end)" if not line.endswith("\n")
                          else f"not JSON ({str(e)[:80]})")
            if reason is None:
                if type(ev) is not dict:
                    reason = f"expected a JSON object, got {type(ev).__name__}"
                else:
                    t = ev.get("t")
                    sc = ev.get("score", "missing")
                    if not _num(t) or not math.isfinite(t):
                        reason = f"'t' must be a finite number of seconds, got {t!r}"[:120]
                    elif sc is not None and not _num(sc):
                        reason = f"'score' must be a number or null, got {sc!r}"[:120]
                    else:
                        reason = _add(ev, t, sc, name, segments, current, bundles, labels)
            if reason is not None:
                if strict:
                    raise InputError(f"events file {name}, line {lineno}: {reason}")
                n_bad += 1
                if len(bad) < _MAX_BAD_LISTED:
                    bad.append((name, lineno, reason))
    for seg in segments:
        _close(seg)
    n_good = sum(len(s) for s in segments)
    if n_good == 0:
        what = ", ".join(str(p) for p in paths)
        first = f"; first bad line: {bad[0][0]}, line {bad[0][1]}: {bad[0][2]}" if bad else ""
        raise InputError(f"events file {what} holds no events ({n_lines} lines, {n_bad} bad{first}); "
                         f"expected JSON lines as written by `edgefault score`")
    return ReportData(sources=[str(p) for p in paths], segments=segments, n_lines=n_lines, n_bad=n_bad,
                      bad=bad, bundles=bundles, read_seconds=time.perf_counter() - t0,
                      label_names=sorted(labels, key=labels.__getitem__))


def _add(ev: dict[str, Any], t: float, sc: float | None, src: str, segments: list[Segment],
         current: dict[str, Segment], bundles: dict[str, int], labels: dict[str, int] | None = None) -> str | None:
    """Fold one event in; return a reason when a present optional field has a wrong type."""
    lab = ev.get("label")
    if lab is not None and not isinstance(lab, str):
        return f"'label' must be a string or null, got {lab!r}"[:120]
    thr = ev.get("threshold")
    if thr is not None and not _num(thr):
        return f"'threshold' must be a number, got {thr!r}"[:120]
    alarm = ev.get("alarm", False)
    anomaly = ev.get("anomaly")
    if type(alarm) is not bool or (anomaly is not None and type(anomaly) is not bool):
        return f"'alarm' / 'anomaly' must be true or false, got {alarm!r} / {anomaly!r}"[:120]
    contrib = ev.get("contrib")
    if contrib is not None and type(contrib) is not dict:
        return f"'contrib' must be an object, got {type(contrib).__name__}"
    key = ev.get("file") or ev.get("sensor") or src
    if not isinstance(key, str):
        key = str(key)
    seg = current.get(key)
    if seg is None or (len(seg.t) and t < seg.t[-1]):
        if seg is not None:
            _close(seg)
        seg = Segment(key, len(segments))
        segments.append(seg)
        current[key] = seg
    valid = sc is not None and ev.get("valid", True) is not False and math.isfinite(sc)
    if anomaly is None:
        anomaly = bool(valid and thr is not None and sc > thr)
    bits = (_ANOM if anomaly else 0) | (_ALARM if alarm else 0) | (0 if valid else _INVALID)
    if ev.get("flags"):
        bits |= _INVALID
    d = ev.get("drift")
    if d is not None and _drift_on(d):
        bits |= _DRIFT
        if seg.drift_open is None:
            seg.drift_open = [t, t, 1, d]
        else:
            seg.drift_open[1] = t
            seg.drift_open[2] += 1
    elif seg.drift_open is not None:
        seg.drift_spans.append(seg.drift_open)
        seg.drift_open = None
    if ev.get("retrain") is True and seg.retrain is None:
        seg.retrain = (t, ev.get("retrain_reason"))
    seg.t.append(t)
    seg.score.append(sc if valid else math.nan)  # type: ignore[arg-type]
    seg.thr.append(thr if thr is not None else math.nan)
    at = ev.get("adaptive_threshold")
    if _num(at):
        seg.has_adaptive = True
        seg.adaptive.append(at)
    else:
        seg.adaptive.append(math.nan)
    seg.bits.append(bits)
    code = 0
    if lab is not None and labels is not None:
        code = labels.get(lab, 0)
        if not code and len(labels) < _MAX_LABELS:
            code = labels[lab] = len(labels) + 1
        code = code or _MAX_LABELS + 1  # beyond the table: "other"
        seg.has_label = True
    seg.label.append(code)
    if seg.window_s is None and _num(ev.get("t_start")):
        seg.window_s = t - ev["t_start"]
    b = ev.get("bundle_id")
    if b is not None:
        label = f"{b} ({ev['bundle_name']})" if ev.get("bundle_name") else str(b)
        bundles[label] = bundles.get(label, 0) + 1
    if alarm:
        sp = seg.open
        if sp is None:
            sp = seg.open = Span(seg.index, t, t)
        sp.t_end = t
        sp.n_windows += 1
        sp.n_anomalous += bool(anomaly)
        if valid and sc > sp.peak:  # type: ignore[operator]
            sp.peak, sp.t_peak = sc, t  # type: ignore[assignment]
        if contrib and valid:
            used = False
            for g, vals in contrib.items():
                if type(vals) is not dict:
                    continue
                acc = sp.contrib.setdefault(g, {})
                get = acc.get
                for n, v in vals.items():
                    if (type(v) is float or type(v) is int) and -math.inf < v < math.inf:
                        acc[n] = get(n, 0.0) + v
                        used = True
            sp.n_contrib += used
    elif seg.open is not None:
        _close(seg)
    return None


def _close(seg: Segment) -> None:
    if seg.open is not None:
        seg.spans.append(seg.open)
        seg.open = None
    if seg.drift_open is not None:
        seg.drift_spans.append(seg.drift_open)
        seg.drift_open = None


# -- SVG helpers ---------------------------------------------------------------------------------
def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    a = abs(v)
    if 1e-3 <= a < 1e5:
        return f"{v:.4g}"
    return f"{v:.2e}"


def _fmt_dur(s: float) -> str:
    if not math.isfinite(s):
        return "-"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 172800:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} d"


def _fmt_t(t: float) -> str:
    """Absolute times (epoch seconds, after 1990) as UTC; others as seconds."""
    if t > 6.3e8:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d} UTC"
    return f"{t:.3f} s"


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _pts(xs: Iterable[float], ys: Iterable[float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


@dataclass
class _Axes:
    x0: float
    x1: float
    y0: float
    y1: float
    log: bool
    left: int = 64
    top: int = 14
    width: int = 900
    height: int = 220

    def fx(self, t: np.ndarray) -> np.ndarray:
        return self.left + (t - self.x0) / (self.x1 - self.x0) * self.width

    def column(self, t: np.ndarray) -> np.ndarray:
        """Pixel column (0..width-1) of times."""
        c = (t - self.x0) * (self.width / (self.x1 - self.x0))
        return np.clip(c, 0, self.width - 1, out=c).astype(np.intp)

    def vy(self, v: np.ndarray) -> np.ndarray:
        """Value to transformed (log10 when log) value; non-positive -> bottom when log."""
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log10(np.where(v > 0, v, 10 ** self.y0))
        return v

    def fy(self, tv: np.ndarray) -> np.ndarray:
        """Transformed value to pixel row."""
        r = (tv - self.y0) / (self.y1 - self.y0)
        return self.top + (1.0 - np.clip(r, -0.02, 1.02)) * self.height


def _time_unit(span: float) -> tuple[float, str]:
    if span < 600:
        return 1.0, "s"
    if span < 36000:
        return 60.0, "min"
    if span < 3 * 86400:
        return 3600.0, "h"
    return 86400.0, "d"


def _envelope(col: np.ndarray, y: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(w, np.inf)
    hi = np.full(w, -np.inf)
    np.minimum.at(lo, col, y)
    np.maximum.at(hi, col, y)
    return lo, hi


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of runs of True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _choose_log(scores: np.ndarray, mode: str) -> bool:
    if mode == "log":
        return bool(scores.size and (scores > 0).any())
    if mode == "linear" or scores.size == 0:
        return False
    pos = scores[scores > 0]
    if pos.size < scores.size * 0.99 or pos.size == 0:
        return False
    lo, hi = np.percentile(pos, [1.0, 100.0])
    return bool(hi / max(lo, 1e-300) > 30.0)


def _plot(seg: Segment, scale: str, width: int = 900) -> str:
    t = np.frombuffer(seg.t, dtype=np.float64)
    y = np.frombuffer(seg.score, dtype=np.float64)
    thr = np.frombuffer(seg.thr, dtype=np.float64)
    bits = np.frombuffer(bytes(seg.bits), dtype=np.uint8)
    ok = np.isfinite(y)
    thr_ok = np.isfinite(thr) & (np.abs(thr) < 1e30)  # the runtime writes float32 max for "no threshold"
    log = _choose_log(y[ok], scale)
    ax = _Axes(float(t[0]), float(t[-1]), 0.0, 1.0, log, width=width)
    pad_t = seg.window_s or 0.0
    if ax.x1 <= ax.x0:
        ax.x0, ax.x1 = ax.x0 - max(pad_t, 0.5), ax.x1 + max(pad_t, 0.5)
    ad = np.frombuffer(seg.adaptive, dtype=np.float64)
    ad_ok = np.isfinite(ad) & (np.abs(ad) < 1e30)
    if not seg.has_adaptive:
        ad_ok[:] = False
    ranges = []  # (min, max) of every plotted series, positive values only on a log axis
    for v, m in ((y, ok), (thr, thr_ok), (ad, ad_ok)):
        vv = v[m & (v > 0)] if log else v[m]
        if vv.size:
            ranges.append((float(vv.min()), float(vv.max())))
    if ranges:
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
    else:
        lo = hi = 0.0
    if hi <= lo:
        lo, hi = lo - (1 if log else max(abs(lo) * 0.1, 1.0)), hi + (1 if log else max(abs(hi) * 0.1, 1.0))
    padv = (hi - lo) * 0.05
    ax.y0, ax.y1 = lo - padv, hi + padv
    W, H, L, T = ax.width, ax.height, ax.left, ax.top
    out = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{L + W + 16}" height="{T + H + 40}" '
           f'viewBox="0 0 {L + W + 16} {T + H + 40}" data-segment="{seg.index}" data-alarm-spans="{len(seg.spans)}" '
           f'data-scale="{"log" if log else "linear"}" role="img" aria-label="score over time">']
    out.append(f'<rect x="{L}" y="{T}" width="{W}" height="{H}" class="frame"/>')
    # alarm spans (under the data)
    spans = seg.spans
    half = (pad_t / 2) if pad_t else 0.0
    if len(spans) <= _MAX_SPANS_DRAWN:
        for i, sp in enumerate(spans):
            a = float(ax.fx(np.array(sp.t_start - half))[()])
            b = float(ax.fx(np.array(sp.t_end + half))[()])
            a, b = max(a, L), min(b, L + W)
            out.append(f'<rect class="alarm-span" data-span="{i}" x="{a:.1f}" y="{T}" width="{max(b - a, 1.0):.1f}" '
                       f'height="{H}"><title>alarm {_fmt_t(sp.t_start)} to {_fmt_t(sp.t_end)}</title></rect>')
    else:  # merged per pixel column
        cols = np.zeros(W, dtype=bool)
        for sp in spans:
            a = int(np.clip(ax.fx(np.array(sp.t_start)) - L, 0, W - 1))
            b = int(np.clip(ax.fx(np.array(sp.t_end)) - L, 0, W - 1))
            cols[a:b + 1] = True
        for a, b in _runs(cols):
            out.append(f'<rect class="alarm-span merged" x="{L + a}" y="{T}" width="{b - a}" height="{H}"/>')
    # axes and ticks
    yt = _nice_ticks(ax.y0, ax.y1, 5)
    if log:
        yt = [float(v) for v in range(math.ceil(ax.y0), math.floor(ax.y1) + 1)] or yt
    for v in yt:
        py = float(ax.fy(np.array(v)))
        lab = _fmt(10 ** v) if log else _fmt(v)
        out.append(f'<line class="grid" x1="{L}" x2="{L + W}" y1="{py:.1f}" y2="{py:.1f}"/>'
                   f'<text class="tick" x="{L - 4}" y="{py + 4:.1f}" text-anchor="end">{lab}</text>')
    unit, uname = _time_unit(ax.x1 - ax.x0)
    for v in _nice_ticks((ax.x0 - t[0]) / unit, (ax.x1 - t[0]) / unit, 8):
        px = float(ax.fx(np.array(t[0] + v * unit)))
        if L - 1 <= px <= L + W + 1:
            out.append(f'<line class="grid" x1="{px:.1f}" x2="{px:.1f}" y1="{T}" y2="{T + H}"/>'
                       f'<text class="tick" x="{px:.1f}" y="{T + H + 14}" text-anchor="middle">{_fmt(v)}</text>')
    out.append(f'<text class="axis" x="{L + W / 2}" y="{T + H + 32}" text-anchor="middle">time ({uname}) from '
               f'{_e(_fmt_t(float(t[0])))}</text>')
    out.append(f'<text class="axis" x="12" y="{T + H / 2}" text-anchor="middle" '
               f'transform="rotate(-90 12 {T + H / 2})">score{" (log)" if log else ""}</text>')
    # the score: polyline when few points, else min/max envelope per pixel column
    # (dense series: min/max of the values per pixel column first, then only those go to pixels)
    n_ok = int(ok.sum())
    if 0 < n_ok <= 2 * W:
        px = ax.fx(t)
        py = ax.fy(ax.vy(y))
        for a, b in _runs(ok):
            if b - a == 1:
                out.append(f'<circle class="score" cx="{px[a]:.1f}" cy="{py[a]:.1f}" r="1.5"/>')
            else:
                out.append(f'<polyline class="score" points="{_pts(px[a:b], py[a:b])}"/>')
    elif n_ok:
        lo_v, hi_v = _envelope(ax.column(t[ok]), y[ok], W)
        have = np.isfinite(lo_v)
        for a, b in _runs(have):
            xs = np.arange(a, b) + L + 0.5
            top, bottom = ax.fy(ax.vy(hi_v[a:b])), ax.fy(ax.vy(lo_v[a:b]))
            pts = _pts(np.concatenate([xs, xs[::-1]]), np.concatenate([top, bottom[::-1]]))
            out.append(f'<polygon class="envelope" points="{pts}"/>')
    # thresholds
    for arr, m, cls, name in ((thr, thr_ok, "threshold", "threshold"), (ad, ad_ok, "adaptive", "adaptive threshold")):
        if not m.any():
            continue
        v = arr[m]
        if v.min() == v.max():
            py = float(ax.fy(ax.vy(np.array(v[0]))))
            out.append(f'<line class="{cls}" x1="{L}" x2="{L + W}" y1="{py:.1f}" y2="{py:.1f}">'
                       f'<title>{name} {_fmt(float(v[0]))}</title></line>')
        else:
            _, hi_c = _envelope(ax.column(t[m]), v, W)
            have = np.isfinite(hi_c)
            for a, b in _runs(have):
                xs = np.arange(a, b) + L + 0.5
                out.append(f'<polyline class="{cls}" points="{_pts(xs, ax.fy(ax.vy(hi_c[a:b])))}"/>')
    # invalid windows (bottom ticks) and drift (top ticks), per pixel column
    for bit, cls, y0, h in ((_INVALID, "invalid", T + H - 8, 8), (_DRIFT, "drift", T, 8)):
        m = (bits & bit) != 0
        if m.any():
            cols = np.zeros(W, dtype=bool)
            cols[ax.column(t[m])] = True
            for a, b in _runs(cols):
                out.append(f'<rect class="{cls}" x="{L + a}" y="{y0}" width="{max(b - a, 1)}" height="{h}"/>')
    out.append("</svg>")
    return "".join(out)


def _bars(values: dict[str, float], group: str, k: int = 8) -> str:
    items = sorted(((v, n) for n, v in values.items() if math.isfinite(v)), reverse=True)
    total = sum(v for v, _ in items if v > 0)
    items = items[:k]
    if not items:
        return ""
    vmax = max(max(v for v, _ in items), 1e-300)
    rh, lw, bw = 16, 235, 150
    out = [f'<svg class="bars" data-group="{_e(group)}" xmlns="http://www.w3.org/2000/svg" width="{lw + bw + 60}" '
           f'height="{rh * len(items) + 4}">']
    for i, (v, n) in enumerate(items):
        y = i * rh + 2
        w = max(v, 0.0) / vmax * bw
        share = f"{100 * v / total:.0f}%" if total > 0 else _fmt(v)
        short = n if len(n) <= 30 else n[:29] + "\u2026"
        out.append(f'<text class="name" data-name="{_e(n)}" x="{lw - 4}" y="{y + 11}" text-anchor="end">{_e(short)}'
                   f'<title>{_e(n)}: {_fmt(v)}</title></text>'
                   f'<rect class="bar" x="{lw}" y="{y + 2}" width="{w:.1f}" height="{rh - 4}"/>'
                   f'<text class="val" x="{lw + w + 4:.1f}" y="{y + 11}">{share}</text>')
    out.append("</svg>")
    return "".join(out)


def _group_values(contrib: dict[str, dict[str, float]], g: str) -> dict[str, float]:
    """A group's entries as drawn: the ``feature`` list without the bands the ``band`` group shows
    (spectrum models list the same names in both)."""
    vals = contrib.get(g) or {}
    if g == "feature" and contrib.get("band"):
        vals = {k: v for k, v in vals.items() if k not in contrib["band"]}
    return vals


_MIN_RATE_S = 3600.0  # a rate per hour only from at least this much data
_MIN_RATE_TEXT = "1 h"


def _alarm_rate(n: int, duration: float) -> str:
    """Alarm spans with the duration they come from; per hour only from >= _MIN_RATE_S of data."""
    spans = f"{n} alarm span{'' if n == 1 else 's'}"
    if not duration > 0:
        return f"{spans} (no duration)"
    if duration < _MIN_RATE_S:
        return f"{spans} in {_fmt_dur(duration)} of data (no per-hour rate from less than {_MIN_RATE_TEXT})"
    return f"{n / (duration / 3600):.3g} per hour ({spans} in {_fmt_dur(duration)} of data)"


def _top_features(contrib: dict[str, dict[str, float]], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` largest summed ``feature`` entries (channel.feature, bands included; else the
    ``band`` group) with their share of that group's positive sum."""
    vals = contrib.get("feature") or contrib.get("band") or {}
    items = sorted(((v, n) for n, v in vals.items() if math.isfinite(v) and v > 0), reverse=True)
    total = sum(v for v, _ in items)
    return [(n, v / total) for v, n in items[:k]] if total > 0 else []


def _top_html(top: list[tuple[str, float]]) -> str:
    return ", ".join(f'<span class="top-feature" data-name="{_e(n)}">{_e(n)}</span>&nbsp;{100 * f:.0f}&nbsp;%'
                     for n, f in top)


def _drift_parts(d: Any) -> tuple[str, str]:
    """A drift value at onset as (monitors that fired, their statistics), in words."""
    if not isinstance(d, dict):
        return ("drift", "" if d is True else str(d))
    mons = d.get("monitors")
    m = " + ".join(f"{x} monitor" for x in mons) if isinstance(mons, (list, tuple)) and mons else "drift"
    stats = []
    for key, label in (("score", "score CUSUM"), ("latent", "latent MEWMA")):
        v = d.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            stats.append(f"{label} {_fmt(float(v))}")
    rest = {k: v for k, v in d.items() if k not in ("monitors", "score", "latent", "active")}
    stats += [f"{k} {v}" for k, v in list(rest.items())[:4]]
    return m, ", ".join(stats)


def _groups(contrib: dict[str, dict[str, float]]) -> list[str]:
    """Up to four groups to draw: channel, band, time, then features other than the bands (the
    largest single contributor, e.g. DE.kurtosis, is often there), then others."""
    gs = [g for g in _GROUP_ORDER if _group_values(contrib, g)]
    gs += sorted(g for g in contrib if g not in _GROUP_ORDER and g not in _NOT_TERMS and contrib[g])
    return gs[:4]


_CSS = """
svg.class-strip{display:block;max-width:100%;height:18px}
.axis{display:flex;justify-content:space-between;max-width:900px;font-size:12px;color:#555;margin-bottom:8px}
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1em}
table{border-collapse:collapse;font-size:.9em}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6}.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4e0;border:1px solid #f0c36d;padding:8px 12px}
.legend span{display:inline-block;margin-right:14px;font-size:.85em}.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
svg .frame{fill:#fff;stroke:#bbb}svg .grid{stroke:#eee}svg .tick{font-size:10px;fill:#555}svg .axis{font-size:11px;fill:#333}
svg .alarm-span{fill:#e53935;fill-opacity:.16}svg .envelope{fill:#1e64c8;fill-opacity:.55;stroke:#1e64c8;stroke-width:.6}
svg .score{fill:none;stroke:#1e64c8;stroke-width:1}svg circle.score{fill:#1e64c8}
svg .threshold{stroke:#e53935;stroke-width:1.2;stroke-dasharray:6 3;fill:none}svg .adaptive{stroke:#fb8c00;stroke-width:1.2;fill:none}
svg .invalid{fill:#555}svg .drift{fill:#8e24aa}
svg.bars .bar{fill:#1e64c8}svg.bars text{font-size:10.5px;fill:#333}
"""


def _label_colours(names: list[str]) -> dict[str, str]:
    palette = ["#1e88e5", "#e53935", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#d81b60", "#3949ab",
               "#c0ca33", "#5e35b1"]
    out, k = {}, 0
    for n in names:
        if n == "unknown":
            out[n] = "#9e9e9e"
        elif n.lower() in ("normal", "healthy"):
            out[n] = "#43a047"
        else:
            out[n] = palette[k % len(palette)]
            k += 1
    return out


def _class_section(data: ReportData, segs: list[Segment], width: int, max_plots: int) -> str:
    """Classifier bundles: predicted classes over time per recording (a strip coloured by the most
    frequent label per pixel column) and the labels-over-time table (counts per time bin)."""
    names = data.label_names + (["other"] if any(_MAX_LABELS + 1 in s.label for s in segs) else [])
    col = _label_colours(names)
    out = ["<h2>Classes over time</h2>",
           '<p class="legend">' + "".join(f'<span><i class="sw" style="background:{col[n]}"></i>{_e(n)}</span>'
                                          for n in names) + "</p>",
           "<p><small>Each window's predicted class (<code>label</code>); <code>unknown</code>: the top class "
           "probability was below the bundle's calibrated confidence floor; windows without a label "
           "(invalid, flagged) are left blank. The table counts labels per tenth of each recording's time, "
           "so a change of class over time shows as a change along its rows.</small></p>"]
    shown = [s for s in segs if s.has_label][:max_plots]
    for s in shown:
        t = np.frombuffer(s.t, dtype=np.float64)
        codes = np.frombuffer(bytes(s.label), dtype=np.uint8)
        lo, hi = float(t[0]), float(t[-1])
        span = hi - lo if hi > lo else 1.0
        w = width
        colx = np.minimum(((t - lo) / span * (w - 1)).astype(np.int64), w - 1)
        rects = []
        n_codes = len(names) + 1
        hist = np.zeros((w, n_codes), dtype=np.int64)
        np.add.at(hist, (colx, codes.astype(np.int64)), 1)
        hist[:, 0] = 0  # blank: no label
        has = hist.sum(axis=1) > 0
        best = hist.argmax(axis=1)
        # columns between windows (fewer windows than pixels) take the nearest window's label
        empty = hist.sum(axis=1) == 0
        if empty.any() and len(t) > 1:
            tc = lo + (np.arange(w) + 0.5) / w * span
            j = np.clip(np.searchsorted(t, tc), 1, len(t) - 1)
            near = np.where(tc - t[j - 1] < t[j] - tc, j - 1, j)
            fill = codes[near].astype(np.int64)
            best = np.where(empty, fill, best)
            has = has | (empty & (fill > 0))
        x0 = 0
        while x0 < w:  # runs of equal majority label
            x1 = x0
            while x1 + 1 < w and has[x1 + 1] == has[x0] and best[x1 + 1] == best[x0]:
                x1 += 1
            if has[x0]:
                n = names[best[x0] - 1]
                rects.append(f'<rect x="{x0}" y="0" width="{x1 - x0 + 1}" height="18" fill="{col[n]}" '
                             f'data-label="{_e(n)}"><title>{_e(n)}</title></rect>')
            x0 = x1 + 1
        counts = np.bincount(codes, minlength=n_codes)
        summary = ", ".join(f"{_e(n)} {counts[i + 1]} ({100 * counts[i + 1] / max(len(codes), 1):.3g} %)"
                            for i, n in enumerate(names) if counts[i + 1])
        out.append(f'<h3 class="segment">{_e(s.key)} <small>({summary or "no labelled window"})</small></h3>')
        out.append(f'<svg class="class-strip" width="{w}" height="18" viewBox="0 0 {w} 18" role="img" '
                   f'aria-label="predicted class over time">{"".join(rects)}</svg>'
                   f'<div class="axis"><span>{_e(_fmt_t(lo))}</span><span>{_e(_fmt_t(hi))}</span></div>')
        edges = np.linspace(lo, hi, _TIME_BINS + 1)
        b = np.minimum(np.searchsorted(edges, t, side="right") - 1, _TIME_BINS - 1)
        table = np.zeros((_TIME_BINS, n_codes), dtype=np.int64)
        np.add.at(table, (b, codes.astype(np.int64)), 1)
        out.append('<table class="labels-over-time"><tr><th>time</th>' +
                   "".join(f"<th>{_e(n)}</th>" for n in names) + "<th>no label</th></tr>")
        for r in range(_TIME_BINS):
            if not table[r].any():
                continue
            tot = table[r].sum()
            cells = "".join(f'<td class="num">{table[r, i + 1]}'
                            f'{f" ({100 * table[r, i + 1] / tot:.0f} %)" if table[r, i + 1] else ""}</td>'
                            for i in range(len(names)))
            out.append(f'<tr><td>{_e(_fmt_t(edges[r]))} to {_e(_fmt_t(edges[r + 1]))}</td>{cells}'
                       f'<td class="num">{table[r, 0]}</td></tr>')
        out.append("</table>")
    return "".join(out)


def _legend(has_adaptive: bool, has_invalid: bool, has_drift: bool) -> str:
    items = [("#1e64c8", "score (min-max per pixel column when dense)"), ("#e53935", "threshold (dashed)"),
             ("rgba(229,57,53,.25)", "alarm span")]
    if has_adaptive:
        items.append(("#fb8c00", "adaptive threshold"))
    if has_invalid:
        items.append(("#555", "invalid / flagged windows (bottom marks)"))
    if has_drift:
        items.append(("#8e24aa", "drift (top marks)"))
    return '<p class="legend">' + "".join(f'<span><i class="sw" style="background:{c}"></i>{_e(n)}</span>'
                                          for c, n in items) + "</p>"


def build_report(data: ReportData, *, title: str | None = None, scale: str = "auto", max_plots: int = 20,
                 max_spans: int = 100, bundle: dict[str, Any] | None = None,
                 explain: dict[str, Any] | None = None, width: int = 900) -> str:
    """The HTML page (a string) for events read by :func:`read_events`."""
    if scale not in ("auto", "log", "linear"):
        raise InputError(f"scale {scale!r}: expected auto, log or linear")
    segs = data.segments
    spans = data.spans
    n_ev = data.n_events
    n_valid = n_anom = n_alarm_w = n_inval = n_drift = 0
    duration = 0.0
    t_min, t_max = math.inf, -math.inf
    thr_vals: list[float] = []
    seg_rows = []
    for s in segs:
        b = np.frombuffer(bytes(s.bits), dtype=np.uint8)
        t = np.frombuffer(s.t, dtype=np.float64)
        th = np.frombuffer(s.thr, dtype=np.float64)
        inval = int(((b & _INVALID) != 0).sum())
        anom = int(((b & _ANOM) != 0).sum())
        aw = int(((b & _ALARM) != 0).sum())
        n_valid += len(s) - inval
        n_inval += inval
        n_anom += anom
        n_alarm_w += aw
        n_drift += int(((b & _DRIFT) != 0).sum())
        d = float(t[-1] - t[0]) + (s.window_s or 0.0)
        duration += d
        t_min, t_max = min(t_min, float(t[0]) - (s.window_s or 0.0)), max(t_max, float(t[-1]))
        okth = th[np.isfinite(th) & (np.abs(th) < 1e30)]
        if okth.size:
            thr_vals += [float(okth.min()), float(okth.max())]
        seg_rows.append((s, len(s), inval, anom, len(s.spans), sum(sp.duration for sp in s.spans), d))
    alarm_time = sum(sp.duration for sp in spans)
    page = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f'<title>{_e(title or "edgefault report")}</title>',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<style>{_CSS}</style></head><body>",
            f'<h1>{_e(title or "edgefault report")}</h1>']
    # summary
    rows: list[tuple[str, str]] = [("events file(s)", ", ".join(data.sources))]
    if bundle:
        rows.append(("bundle", f"{bundle.get('bundle_id')} ({bundle.get('kind')}"
                                f"{', ' + str(bundle['name']) if bundle.get('name') else ''})"))
    for label, n in data.bundles.items():
        rows.append(("bundle in events", f"{label}: {n} events"))
    rows += [
        ("time range", f"{_fmt_t(t_min)} to {_fmt_t(t_max)}"),
        ("recordings / segments", f"{len(segs)}"),
        ("windows", f"{n_ev} ({n_valid} valid, {n_inval} invalid or flagged)"),
        ("threshold", ("-" if not thr_vals else _fmt(min(thr_vals)) if min(thr_vals) == max(thr_vals)
                       else f"{_fmt(min(thr_vals))} to {_fmt(max(thr_vals))} (varies)")),
        ("windows above threshold", f"{n_anom} ({100 * n_anom / max(n_valid, 1):.3g} % of valid windows)"),
        ("alarm spans", f"{len(spans)}"),
        ("total alarm time", f"{_fmt_dur(alarm_time)} ({100 * alarm_time / duration:.3g} % of {_fmt_dur(duration)})"
         if duration > 0 else _fmt_dur(alarm_time)),
        ("alarm rate", _alarm_rate(len(spans), duration)),
        ("windows in alarm", f"{n_alarm_w} ({100 * n_alarm_w / max(n_ev, 1):.3g} %)"),
    ]
    if n_drift:
        rows.append(("drift", f"{sum(len(s.drift_spans) for s in segs)} span(s), {n_drift} windows"))
    if data.label_names:
        codes = np.frombuffer(b"".join(bytes(s.label) for s in segs), dtype=np.uint8)
        cnt = np.bincount(codes, minlength=len(data.label_names) + 2)
        names = data.label_names + ["other"]
        rows.append(("predicted classes", ", ".join(
            f"{n} {cnt[i + 1]} ({100 * cnt[i + 1] / max(n_ev, 1):.3g} %)" for i, n in enumerate(names) if cnt[i + 1])
            + (f", no label {cnt[0]}" if cnt[0] else "")))
    all_contrib: dict[str, dict[str, float]] = {}
    for sp in spans:
        for g, vals in sp.contrib.items():
            acc = all_contrib.setdefault(g, {})
            for n, v in vals.items():
                acc[n] = acc.get(n, 0.0) + v
    top_all = _top_features(all_contrib)
    if data.n_bad:
        rows.append(("bad lines skipped", f"{data.n_bad} of {data.n_lines}"))
    page.append('<h2>Summary</h2><table class="summary">' +
                "".join(f'<tr class="{_e(k.replace(" ", "-"))}"><th>{_e(k)}</th><td>{_e(v)}</td></tr>'
                        for k, v in rows) +
                (f'<tr class="top-features"><th>top features in alarms</th><td>{_top_html(top_all)}</td></tr>'
                 if top_all else "") + "</table>")
    page.append(f"<p><small>On healthy data, windows above threshold and the alarm rate are the false-alarm "
                f"rates (per window and debounced); a rate per hour is given only from at least "
                f"{_MIN_RATE_TEXT} of data, never extrapolated from less. Total alarm time counts each "
                f"span from its first to its last alarmed window end. Top features: the largest summed "
                f"<code>contrib.feature</code> entries (channel.feature) over the alarmed windows, as a share of "
                f"the listed entries' sum.</small></p>")
    if data.n_bad:
        page.append(f'<div class="warn"><b>{data.n_bad} bad line(s) skipped.</b><ul>' +
                    "".join(f"<li>{_e(src)}, line {ln}: {_e(r)}</li>" for src, ln, r in data.bad) +
                    (f"<li>... and {data.n_bad - len(data.bad)} more</li>" if data.n_bad > len(data.bad) else "") +
                    "</ul></div>")
    if data.label_names:
        page.append(_class_section(data, segs, width, max_plots))
    # plots
    page.append("<h2>Score over time</h2>")
    page.append(_legend(any(s.has_adaptive for s in segs), n_inval > 0, n_drift > 0))
    order = sorted(segs, key=lambda s: (not s.spans, s.index))[:max_plots]
    order.sort(key=lambda s: s.index)
    for s in order:
        page.append(f'<h3 class="segment">{_e(s.key)} <small>({len(s)} windows, {len(s.spans)} alarm span(s))'
                    f'</small></h3>')
        page.append(_plot(s, scale, width))
    if len(segs) > len(order):
        page.append(f"<p>{len(segs) - len(order)} more segment(s) not plotted (those with alarms first; "
                    f"raise --max-plots).</p>")
    if len(segs) > 1:
        page.append('<h2>Per recording</h2><table class="segments"><tr><th>recording</th><th>windows</th>'
                    '<th>invalid</th><th>above threshold</th><th>alarm spans</th><th>alarm time</th>'
                    '<th>duration</th></tr>')
        for s, n, inv, an, ns, at, d in seg_rows:
            page.append(f'<tr><td>{_e(s.key)}</td><td class="num">{n}</td><td class="num">{inv}</td>'
                        f'<td class="num">{an}</td><td class="num">{ns}</td><td class="num">{_fmt_dur(at)}</td>'
                        f'<td class="num">{_fmt_dur(d)}</td></tr>')
        page.append("</table>")
    # alarm spans and their top contributors
    page.append("<h2>Alarm spans</h2>")
    if not spans:
        page.append('<p class="no-alarms">No alarm was raised.</p>')
    else:
        total = all_contrib
        if total:
            page.append("<h3>All alarmed windows together</h3><div class=\"overall\">" +
                        "".join(f"<div><b>{_e(g)}</b><br>{_bars(_group_values(total, g), g)}</div>" for g in _groups(total)) +
                        "</div>")
        page.append("<p><small>Bars: each name's summed contribution over the span's alarmed windows, as a share of "
                    "the group's sum. <code>channel</code> covers the whole score; <code>band</code> / "
                    "<code>feature</code> sum the top entries each event lists.</small></p>")
        page.append('<table class="spans"><tr><th>#</th><th>recording</th><th>start</th><th>end</th>'
                    '<th>duration</th><th>windows</th><th>peak score</th><th>top features</th>'
                    '<th>top contributors</th></tr>')
        for i, sp in enumerate(spans[:max_spans]):
            seg = segs[sp.segment]
            gs = _groups(sp.contrib)
            charts = "".join(f"<div><b>{_e(g)}</b><br>{_bars(_group_values(sp.contrib, g), g)}</div>"
                             for g in gs) or "-"
            top_ch = ""
            if sp.contrib.get("channel"):
                top_ch = max(sp.contrib["channel"], key=sp.contrib["channel"].__getitem__)
            top = _top_features(sp.contrib)
            page.append(f'<tr class="alarm-span" data-span="{i}" data-top-channel="{_e(top_ch)}" '
                        f'data-top-feature="{_e(top[0][0] if top else "")}"><td>{i + 1}</td>'
                        f"<td>{_e(seg.key)}</td><td>{_e(_fmt_t(sp.t_start))}</td><td>{_e(_fmt_t(sp.t_end))}</td>"
                        f'<td class="num">{_fmt_dur(sp.duration)}</td><td class="num">{sp.n_windows} '
                        f'({sp.n_anomalous} above)</td><td class="num">{_fmt(sp.peak) if math.isfinite(sp.peak) else "-"}'
                        f"</td><td>{_top_html(top) or '-'}</td><td>{charts}</td></tr>")
        page.append("</table>")
        if len(spans) > max_spans:
            page.append(f'<p class="more-spans">{len(spans) - max_spans} more alarm span(s) not listed '
                        f"(raise --max-spans).</p>")
    drift = [(s.key, sp) for s in segs for sp in s.drift_spans]
    retrain = [(s.key, s.retrain) for s in segs if s.retrain is not None]
    if drift or retrain:
        page.append("<h2>Drift</h2>")
    if drift:
        page.append('<table class="drift"><tr><th>#</th><th>recording</th><th>drift from</th><th>to</th>'
                    '<th>duration</th><th>windows</th><th>monitors at onset</th><th>statistics at onset</th></tr>' +
                    "".join(f'<tr class="drift-span"><td>{i + 1}</td><td>{_e(k)}</td><td>{_e(_fmt_t(a))}</td>'
                            f'<td>{_e(_fmt_t(b))}</td><td class="num">{_fmt_dur(b - a)}</td><td class="num">{n}</td>'
                            f'<td class="drift-monitors">{_e(_drift_parts(d)[0])}</td>'
                            f'<td class="drift-stats">{_e(_drift_parts(d)[1])}</td></tr>'
                            for i, (k, (a, b, n, d)) in enumerate(drift[:max_spans])) + "</table>")
        page.append("<p><small>Drift spans: runs of consecutive drift-marked windows (marks along the top of the "
                    "plot); the monitors that fired and their statistics in the first window of each "
                    "span.</small></p>")
        if len(drift) > max_spans:
            page.append(f"<p>{len(drift) - max_spans} more drift span(s) not listed.</p>")
    for k, (t, why) in retrain:
        page.append(f'<p class="retrain"><b>Retraining recommended</b> for {_e(k)} from {_e(_fmt_t(t))}'
                    f'{": " + _e(why) if why else ""}.</p>')
    if explain:
        page.append(_explain_section(explain))
    page.append(f"<p><small>edgefault report, built {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} "
                f"from {data.n_lines} lines.</small></p></body></html>")
    return "\n".join(page)


def _explain_section(ex: dict[str, Any]) -> str:
    """Gradient attributions from `edgefault explain` (its JSON): averaged over the windows above
    the threshold when there are any, else over all explained windows."""
    out = ['<h2 class="explain">Gradient attribution (edgefault explain)</h2>']
    agg = ex.get("aggregate_above_threshold") or ex.get("aggregate") or {}
    which = "windows above threshold" if ex.get("aggregate_above_threshold") else "all explained windows"
    meta = {k: ex.get(k) for k in ("recording", "bundle_id", "method", "baseline", "time_range", "n_windows",
                                   "n_above_threshold") if ex.get(k) is not None}
    comp = ex.get("completeness")
    if isinstance(comp, dict) and comp.get("max_rel_error") is not None:
        meta["completeness (max rel. error)"] = f"{comp['max_rel_error']:.2g}"
    if meta:
        out.append("<p>" + ", ".join(f"{_e(k)}: {_e(v)}" for k, v in meta.items()) + "</p>")
    out.append(f"<p><small>Mean attribution over {agg.get('n_windows', '?')} {which}: the share of "
               f"score(window) - score(baseline) each input group accounts for.</small></p>")
    groups = [g for g in ("channel", "band", "time", "time_all_channels")
              if isinstance(agg.get(g), dict) and agg[g]]
    if groups:
        out.append('<div class="overall">' + "".join(
            f"<div><b>{_e(g)}</b><br>{_bars({k: float(v) for k, v in agg[g].items()}, 'explain-' + g)}</div>"
            for g in groups) + "</div>")
    return "".join(out)


def write_report(paths: str | Path | Sequence[str | Path], out: str | Path, *, strict: bool = False,
                 bundle: str | Path | None = None, explain: str | Path | None = None,
                 **kw: Any) -> tuple[ReportData, int]:
    """Read events, write the HTML page to ``out``; return the data and the page size in bytes."""
    data = read_events(paths, strict=strict)
    binfo = None
    if bundle is not None:
        from edgefault.device.bundle import load_bundle

        b = load_bundle(bundle)
        binfo = {"bundle_id": b.bundle_id, "kind": b.kind, "name": b.manifest.get("name")}
    ex = None
    if explain is not None:
        try:
            ex = json.loads(Path(explain).read_text())
        except FileNotFoundError:
            raise InputError(f"explain file {explain} not found") from None
        except ValueError as e:
            raise InputError(f"explain file {explain} is not JSON ({e})") from None
        if not isinstance(ex, dict):
            raise InputError(f"explain file {explain}: expected a JSON object from `edgefault explain`")
    text = build_report(data, bundle=binfo, explain=ex, **kw)
    raw = text.encode("utf-8")
    try:
        Path(out).write_bytes(raw)
    except OSError as e:
        raise InputError(f"cannot write report {out}: {e.strerror or e}") from None
    return data, len(raw)
