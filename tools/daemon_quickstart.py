"""Run docs/daemon.md's local quick start as written, in an empty folder, with this interpreter.

The fenced blocks after the ``<!-- quickstart-local: NAME -->`` markers are taken verbatim (only
the two port numbers are swapped for free ones, and ``edgefault`` / ``python3`` at the start of a
line become this interpreter): make the bundle, write the config, start the daemon, run the
sender, wait for the events, stop the daemon with SIGTERM, then the "after" block (the report).
Checks what the doc promises (events with seq 1.., no alarm before the fault, an alarm after it,
exit 0 and state in the documented default folder, a report). tests/test_daemon_quickstart.py
runs it against the package under test; .ci/run runs it in the fresh venv of the README's demo
command, where only `pip install .` is installed:

    python tools/daemon_quickstart.py [--dir FOLDER]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

DOC = Path(__file__).resolve().parents[1] / "docs" / "daemon.md"
BLOCK = re.compile(r"<!-- quickstart-local: (\S+) -->\s*\n```[a-z]*\n(.*?)\n```", re.S)


class QuickstartFailed(AssertionError):
    pass


def quickstart_blocks(doc: Path = DOC) -> dict[str, str]:
    return {name: body for name, body in BLOCK.findall(doc.read_text())}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(cond: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise QuickstartFailed(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def localise(cmd: str, ports: dict[str, str]) -> str:
    for old, new in ports.items():
        cmd = cmd.replace(old, new)
    exe = shlex.quote(sys.executable)
    cmd = re.sub(r"(?m)^edgefault ", f"{exe} -m edgefault ", cmd)
    return re.sub(r"(?m)^python3 ", f"{exe} ", cmd)


def run_quickstart(folder: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the quick start in ``folder`` (empty); returns {"events": [...], "report": path}.
    Raises QuickstartFailed naming the step that did not do what the doc says."""
    blocks = quickstart_blocks()
    if list(blocks) != ["bundle", "edgefault.toml", "serve", "send", "after"]:
        raise QuickstartFailed(f"{DOC}: quick-start blocks {list(blocks)}, expected bundle, edgefault.toml, "
                               f"serve, send, after")
    ports = {"5555": str(free_port(socket.SOCK_DGRAM)), "9108": str(free_port())}
    if not ("5555" in blocks["edgefault.toml"] and "5555" in blocks["send"] and "9108" in blocks["edgefault.toml"]):
        raise QuickstartFailed(f"{DOC}: the config and sender no longer use ports 5555 / 9108")
    env = dict(os.environ if env is None else env)
    env.pop("STATE_DIRECTORY", None)

    def sh(name: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["bash", "-euc", localise(blocks[name], ports)], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise QuickstartFailed(f"step {name!r} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    sh("bundle", timeout=600)  # the demo trains for seconds here, longer on small ARM boards
    if not (folder / "demo" / "demo.efb").is_file():
        raise QuickstartFailed("step 'bundle' wrote no demo/demo.efb")
    (folder / "edgefault.toml").write_text(localise(blocks["edgefault.toml"], ports))
    err_path = folder / "serve.err"
    events = folder / "events.jsonl"

    def lines() -> list[dict[str, Any]]:
        return [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []

    with err_path.open("w") as err:
        d = subprocess.Popen(shlex.split(localise(blocks["serve"], ports)), cwd=folder, env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
        try:
            _wait_for(lambda: d.poll() is not None or "serving 1 sensor" in err_path.read_text(), 60,
                      "the daemon to start")
            if d.poll() is not None:
                raise QuickstartFailed(f"the daemon exited {d.returncode}:\n{err_path.read_text()}")
            sh("send", timeout=120)
            _wait_for(lambda: len(lines()) >= 200, 60, "the events of 10 s of signal (233 windows)")
            d.send_signal(signal.SIGTERM)
            if d.wait(30) != 0:
                raise QuickstartFailed(f"the daemon exited {d.returncode} on SIGTERM:\n{err_path.read_text()}")
        finally:
            if d.poll() is None:
                d.kill()
                d.wait(10)
    log = err_path.read_text()
    if "Traceback" in log or "state saved in" not in log:
        raise QuickstartFailed(f"the daemon's log has a traceback or no 'state saved in':\n{log}")
    ev = lines()
    problems = []
    if [e["seq"] for e in ev] != list(range(1, len(ev) + 1)):
        problems.append("seq is not 1, 2, ...")
    if {e["sensor"] for e in ev} != {"pump-1"}:
        problems.append(f"sensors {sorted({e['sensor'] for e in ev})}, expected pump-1")
    before = [e for e in ev if e["t"] < 5.0]
    after = [e for e in ev if e["t"] >= 5.5]
    if not before or any(e["alarm"] for e in before):
        problems.append("an alarm (or no event) in the healthy first 5 s")
    if not any(e["alarm"] for e in after):
        problems.append("no alarm after the fault starts at 5 s")
    st = folder / "edgefault-state"  # the documented default state folder, next to the config
    have = {p.name for p in st.iterdir()} if st.is_dir() else set()
    if not {"lock", "pump-1.seq", "pump-1.state.npz"} <= have:
        problems.append(f"{st} holds {sorted(have)}, expected lock, pump-1.seq, pump-1.state.npz")
    if problems:
        raise QuickstartFailed("; ".join(problems))
    p = sh("after")
    if json.loads(p.stdout.splitlines()[0])["seq"] != len(ev):
        raise QuickstartFailed("step 'after': `tail -n 1 events.jsonl` is not the last event")
    report = folder / "report.html"
    if not report.is_file() or report.stat().st_size <= 1000:
        raise QuickstartFailed("step 'after' wrote no report.html")
    return {"events": ev, "report": report}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, help="an empty folder to run in (default: a new temporary one)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgefault-quickstart-") as tmp:
        folder = a.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            res = run_quickstart(folder)
        except QuickstartFailed as e:
            print(f"daemon quick start (docs/daemon.md): FAILED: {e}", file=sys.stderr)
            return 1
        n = len(res["events"])
        alarms = sum(e["alarm"] for e in res["events"])
        print(f"daemon quick start (docs/daemon.md) ran as written in {folder}: {n} events, {alarms} with alarm on, "
              f"report {res['report'].stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
