"""`edgefault report` pages in a real browser (headless chromium): a page from a real run (a
bundle with drift monitors trained here scores a recording in which a bearing fault appears) is
loaded, and the rendered DOM (after layout and scripts) must show the top contributing feature,
the basis of the alarm rate and the drift onset table, with no script error and no failed load.

The page itself carries no script (it must work with scripts off). The test loads a copy with two
harness scripts added: one first in <head> that records every error, one last in <body> that
reads the rendered text (``innerText``: only what is laid out and visible) and writes it as JSON
into a marker element, which ``--dump-dom`` returns. Skipped when chromium is not installed."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import drift_bundle
from edgefault.cli import main
from edgefault.io.synth import bearing_signal


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

HEAD = """<script>window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e.type)); }, true);
</script>"""
TAIL = """<script>(function () {
  function vis(el) { var r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; }
  function rows(sel) { return Array.prototype.map.call(document.querySelectorAll(sel), function (r) {
    return Array.prototype.map.call(r.cells, function (c) { return c.innerText.trim(); }); }); }
  var out = {errors: window.__errors,
    top_features: Array.prototype.filter.call(document.querySelectorAll('.top-feature'), vis)
      .map(function (e) { return e.innerText; }),
    summary: rows('table.summary tr'),
    drift_header: rows('table.drift tr:first-child')[0] || [],
    drift_rows: rows('table.drift tr.drift-span'),
    drift_visible: Array.prototype.every.call(document.querySelectorAll('table.drift tr.drift-span'), vis),
    svg_plots: Array.prototype.filter.call(document.querySelectorAll('svg.plot'), vis).length,
    class_strips: Array.prototype.filter.call(document.querySelectorAll('svg.class-strip'), vis).length,
    strip_labels: Array.prototype.map.call(document.querySelectorAll('svg.class-strip rect'), function (r) {
      return [r.getAttribute('data-label'), r.getBoundingClientRect().width]; }),
    labels_table: rows('table.labels-over-time tr'),
    body_text: document.body.innerText};
  var pre = document.createElement('pre'); pre.id = 'harness-result';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();</script>"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """15 s healthy bearing, then 15 s with an outer-race fault, scored by a drift-monitored bundle."""
    d = tmp_path_factory.mktemp("browser")
    bundle = drift_bundle(d / "m.efb")
    fs = 12000.0
    run = np.concatenate([bearing_signal(15.0, fs, seed=21),
                          bearing_signal(15.0, fs, fault="outer_race", severity=0.6, seed=22)])
    rec = d / "run.npz"
    np.savez(rec, data=run[:, None].astype(np.float32), fs=np.float64(fs), channels=np.array(["x"]))
    events = d / "events.jsonl"
    assert main(["score", str(bundle), str(rec), "--out", str(events)]) == 0
    page = d / "report.html"
    assert main(["report", str(events), "--out", str(page), "--bundle", str(bundle)]) == 0
    return {"dir": d, "events": events, "page": page}


def _render(page: Path, tmp: Path) -> tuple[dict, str]:  # type: ignore[type-arg]
    src = page.read_text()
    assert "<script" not in src  # the report itself needs no script
    probe = tmp / "probe.html"
    probe.write_text(src.replace("<head>", "<head>" + HEAD, 1).replace("</body>", TAIL + "</body>", 1))
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",  # type: ignore[list-item]
                        "--disable-extensions", f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
                        "--v=0", "--virtual-time-budget=3000", "--window-size=1200,2000", "--dump-dom",
                        probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    m = re.search(r'<pre id="harness-result">(.*?)</pre>', p.stdout, re.S)
    assert m, f"the harness script did not run: {p.stdout[-1500:]}\n{p.stderr[-1500:]}"
    return json.loads(html.unescape(m.group(1))), p.stderr


def test_report_renders_in_chromium(real_run: dict[str, Path], tmp_path: Path) -> None:
    events = [json.loads(x) for x in real_run["events"].read_text().splitlines()]
    # independently: the largest summed contrib.feature entry over the alarmed windows
    tot: dict[str, float] = {}
    for e in events:
        if e["alarm"]:
            for n, v in e["contrib"]["feature"].items():
                tot[n] = tot.get(n, 0.0) + v
    assert tot, "the fault raised no alarm"
    top = max(tot, key=tot.get)
    n_spans = sum(1 for i, e in enumerate(events) if e["alarm"] and (i == 0 or not events[i - 1]["alarm"]))
    active = [bool(e["drift"] and e["drift"]["active"]) for e in events]
    onsets = [e["t"] for i, e in enumerate(events) if active[i] and (i == 0 or not active[i - 1])]
    assert onsets, "the fault raised no drift"

    r, log = _render(real_run["page"], tmp_path)

    assert r["errors"] == []
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not [ln for ln in console if re.search(r"error|uncaught|failed to load|refused", ln, re.I)], console
    assert r["svg_plots"] == 1
    # the top contributor is rendered, visible, first in the summary's top features
    assert top in r["top_features"] and r["top_features"][0] == top
    summary = {row[0]: row[1] for row in r["summary"] if len(row) == 2}
    assert summary["top features in alarms"].startswith(top)
    # the alarm rate with its basis, not extrapolated: 30 s of data
    rate = summary["alarm rate"]
    m = re.fullmatch(r"(\d+) alarm spans? in ([\d.]+) s of data \(no per-hour rate from less than 1 h\)", rate)
    assert m, rate
    assert int(m.group(1)) == n_spans and 29.0 < float(m.group(2)) < 31.0
    assert "per hour (" not in r["body_text"]
    # the drift onsets as a table: one visible row per onset, in words, no raw JSON
    assert r["drift_header"][:4] == ["#", "recording", "drift from", "to"]
    assert "monitors at onset" in r["drift_header"] and "statistics at onset" in r["drift_header"]
    assert len(r["drift_rows"]) == len(onsets) and r["drift_visible"]
    first = r["drift_rows"][0]
    assert first[2] == f"{onsets[0]:.3f} s"
    assert "monitor" in first[6] and ("CUSUM" in first[7] or "MEWMA" in first[7])
    assert "{" not in " ".join(" ".join(row) for row in r["drift_rows"])


def test_classifier_report_renders_classes_over_time_in_chromium(tmp_path: Path) -> None:
    from conftest import classifier_run

    run = classifier_run(tmp_path)
    r, _ = _render(run["page"], tmp_path)
    assert r["errors"] == [] and r["class_strips"] == 1
    # the strip: healthy first, inner race last, covering the page width it was given
    widths: dict[str, float] = {}
    for lab, w in r["strip_labels"]:
        widths[lab] = widths.get(lab, 0.0) + w
    assert r["strip_labels"][0][0] == "normal" and r["strip_labels"][-1][0] == "inner_race"
    assert sum(widths.values()) > 800 and widths["normal"] > 300 and widths["inner_race"] > 300
    head, *body = r["labels_table"]
    assert head[0] == "time" and "normal" in head and "inner_race" in head and len(body) == 10
    summary = {row[0]: row[1] for row in r["summary"] if len(row) == 2}
    assert summary["predicted classes"].startswith("normal ")
