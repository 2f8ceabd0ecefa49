"""Structure of the package: one version source, an import that explains a missing core, and a
device side that loads nothing of training, evaluation or reporting."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edgefault

ROOT = Path(__file__).resolve().parents[1]


# -- one version source -------------------------------------------------------------------------------
def test_version_has_one_source() -> None:
    """__version__ in edgefault/__init__.py is the version: pip (scikit-build-core's regex provider)
    and tools/devbuild.sh read it from there, the compiled core carries it, and no other tracked
    file spells it out."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    from edgefault import _core

    version = edgefault.__version__
    assert _core.__version__ == version, "the core was built with another version: rebuild it"
    pyproject = ROOT / "pyproject.toml"
    init = ROOT / "edgefault" / "__init__.py"
    if not pyproject.is_file() or not init.is_file():
        pytest.skip("not run from a source checkout")
    cfg = tomllib.loads(pyproject.read_text())
    assert "version" in cfg["project"]["dynamic"] and "version" not in cfg["project"]
    meta = cfg["tool"]["scikit-build"]["metadata"]["version"]
    assert meta == {"provider": "scikit_build_core.metadata.regex", "input": "edgefault/__init__.py"}
    # scikit-build-core's default regex for that provider
    m = re.search(r"""(?i)^(__version__|VERSION)(?: ?\: ?str)? *= *(['"])v?(?P<value>.+?)\2""", init.read_text(),
                  re.MULTILINE)
    assert m is not None and m.group("value") == version

    script = ROOT / "tools" / "devbuild.sh"
    if script.is_file():
        text = script.read_text()
        line = re.search(r"^version=\$\(.*\)$", text, re.MULTILINE)
        assert line is not None, "tools/devbuild.sh no longer reads the version into $version"
        out = subprocess.run(["bash", "-c", line.group(0) + '\nprintf %s "$version"'], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        assert out == version

    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the scan for other copies of the version needs `git ls-files`")
    derived = {
        "edgefault/__init__.py",  # the source
        "edgefault/_core.pyi",  # generated from the built core (tools/make_stubs.sh; test_stubs checks it)
        # left for the docs' owner: prose example of the sdist's name (`dist/edgefault-<version>.tar.gz`)
        "ci/README.md",
    }
    pat = re.compile(r"(?<![\d.])" + re.escape(version) + r"(?!\d|\.\d)")
    copies = []
    for name in files.decode().split("\0"):
        p = ROOT / name
        if not name or name in derived or not p.is_file() or p.stat().st_size > 2_000_000:
            continue
        try:
            text = p.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        copies += [f"{name}:{i}: {ln.strip()}" for i, ln in enumerate(text.splitlines(), 1) if pat.search(ln)]
    assert not copies, "version written out again (derive it from edgefault/__init__.py):\n" + "\n".join(copies)
