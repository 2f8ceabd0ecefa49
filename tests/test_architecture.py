"""Structure of the package: one version source, an import that explains a missing core, and a
device side that loads nothing of training, evaluation or reporting."""
from __future__ import annotations

import ast
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
    assert sorted(edgefault.__all__) == sorted(["__version__", "Runtime", "Event", "EventBatch", "Bundle", "load_bundle",
                                                "FeatureSpec", "EdgefaultError", "InputError", "BundleError",
                                                "MissingDependencyError"])


# -- the device side ----------------------------------------------------------------------------------
# onnxruntime too: only VAE bundles load it (lazily, the `vae` extra); the Gaussian path never does.
FORBIDDEN_PACKAGES = ("edgefault.train", "edgefault.evaluation", "edgefault.report", "edgefault.cli",
                      "torch", "sklearn", "scipy", "onnx", "onnxruntime")


def _forbidden(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in FORBIDDEN_PACKAGES)


# Run in a fresh interpreter: records, for each forbidden module, the import chain that first loaded it.
_DEVICE_SCRIPT = r"""
import json, sys, traceback

FORBIDDEN = %(forbidden)r
first = {}

class Spy:
    def find_spec(self, name, path=None, target=None):
        top = [p for p in FORBIDDEN if name == p or name.startswith(p + ".")]
        if top and top[0] not in first:
            first[top[0]] = [f"{f.filename}:{f.lineno}: {f.line}" for f in traceback.extract_stack()[:-1]
                             if "importlib._bootstrap" not in f.filename]
        return None

sys.meta_path.insert(0, Spy())

import numpy as np
import edgefault

rt = edgefault.Runtime(sys.argv[1])
x = np.random.default_rng(0).standard_normal((20 * rt.spec.window, rt.spec.n_channels)).astype(np.float32)
x[10 * rt.spec.window:12 * rt.spec.window] *= 50
events = rt.push(x[:5000]) + rt.push(x[5000:])
assert events and any(e.anomaly for e in events), "no events / no anomaly"
lines = [json.dumps(e.to_dict()) for e in events]
rt.save_state(sys.argv[2])
edgefault.Runtime(sys.argv[1]).load_state(sys.argv[2])
loaded = sorted(m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in FORBIDDEN))
print(json.dumps({"events": len(events), "loaded": loaded, "first": first}))
"""


def test_device_side_loads_no_training_evaluation_or_report(tmp_path: Path, small_bundle: Path) -> None:
    """A fresh interpreter that imports edgefault, loads a Gaussian bundle (trained in this process
    by conftest's small_bundle: train_gaussian / pack_gaussian) into Runtime, pushes samples and
    saves / loads its state has imported nothing of edgefault.train / evaluation / report / cli, and
    no torch, scikit-learn, scipy, onnx or onnxruntime (an extra: `pip install edgefault[vae]`)."""
    import json

    code = _DEVICE_SCRIPT % {"forbidden": FORBIDDEN_PACKAGES}
    r = subprocess.run([sys.executable, "-c", code, str(small_bundle), str(tmp_path / "state.npz")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["events"] > 0
    chains = "\n\n".join(f"{mod} first imported by:\n  " + "\n  ".join(chain) for mod, chain in out["first"].items())
    assert out["loaded"] == [], f"device side imported {out['loaded']}:\n{chains}"


def _top_level_imports(tree: ast.Module, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import run when the module is imported: module level, including
    inside if / try / with / class bodies, not inside functions and not under `if TYPE_CHECKING:`."""
    found: list[tuple[int, str]] = []

    def visit(stmts: list[ast.stmt]) -> None:
        for node in stmts:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    mod = base + ("." + node.module if node.module else "")
                else:
                    mod = node.module or ""
                found.append((node.lineno, mod))
                found.extend((node.lineno, f"{mod}.{a.name}") for a in node.names)  # from pkg import submodule
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            elif isinstance(node, ast.If):
                test = node.test
                if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
                    visit(node.orelse)
                else:
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try) or (sys.version_info >= (3, 11) and isinstance(node, ast.TryStar)):
                visit(node.body)
                for h in node.handlers:  # type: ignore[attr-defined]
                    visit(h.body)
                visit(node.orelse)  # type: ignore[attr-defined]
                visit(node.finalbody)  # type: ignore[attr-defined]
            elif isinstance(node, (ast.With, ast.AsyncWith, ast.ClassDef, ast.For, ast.AsyncFor, ast.While)):
                visit(node.body)
                visit(getattr(node, "orelse", []))

    visit(tree.body)
    return found


def test_device_modules_import_nothing_of_training_at_top_level() -> None:
    src = ROOT / "edgefault" / "device"
    if not src.is_dir():
        pytest.skip("not run from a source checkout")
    files = sorted(src.rglob("*.py"))
    assert files
    bad = []
    for f in files:
        rel = f.relative_to(ROOT).with_suffix("")
        package = ".".join(rel.parts[:-1])  # runtime.py and __init__.py alike: edgefault.device(...)
        for line, mod in _top_level_imports(ast.parse(f.read_text(), str(f)), package):
            if _forbidden(mod):
                bad.append(f"{f.relative_to(ROOT)}:{line}: {mod}")
    assert not bad, "device modules import training / evaluation / report code at module level:\n" + "\n".join(bad)


def test_top_level_import_scan_sees_what_it_must() -> None:
    """The scanner itself: module-level and conditional imports count, function bodies and
    TYPE_CHECKING blocks do not, relative imports are resolved."""
    code = '''
import torch.nn
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import sklearn
try:
    import scipy.signal
except ImportError:
    from edgefault import report
from .. import train
from ..evaluation.metrics import auc
class A:
    import onnx
def f():
    import edgefault.cli
'''
    got = {m for _, m in _top_level_imports(ast.parse(code), "edgefault.device")}
    assert {m for m in got if _forbidden(m)} == {"torch.nn", "scipy.signal", "edgefault.report", "edgefault.train",
                                                 "edgefault.evaluation.metrics", "edgefault.evaluation.metrics.auc",
                                                 "onnx"}
