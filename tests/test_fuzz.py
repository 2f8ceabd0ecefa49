"""A short run of bench/fuzz.py (issue #12 item 10): every target for a few seconds (atheris when it
is installed, else the plain mutation engine), seeds trained in-process. No new finding (an
exception that is not an EdgefaultError, a broken invariant, a refusal that does not name its
input, a slow input) and no crash; findings already reported elsewhere (``KNOWN`` in the script)
are listed in the output and allowed.

Each target gets a fixed number of inputs (about 3 s each here; a fixed seed and PYTHONHASHSEED, so a
given tree fuzzes the same inputs), capped at 20 s. EDGEFAULT_FUZZ_SCALE multiplies the inputs. The
scaled run (>= 1e6 inputs, ASan/UBSan core) and its figures are in bench/README.md."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("sklearn", reason="the fuzz seeds train bundles (scikit-learn, the [train] extra)")
SCALE = max(1, int(os.environ.get("EDGEFAULT_FUZZ_SCALE", "1")))
RUNS = {"mat": 6000, "wav": 8000, "csv": 2500, "npy": 1200, "npz": 4000, "parquet": 2500, "bundle": 1000,
        "framing": 4000, "push": 3000}
FUZZ = ROOT / "bench" / "fuzz.py"


def _targets() -> list[str]:
    """Every target, but parquet where pyarrow is not installed (armhf: no wheel, no seeds)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return [t for t in RUNS if t != "parquet"]
    return list(RUNS)


def test_fuzz_every_target_briefly(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    targets = _targets()
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
    env["PYTHONHASHSEED"] = "0"
    runs = ",".join(f"{t}={RUNS[t] * SCALE}" for t in targets)
    r = subprocess.run([sys.executable, str(FUZZ), "--targets", ",".join(targets), "--runs", runs, "--seconds", str(20 * SCALE),
                        "--workdir", str(tmp_path / "work"), "--json", str(out), "--max-restarts", "1"],
                       capture_output=True, text=True, env=env, timeout=1800)
    report = r.stdout[-12000:] + r.stderr[-4000:]
    assert out.exists(), report
    res = {x["target"]: x for x in json.loads(out.read_text())["results"]}
    assert sorted(res) == sorted(targets)
    for t, x in res.items():
        assert x["inputs"] > 0 and x["messages"], (t, report)  # it ran, and the seeds get refused somewhere
        assert not x["crashes"], (t, x["crashes"], report)
        new = [f for f in x["findings"].values() if not f.get("known")]
        assert not new, (t, [(f["kind"], f["type"], f["line"], f["message"][:200], f["input"]) for f in new])
    assert r.returncode == 0, report
