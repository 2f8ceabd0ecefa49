"""edgefault/_core.pyi matches the compiled module (regenerate with tools/make_stubs.sh)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_core_stubs_match_module(tmp_path: Path) -> None:
    pytest.importorskip("mypy.stubtest")
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "edgefault._core", "--allowlist",
                        str(HERE / "stubtest_allowlist.txt"), "--mypy-config-file", str(tmp_path / "none.ini")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
