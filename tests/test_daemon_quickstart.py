"""docs/daemon.md's local quick start, run as written (tools/daemon_quickstart.py: the fenced
blocks after the ``<!-- quickstart-local: NAME -->`` markers, verbatim but for two free ports and
this interpreter), against the package under test. .ci/run runs the same script in the README
demo command's fresh venv."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from test_daemon_live import PKG_PARENT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from daemon_quickstart import DOC, quickstart_blocks, run_quickstart  # noqa: E402


def test_the_doc_has_the_local_quick_start_first() -> None:
    text = DOC.read_text()
    blocks = quickstart_blocks()
    assert list(blocks) == ["bundle", "edgefault.toml", "serve", "send", "after"]
    assert text.index("## Local quick start") < text.index("## Field quick start") < text.index("## Configuration")
    cfg = blocks["edgefault.toml"]
    assert "127.0.0.1" in cfg and "/etc" not in cfg and "/var" not in cfg and "tls" not in cfg
    assert "state_dir" not in cfg  # the default state folder, documented beside it
    assert "`edgefault-state` next to the" in text


def test_local_quick_start_runs_as_documented(tmp_path: Path) -> None:
    res = run_quickstart(tmp_path, env={**os.environ, "PYTHONPATH": PKG_PARENT})
    ev = res["events"]
    assert len(ev) >= 200 and any(e["alarm"] for e in ev) and not any(e["alarm"] for e in ev if e["t"] < 5.0)
