"""Daemon start-up failures leave nothing behind: no lock file or state files (a missing or bad
bundle is found before the state folder is touched), no lock held, no file descriptor open, no
"state saved" in the log; stop() after a failed start is a no-op."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgefault.daemon import Daemon, parse_config
from edgefault.errors import EdgefaultError
from test_daemon_live import PKG_PARENT


def _fds() -> set[str]:
    """Open descriptors (with their targets), without the one listing them used."""
    out = set()
    for f in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{f} {os.readlink(f'/proc/self/fd/{f}')}")
        except OSError:
            pass
    return out


def _config(tmp_path: Path, bundle: Path | str, listen: str = "127.0.0.1:0", sink: str = "") -> str:
    return f"""
[daemon]
state_dir = "{tmp_path / 'st'}"
[http]
listen = ""
[[sensor]]
id = "m1"
bundle = "{bundle}"
[sensor.source]
type = "udp"
listen = "{listen}"
{sink}"""


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")) if d.exists() else []


@pytest.mark.parametrize("bundle", ["missing.efb", "garbage.efb"])
def test_bad_bundle_creates_no_state_folder_or_lock(tmp_path: Path, bundle: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "garbage.efb").write_bytes(b"not a bundle at all")
    fds = _fds()
    d = Daemon(parse_config(_config(tmp_path, tmp_path / bundle), str(tmp_path / "c.toml")))
    with caplog.at_level(logging.INFO, logger="edgefault.daemon"):
        with pytest.raises(EdgefaultError, match="m1"):
            d.start()
        d.stop()  # must not raise after a failed start
        d.stop()
    assert not (tmp_path / "st").exists()  # not even the folder: bundles load before it is touched
    assert _fds() == fds
    assert "state saved" not in caplog.text and "stopped" not in caplog.text


def test_failure_after_the_lock_removes_what_start_created(tmp_path: Path, small_bundle: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The UDP port is taken: the failure comes after the lock, the seq file and a file sink were
    created. They are removed again, files that were there before stay, and the lock is free."""
    st = tmp_path / "st"
    st.mkdir()
    (st / "keep.txt").write_text("the operator's file")
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    sink = f'[[sink]]\ntype = "file"\npath = "{tmp_path / "ev.jsonl"}"\n'
    fds = {f for f in _fds() if not f.startswith(f"{busy.fileno()} ")}
    try:
        d = Daemon(parse_config(_config(tmp_path, small_bundle, f"127.0.0.1:{port}", sink), str(tmp_path / "c.toml")))
        with caplog.at_level(logging.INFO, logger="edgefault.daemon"):
            with pytest.raises(EdgefaultError, match=f"sensor m1: cannot listen on udp 127.0.0.1:{port}: "):
                d.start()
            d.stop()
    finally:
        busy.close()
    assert _files(st) == ["keep.txt"]  # no lock, no m1.seq
    assert not (tmp_path / "ev.jsonl").exists()
    assert _fds() == fds
    assert "state saved" not in caplog.text
    # the lock is not held: a daemon on the same state folder starts and stops normally
    d2 = Daemon(parse_config(_config(tmp_path, small_bundle, sink=sink), str(tmp_path / "c.toml")))
    d2.start()
    d2.stop()
    d2.stop()  # twice: no error
    assert {"lock", "m1.seq", "m1.state.npz", "keep.txt"} <= set(_files(st))
    assert _fds() == fds


def test_failed_start_keeps_an_existing_state(tmp_path: Path, small_bundle: Path) -> None:
    """A state folder from an earlier run keeps its files (state, seq, lock) after a failed start."""
    d = Daemon(parse_config(_config(tmp_path, small_bundle), str(tmp_path / "c.toml")))
    d.start()
    d.stop()
    st = tmp_path / "st"
    before = {p: p.read_bytes() for p in st.rglob("*") if p.is_file()}
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        d = Daemon(parse_config(_config(tmp_path, small_bundle, f"127.0.0.1:{busy.getsockname()[1]}"),
                                str(tmp_path / "c.toml")))
        with pytest.raises(EdgefaultError, match="cannot listen"):
            d.start()
    finally:
        busy.close()
    assert {p: p.read_bytes() for p in st.rglob("*") if p.is_file()} == before


def test_serve_with_a_missing_bundle_exits_2_without_files(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(_config(tmp_path, tmp_path / "missing.efb"))
    p = subprocess.run([sys.executable, "-m", "edgefault", "serve", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": PKG_PARENT})
    assert p.returncode == 2, p.stderr
    assert "missing.efb" in p.stderr
    assert "state saved" not in p.stderr and "stopped" not in p.stderr
    assert not (tmp_path / "st").exists() and not (tmp_path / "edgefault-state").exists()


def test_serve_with_a_port_in_use_exits_2_with_a_message(tmp_path: Path, small_bundle: Path) -> None:
    """The metrics port is taken (the last thing start() builds): one clear line, exit 2, and the
    new state folder is gone again."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    cfg = tmp_path / "c.toml"
    cfg.write_text(_config(tmp_path, small_bundle).replace('listen = ""', f'listen = "127.0.0.1:{port}"', 1))
    try:
        p = subprocess.run([sys.executable, "-m", "edgefault", "serve", "--config", str(cfg)], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": PKG_PARENT})
    finally:
        busy.close()
    assert p.returncode == 2, p.stderr
    assert f"[http] cannot listen on 127.0.0.1:{port}" in p.stderr and "Traceback" not in p.stderr
    assert "state saved" not in p.stderr
    assert not (tmp_path / "st").exists()
