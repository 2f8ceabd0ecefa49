"""Issue #18 item 8: the install advice in README.md, pyproject.toml and the error that asks for
torch agree (one pinned CPU torch), and the README says what building needs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def _sources() -> tuple[str, dict, str]:  # type: ignore[type-arg]
    readme, pyproject = ROOT / "README.md", ROOT / "pyproject.toml"
    if not readme.exists() or not pyproject.exists():
        pytest.skip("README.md / pyproject.toml are not beside the tests (an installed wheel's test run)")
    return readme.read_text(), tomllib.loads(pyproject.read_text()), pyproject.read_text()


def test_readme_and_pyproject_agree_on_torch() -> None:
    readme, meta, pyproject_text = _sources()
    torch = [r for r in meta["project"]["optional-dependencies"]["train"] if re.match(r"torch\b", r)]
    assert len(torch) == 1
    m = re.fullmatch(r"torch==(\d+\.\d+\.\d+)", torch[0].replace(" ", ""))
    assert m, f"the [train] extra must pin torch exactly (a loose range pulls a CUDA build), got {torch[0]!r}"
    pin = f"torch=={m.group(1)}"
    # README: the command it gives installs that same pin before the extra
    commands = re.findall(r"pip install (torch[^ `&]*)", readme)
    assert commands and set(commands) == {pin}, commands
    assert f'pip install {pin} && pip install ".[train]"' in readme
    # pyproject's own comment gives the same command and no other way to get torch
    assert f'pip install {pin} && pip install ".[train]"' in pyproject_text
    assert "download.pytorch.org" not in pyproject_text and "download.pytorch.org" not in readme
    assert set(re.findall(r"torch==[\d.]+", pyproject_text)) == {pin}
    # every command in README.md and docs/ that installs the [train] extra installs the pinned torch first
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            for cmd in re.findall(r"pip install [^`#\n]*\[train\]", line):
                assert cmd.startswith(f"pip install {pin} && "), f"{doc.name}: {line.strip()!r}"
    # and the error a missing torch raises (ModelKind.require_training) says the same
    import edgefault.kinds.base as base

    assert set(re.findall(r"torch==[\d.]+", Path(base.__file__).read_text())) == {pin}


def test_readme_says_what_building_needs() -> None:
    readme, meta, pyproject_text = _sources()
    assert "C++17 compiler" in readme and re.search(r"CMake >= (\d+\.\d+)", readme)
    cmake = re.search(r"CMake >= (\d+\.\d+)", readme).group(1)  # type: ignore[union-attr]
    assert f"cmake_minimum_required(VERSION {cmake}" in (ROOT / "CMakeLists.txt").read_text()
    assert "pip install -v ." in readme  # how to see the build's progress
    msg = meta["tool"]["scikit-build"]["messages"]["after-failure"]
    assert "C++17 compiler" in msg and f"CMake >= {cmake}" in msg
    # the two commands stay as they are
    assert "pip install . && edgefault demo" in readme and 'pip install ".[test]" && pytest' in readme


def test_ci_runs_the_readme_commands_as_written() -> None:
    """.ci/run takes both commands from the README's "Two commands" section (tools/readme_command.py),
    so CI runs exactly what a new user is told to run."""
    import subprocess
    import sys

    readme, _, _ = _sources()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'eval "$(python3 tools/readme_command.py test)"' in ci
    assert 'eval "$(python3 tools/readme_command.py demo)"' in ci
    demo_venv = ci[ci.index('eval "$(python3 tools/readme_command.py demo)"'):]
    assert "python tools/daemon_quickstart.py" in demo_venv.split("\n)")[0]  # in the demo's fresh venv
    for what, expected in (("demo", "pip install . && edgefault demo"), ("test", 'pip install ".[test]" && pytest')):
        out = subprocess.run([sys.executable, str(ROOT / "tools" / "readme_command.py"), what], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == expected and f"```bash\n{out}\n```" in readme
