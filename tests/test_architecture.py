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


# -- import without a built core ------------------------------------------------------------------------
def _copy_package(dest: Path, *, with_core: bool) -> Path:
    """A copy of the imported edgefault package under dest (without edgefault/export, a symlink in
    the working tree; with or without the compiled core)."""
    src = Path(edgefault.__file__).resolve().parent
    ignore = ["__pycache__", "export", "*.tmp"] + ([] if with_core else ["_core*.so", "_core*.pyd", "_core*.dylib"])
    shutil.copytree(src, dest / "edgefault", ignore=shutil.ignore_patterns(*ignore))
    return dest / "edgefault"


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -E -s: no PYTHONPATH, no user site; for -c the current directory comes first on sys.path
    return subprocess.run([sys.executable, "-E", "-s", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_import_without_core_explains_how_to_build(tmp_path: Path) -> None:
    pkg = _copy_package(tmp_path, with_core=False)
    assert [p.name for p in pkg.glob("_core*")] == ["_core.pyi"]  # only the stub is left
    r = _python("import edgefault", tmp_path)
    assert r.returncode == 1
    err = r.stderr
    last = err.strip().splitlines()[-1]
    assert last.startswith("ImportError: the C++ core edgefault._core is not built"), err
    for needed in ("pip install .", "tools/devbuild.sh", "repository root", "source tree", str(pkg.resolve())):
        assert needed in last, (needed, err)
    assert "circular import" not in err and "partially initialized" not in err, err
    r = _python("from edgefault.device.runtime import Runtime", tmp_path)  # a submodule first: the same message
    assert "ImportError: the C++ core edgefault._core is not built" in r.stderr, r.stderr


def test_import_with_unloadable_core_says_so(tmp_path: Path) -> None:
    pkg = _copy_package(tmp_path, with_core=False)
    from edgefault import _core

    (pkg / Path(_core.__file__).name).write_bytes(b"not a shared object")  # the built core's file name
    r = _python("import edgefault", tmp_path)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and last.startswith("ImportError: the C++ core edgefault._core in "), r.stderr
    assert "cannot be loaded" in last and "pip install ." in last and "circular" not in r.stderr


def test_import_with_core_keeps_the_public_names(tmp_path: Path) -> None:
    _copy_package(tmp_path, with_core=True)
    code = ("import edgefault, sys; from edgefault import *; "
            "print(edgefault.__file__); print(sorted(edgefault.__all__)); print(edgefault.Runtime.__module__); "
            "print(all(hasattr(edgefault, n) for n in edgefault.__all__), '_import_core' in dir(edgefault))")
    r = _python(code, tmp_path)
    assert r.returncode == 0, r.stderr
    file, names, mod, ok = r.stdout.splitlines()
    assert Path(file).resolve() == (tmp_path / "edgefault" / "__init__.py").resolve()
    assert names == str(sorted(edgefault.__all__)) and mod == "edgefault.device.runtime" and ok == "True False"
    assert sorted(edgefault.__all__) == sorted(["__version__", "Runtime", "Event", "Bundle", "load_bundle",
                                                "FeatureSpec", "EdgefaultError", "InputError", "BundleError",
                                                "MissingDependencyError"])
