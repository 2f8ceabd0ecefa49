"""Builds the C++ core on its own (no Python) and runs its unit tests under ctest, plainly and
with AddressSanitizer + UBSan."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

CPP = ROOT / "cpp"


def _cmake() -> str:
    exe = shutil.which("cmake")
    if exe is None:
        pytest.fail("cmake is needed to build the C++ unit tests: pip install cmake ninja")
    return exe


@pytest.mark.parametrize("sanitize", [False, True], ids=["release", "asan-ubsan"])
def test_cpp_unit_tests(tmp_path_factory: pytest.TempPathFactory, sanitize: bool) -> None:
    if not CPP.is_dir():
        pytest.skip("C++ sources not present (installed package without the source tree)")
    build = tmp_path_factory.mktemp("cpp-" + ("asan" if sanitize else "rel"))
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    cfg = [_cmake(), "-S", str(CPP), "-B", str(build), *gen, "-DEDGEFAULT_BUILD_TESTS=ON",
           f"-DEDGEFAULT_SANITIZE={'ON' if sanitize else 'OFF'}",
           f"-DCMAKE_BUILD_TYPE={'RelWithDebInfo' if sanitize else 'Release'}"]
    subprocess.run(cfg, check=True, capture_output=True, text=True)
    r = subprocess.run([_cmake(), "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", UBSAN_OPTIONS="print_stacktrace=1")
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "tests passed" in r.stdout
