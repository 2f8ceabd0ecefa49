"""`edgefault report`: HTML from real scored events (a trained bundle run by `edgefault score`)."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import noise_recording
from edgefault.cli import main
from edgefault.errors import InputError
from edgefault.report.html import build_report, read_events, write_report


class _Page(HTMLParser):
    """Collects every start tag as (tag, attrs) and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, cls: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and cls in (a.get("class") or "").split()]


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text())
    p.close()
    return p


def _spans(events: list[dict[str, Any]]) -> list[tuple[str, float, float, list[dict[str, Any]]]]:
    """Alarm spans computed independently: runs of alarm=true per file."""
    out: list[tuple[str, float, float, list[dict[str, Any]]]] = []
    prev: dict[str, bool] = {}
    for e in events:
        f = e.get("file", "")
        if e["alarm"]:
            if prev.get(f):
                out[-1][3].append(e)
                out[-1] = (f, out[-1][1], e["t"], out[-1][3])
            else:
                out.append((f, e["t"], e["t"], [e]))
        prev[f] = e["alarm"]
    return out


def _npz(path: Path, data: np.ndarray, fs: float, channels: tuple[str, ...]) -> Path:
    np.savez(path, data=data, fs=np.float64(fs), channels=np.array(channels))
    return path


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, small_bundle: Path) -> dict[str, Path]:
    """Two recordings scored by the unit-test bundle: one with two fault bursts on channel 'a'
    (x4 amplitude), one healthy."""
    d = tmp_path_factory.mktemp("report")
    rec = noise_recording(seconds=12.0, seed=5)
    x = rec.data.copy()
    fs = int(rec.fs)
    x[3 * fs:5 * fs, 0] *= 4.0
    x[8 * fs:9 * fs, 0] *= 4.0
    faulty = _npz(d / "faulty.npz", x, rec.fs, rec.channels)
    h = noise_recording(seconds=6.0, seed=6)
    healthy = _npz(d / "healthy.npz", h.data, h.fs, h.channels)
    events = d / "events.jsonl"
    assert main(["score", str(small_bundle), str(faulty), str(healthy), "--out", str(events)]) == 0
    return {"dir": d, "events": events, "bundle": small_bundle}


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_report_structure_matches_events(scored: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = scored["dir"] / "report.html"
    assert main(["report", str(scored["events"]), "--out", str(out), "--bundle", str(scored["bundle"])]) == 0
    assert "wrote" in capsys.readouterr().err
    events = _load(scored["events"])
    spans = _spans(events)
    assert len(spans) >= 2  # both bursts raise an alarm; the healthy file may add none or few
    page = _parse(out)
    plots = page.having("svg", "plot")
    assert len(plots) == 2  # one per recording
    assert sum(int(p["data-alarm-spans"] or 0) for p in plots) == len(spans)
    assert len(page.having("rect", "alarm-span")) == len(spans)
    rows = page.having("tr", "alarm-span")
    assert len(rows) == len(spans)
    # every burst span: top channel 'a' (independently: sum of contrib.channel over the span)
    for row, (f, _, _, evs) in zip(rows, spans):
        ch: dict[str, float] = {}
        for e in evs:
            for k, v in e["contrib"].get("channel", {}).items():
                ch[k] = ch.get(k, 0.0) + v
        assert row["data-top-channel"] == max(ch, key=ch.__getitem__)
    burst_rows = [r for r, s in zip(rows, spans) if s[0].endswith("faulty.npz")]
    assert len(burst_rows) >= 2 and all(r["data-top-channel"] == "a" for r in burst_rows)
    names = [a["data-name"] for t, a in page.tags if t == "text" and a.get("data-name")]
    assert "a" in names and any(n and n.startswith("a.band") for n in names)
    text = " ".join(page.text)
    n_anom = sum(e["anomaly"] for e in events)
    assert f"{n_anom} (" in text
    assert "gaussian" in text and "unit-test" in text  # the bundle's kind and name
    # self-contained: no scripts, no external references
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe")]
    assert not re.search(r'(src|href)="?(https?:)?//', out.read_text())


def test_report_summary_counts(scored: dict[str, Path]) -> None:
    data = read_events(scored["events"])
    events = _load(scored["events"])
    assert data.n_events == len(events) and data.n_bad == 0
    spans = _spans(events)
    assert [(round(s.t_start, 9), round(s.t_end, 9), s.n_windows) for s in data.spans] == \
        [(round(a, 9), round(b, 9), len(e)) for _, a, b, e in spans]
    for s, (_, _, _, evs) in zip(data.spans, spans):
        assert s.peak == pytest.approx(max(e["score"] for e in evs))


def test_bad_lines_skipped_and_counted_or_strict(scored: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    lines = scored["events"].read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    body = lines[:10] + ["{not json\n", '{"t": "x", "score": 1}\n', "[1, 2]\n", '{"t": 1.0, "score": "high"}\n'] \
        + lines[10:40] + [lines[40][:25]]  # truncated last line
    bad.write_text("".join(body))
    out = tmp_path / "r.html"
    assert main(["report", str(bad), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "5 bad line" in err and "line 11" in err and "line 45" in err
    page = _parse(out)
    assert len(page.having("svg", "plot")) >= 1
    assert "line 12" in " ".join(page.text)
    assert main(["report", str(bad), "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "line 11" in err and "not JSON" in err and "Traceback" not in err
    assert read_events(_write(tmp_path / "b2.jsonl", lines[:3] + ['{"t": "x", "score": 1}\n',
                                                                  '{"t": 1%s, "score": 1}\n' % ("0" * 400)])).n_bad == 2
    with pytest.raises(InputError, match="line 12: 't' must be a finite number"):
        read_events(_write(tmp_path / "b3.jsonl", lines[:11] + ['{"t": "x", "score": 1}\n']), strict=True)


def _write(p: Path, lines: list[str]) -> Path:
    p.write_text("".join(lines))
    return p


@pytest.mark.parametrize("content, match", [
    (None, "not found"),
    ("", "holds no events"),
    ("garbage\nmore garbage\n", "holds no events.*line 1: not JSON"),
    ('{"t": 1, "score": 2, "alarm": "yes"}\n', "'alarm' / 'anomaly' must be true or false"),
])
def test_unusable_input_is_one_clear_error(content: str | None, match: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ev.jsonl"
    if content is not None:
        p.write_text(content)
    assert main(["report", str(p), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and str(p) in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def _synthetic(path: Path, n: int, seed: int = 0, drift_at: int | None = None, adaptive: bool = False) -> np.ndarray:
    """n events of a lognormal score with alarm runs; returns the scores."""
    rng = np.random.default_rng(seed)
    s = np.exp(rng.normal(0, 1.5, n))
    alarm = np.zeros(n, bool)
    for a in (n // 5, n // 2, 4 * n // 5):
        alarm[a:a + 50] = True
        s[a:a + 50] *= 1000
    with path.open("w") as fh:
        for i in range(n):
            d: dict[str, Any] = {"t": i * 0.05, "score": float(s[i]), "threshold": 30.0, "anomaly": bool(s[i] > 30),
                                 "alarm": bool(alarm[i]), "contrib": {"channel": {"x": 1.0, "y": 2.0}} if alarm[i] else {}}
            if adaptive:
                d["adaptive_threshold"] = 20.0 + i * 1e-3
            if drift_at is not None:
                d["drift"] = {"state": "drift" if i >= drift_at else "ok", "score_z": 0.0}
            if i == 7:
                d["score"], d["valid"], d["flags"] = None, False, ["nonfinite_input"]
            fh.write(json.dumps(d) + "\n")
    return s


def test_dense_input_is_downsampled_to_pixel_envelope(tmp_path: Path) -> None:
    p = tmp_path / "big.jsonl"
    s = _synthetic(p, 60000)
    out = tmp_path / "big.html"
    data, size = write_report(p, out, width=600)
    assert size < 120_000  # 60k events, one envelope of 600 columns
    page = _parse(out)
    (plot,) = page.having("svg", "plot")
    assert plot["data-scale"] == "log"  # scores span > 5 decades
    assert plot["data-alarm-spans"] == "3" and len(page.having("tr", "alarm-span")) == 3
    polys = page.having("polygon", "envelope")
    assert polys and sum(len(str(a["points"]).split()) for a in polys) <= 2 * 600
    # the envelope reaches the largest score: its top pixel is the plot's highest score pixel
    ys = [float(pt.split(",")[1]) for a in polys for pt in str(a["points"]).split()]
    ticks = [(a, t) for t, a in page.tags if t == "text" and a.get("class") == "tick"]
    assert ticks
    lo_px = min(ys)
    assert lo_px < 14 + 220 * 0.06  # within the top padding of the axes: the max is drawn
    assert len(page.having("rect", "invalid")) == 1
    assert not page.having("rect", "drift") and not page.having("polyline", "adaptive")
    assert np.isfinite(s).all()


def test_drift_and_adaptive_threshold_are_drawn(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    _synthetic(p, 3000, drift_at=2500, adaptive=True)
    out = tmp_path / "d.html"
    write_report(p, out, scale="linear")
    page = _parse(out)
    (plot,) = page.having("svg", "plot")
    assert plot["data-scale"] == "linear"
    assert page.having("rect", "drift") and page.having("polyline", "adaptive")
    assert len(page.having("tr", "drift-span")) == 1  # windows 2500.. form one drift span


def test_runtime_drift_events_and_retrain(tmp_path: Path) -> None:
    """The Runtime's event format: drift = {"active": ...} or None, retrain flag with a reason."""
    p = tmp_path / "r.jsonl"
    with p.open("w") as fh:
        for i in range(400):
            on = 100 <= i < 150 or 300 <= i < 320
            fh.write(json.dumps({"t": i * 0.1, "t_start": i * 0.1 - 0.2, "score": 1.0, "threshold": 2.0 + (i > 200),
                                 "alarm": False, "drift": None if i < 50 else {"score": 9.0 if on else 0.1,
                                                                              "latent": 0.0, "active": on},
                                 "retrain": i >= 310, "retrain_reason": "score drift" if i >= 310 else None}) + "\n")
    out = tmp_path / "r.html"
    write_report(p, out)
    page = _parse(out)
    assert len(page.having("tr", "drift-span")) == 2
    (plot,) = page.having("svg", "plot")
    assert page.having("polyline", "threshold")  # the per-window threshold varies: drawn as a line, not a rule
    (rt,) = page.having("p", "retrain")
    assert "score drift" in " ".join(page.text) and "31.000 s" in " ".join(page.text)


def test_build_report_rejects_bad_scale(scored: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="scale"):
        build_report(read_events(scored["events"]), scale="cubic")


def test_drift_spans_from_a_real_runtime(tmp_path: Path) -> None:
    """A bundle with drift monitors scores a healthy stretch then a gain change: the page's drift
    spans are the runs of drift-active windows in the events, and retraining is recommended."""
    from conftest import drift_bundle, gain_change_run

    fs = 12000.0
    bundle = drift_bundle(tmp_path / "m.efb", fs=fs)
    run = gain_change_run(fs)
    f = _npz(tmp_path / "run.npz", run[:, None].astype(np.float32), fs, ("x",))
    events_path = tmp_path / "ev.jsonl"
    assert main(["score", str(bundle), str(f), "--out", str(events_path)]) == 0
    events = _load(events_path)
    active = [bool(e["drift"] and e["drift"]["active"]) for e in events]
    runs = sum(1 for i, a in enumerate(active) if a and (i == 0 or not active[i - 1]))
    assert runs >= 1 and any(e["retrain"] for e in events)
    out = tmp_path / "r.html"
    write_report(events_path, out)
    page = _parse(out)
    assert len(page.having("tr", "drift-span")) == runs
    assert page.having("rect", "drift") and len(page.having("p", "retrain")) == 1
    # drift onsets in words, not raw JSON
    text = " ".join(page.text)
    assert "monitor" in text and "CUSUM" in text and '{"score"' not in text


def test_largest_feature_and_alarm_rate_basis_are_shown(scored: dict[str, Path], tmp_path: Path) -> None:
    """The top feature of the alarmed windows (a time statistic here, not a band) appears on the
    page, and alarms from seconds of data are counted with their duration, not extrapolated to a
    rate per hour."""
    events = _load(scored["events"])
    total: dict[str, float] = {}
    for e in events:
        if e.get("alarm"):
            for n, v in e["contrib"]["feature"].items():
                total[n] = total.get(n, 0.0) + v
    non_band = {n: v for n, v in total.items() if ".band" not in n}
    assert non_band
    top = max(non_band, key=non_band.get)
    out = tmp_path / "r.html"
    write_report(scored["events"], out)
    page = _parse(out)
    text = " ".join(page.text)
    assert top in text
    # the overall top features (bands included) in words, largest first
    top_any = max(total, key=total.get)
    summary_top = page.having("tr", "top-features")
    assert summary_top and top_any in text
    data = read_events(scored["events"])
    n_spans = len(data.spans)
    duration = sum(s.t[-1] - s.t[0] + (s.window_s or 0.0) for s in data.segments)
    assert duration < 3600
    rate = re.search(r"alarm rate\s*(\d+) alarm spans? in ([\d.]+) s of data \(no per-hour rate", text)
    assert rate, text
    assert int(rate.group(1)) == n_spans and abs(float(rate.group(2)) - duration) < 0.01 * duration + 0.01
    assert "per hour (" not in text


def test_alarm_rate_per_hour_only_from_an_hour_of_data() -> None:
    from edgefault.report.html import _alarm_rate

    assert _alarm_rate(3, 42.0) == "3 alarm spans in 42 s of data (no per-hour rate from less than 1 h)"
    assert _alarm_rate(1, 42.0).startswith("1 alarm span in 42 s")
    assert _alarm_rate(3, 7200.0) == "1.5 per hour (3 alarm spans in 2 h of data)"
    assert "no duration" in _alarm_rate(0, 0.0)


def test_alarm_spans_list_top_features_in_words(scored: dict[str, Path], tmp_path: Path) -> None:
    """Each alarm span row names its largest feature contributors (channel.feature) as text, the
    first being the largest summed contrib.feature entry of the span's alarmed windows."""
    events = _load(scored["events"])
    out = tmp_path / "r.html"
    write_report(scored["events"], out)
    page = _parse(out)
    rows = page.having("tr", "alarm-span")
    spans = _spans(events)
    assert len(rows) == len(spans) >= 2
    for row, (_, _, _, evs) in zip(rows, spans):
        tot: dict[str, float] = {}
        for e in evs:
            for n, v in e["contrib"]["feature"].items():
                tot[n] = tot.get(n, 0.0) + v
        assert row["data-top-feature"] == max(tot, key=tot.get)
    names = [a["data-name"] for t, a in page.tags if t == "span" and "top-feature" in (a.get("class") or "")]
    assert all(n and "." in n for n in names) and len(names) >= len(rows)


def test_classifier_report_shows_classes_over_time(tmp_path: Path) -> None:
    """A classifier bundle's events: the page shows the predicted class timeline and the
    labels-over-time table, whose rows follow a change of class inside one recording."""
    from conftest import classifier_run

    run = classifier_run(tmp_path)
    evs = [json.loads(s) for s in run["events"].read_text().splitlines()]
    assert all(e["label"] in ("normal", "inner_race", "unknown") for e in evs)
    html_text = run["page"].read_text()
    assert "<h2>Classes over time</h2>" in html_text and 'class="class-strip"' in html_text
    table = html_text.split('<table class="labels-over-time">')[1].split("</table>")[0]
    body = [r for r in table.split("<tr>")[2:] if r.strip()]
    assert len(body) == 10
    head = table.split("<tr>")[1]
    cols = re.findall(r"<th>([^<]*)</th>", head)[1:]
    first = [int(v) for v in re.findall(r'<td class="num">(\d+)', body[0])]
    last = [int(v) for v in re.findall(r'<td class="num">(\d+)', body[-1])]
    assert first[cols.index("normal")] > first[cols.index("inner_race")]
    assert last[cols.index("inner_race")] > last[cols.index("normal")]
    assert "predicted classes" in html_text
