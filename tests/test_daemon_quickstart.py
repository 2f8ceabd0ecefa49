"""docs/daemon.md's local quick start, run as written: the fenced blocks after the
``<!-- quickstart-local: NAME -->`` markers are taken from the doc verbatim (only the two port
numbers are swapped for free ports, and ``edgefault`` / ``python3`` become this interpreter), then
run in an empty folder: make the bundle, write the config, start the daemon, run the sender,
see events with an alarm, stop the daemon with SIGTERM (exit 0, state saved in the documented
default folder), and build the report."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from test_daemon_live import PKG_PARENT, free_port, wait_for

DOC = Path(__file__).resolve().parents[1] / "docs" / "daemon.md"
BLOCK = re.compile(r"<!-- quickstart-local: (\S+) -->\s*\n```[a-z]*\n(.*?)\n```", re.S)


def quickstart_blocks() -> dict[str, str]:
    return {name: body for name, body in BLOCK.findall(DOC.read_text())}


def test_the_doc_has_the_local_quick_start_first() -> None:
    text = DOC.read_text()
    blocks = quickstart_blocks()
    assert list(blocks) == ["bundle", "edgefault.toml", "serve", "send", "after"]
    assert text.index("## Local quick start") < text.index("## Field quick start") < text.index("## Configuration")
    cfg = blocks["edgefault.toml"]
    assert "127.0.0.1" in cfg and "/etc" not in cfg and "/var" not in cfg and "tls" not in cfg
    assert "state_dir" not in cfg  # the default state folder, documented beside it
    assert "`edgefault-state` next to the" in text


def _localise(cmd: str, ports: dict[str, str]) -> str:
    for old, new in ports.items():
        cmd = cmd.replace(old, new)
    exe = shlex.quote(sys.executable)
    cmd = re.sub(r"(?m)^edgefault ", f"{exe} -m edgefault ", cmd)
    return re.sub(r"(?m)^python3 ", f"{exe} ", cmd)


def test_local_quick_start_runs_as_documented(tmp_path: Path) -> None:
    blocks = quickstart_blocks()
    ports = {"5555": str(free_port(socket.SOCK_DGRAM)), "9108": str(free_port())}
    assert "5555" in blocks["edgefault.toml"] and "5555" in blocks["send"] and "9108" in blocks["edgefault.toml"]
    env = {**os.environ, "PYTHONPATH": PKG_PARENT}
    env.pop("STATE_DIRECTORY", None)

    def sh(name: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["bash", "-euc", _localise(blocks[name], ports)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=timeout)
        assert p.returncode == 0, f"{name}: {p.stdout}\n{p.stderr}"
        return p

    sh("bundle", timeout=600)  # the demo trains for seconds here, longer on small ARM boards
    assert (tmp_path / "demo" / "demo.efb").is_file()
    cfg = _localise(blocks["edgefault.toml"], ports)
    (tmp_path / "edgefault.toml").write_text(cfg)
    err = (tmp_path / "serve.err").open("w")
    serve = _localise(blocks["serve"], ports)
    d = subprocess.Popen(shlex.split(serve), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: "serving 1 sensor" in (tmp_path / "serve.err").read_text(), 60, "the daemon to start")
        sh("send", timeout=120)
        events = tmp_path / "events.jsonl"

        def lines() -> list[dict]:  # type: ignore[type-arg]
            return [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []

        wait_for(lambda: len(lines()) >= 200, 60, "the events of 10 s of signal (233 windows)")
        d.send_signal(signal.SIGTERM)
        assert d.wait(30) == 0
    finally:
        if d.poll() is None:
            d.kill()
            d.wait(10)
        err.close()
    log = (tmp_path / "serve.err").read_text()
    assert "Traceback" not in log and "state saved in" in log
    ev = lines()
    assert [e["seq"] for e in ev] == list(range(1, len(ev) + 1))
    assert {e["sensor"] for e in ev} == {"pump-1"}
    before = [e for e in ev if e["t"] < 5.0]
    after = [e for e in ev if e["t"] >= 5.5]
    assert before and not any(e["alarm"] for e in before)  # healthy first 5 s: no alarm
    assert any(e["alarm"] for e in after)  # the fault raises one
    st = tmp_path / "edgefault-state"  # the documented default state folder, next to the config
    assert {"lock", "pump-1.seq", "pump-1.state.npz"} <= {p.name for p in st.iterdir()}
    p = sh("after")
    assert json.loads(p.stdout.splitlines()[0])["seq"] == len(ev)
    assert (tmp_path / "report.html").stat().st_size > 1000
