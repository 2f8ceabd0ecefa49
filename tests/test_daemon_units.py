"""Daemon building blocks: config validation, packet framing, sequence tracking, the spool,
metrics text; property tests and fuzzing with hypothesis."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgefault.daemon import framing
from edgefault.daemon.config import ConfigError, parse_config
from edgefault.daemon.metrics import Metrics
from edgefault.daemon.spool import Spool

# EDGEFAULT_FUZZ_SCALE=20 multiplies the number of fuzz inputs (default run: 7,350 in all)
FUZZ = max(1, int(os.environ.get("EDGEFAULT_FUZZ_SCALE", "1")))

GOOD = """
[daemon]
state_dir = "st"
[http]
listen = "127.0.0.1:9108"
[[sensor]]
id = "pump-1"
bundle = "b.efb"
[sensor.source]
type = "udp"
listen = "127.0.0.1:5555"
[[sink]]
type = "mqtt"
host = "127.0.0.1"
topic = "plant/{sensor}"
"""


# -- config ---------------------------------------------------------------------------------------
def test_config_defaults_and_paths(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(GOOD)
    from edgefault.daemon import load_config

    c = load_config(p)
    assert c.state_dir == str(tmp_path / "st") and c.state_interval == 60.0
    assert c.http_listen == ("127.0.0.1", 9108)
    s = c.sensors[0]
    assert s.bundle == str(tmp_path / "b.efb") and s.source.listen == ("127.0.0.1", 5555)
    assert s.source.max_packet_bytes == 65507 and s.queue_chunks == 256
    k = c.sinks[0]
    assert k.mqtt is not None and k.mqtt.qos == 1 and k.mqtt.topic == "plant/{sensor}" and k.id == "mqtt0"


@pytest.mark.parametrize("edit, key", [
    (("listen = \"127.0.0.1:5555\"", "listen = \"0.0.0.0:5555\""), "sensor[0].source.listen"),
    (("listen = \"127.0.0.1:9108\"", "listen = \"10.1.2.3:9108\""), "http.listen"),
    (("type = \"udp\"", "type = \"udpp\""), "sensor[0].source.type"),
    (("id = \"pump-1\"", "id = \"pump 1\""), "sensor[0].id"),
    (("id = \"pump-1\"", "id = 3"), "sensor[0].id"),
    (("topic = ", "qos = 3\ntopic = "), "sink[0].qos"),
    (("topic = ", "lisen = 3\ntopic = "), "sink[0].lisen"),
    (("bundle = \"b.efb\"", ""), "sensor[0].bundle"),
    (("state_dir = \"st\"", "state_interval = -1"), "daemon.state_interval"),
    (("[[sink]]", "[[sink]]\nusername = 1"), "sink[0].username"),
    (("listen = \"127.0.0.1:5555\"", "listen = \"127.0.0.1\""), "sensor[0].source.listen"),
])
def test_config_errors_name_the_key(edit: tuple[str, str], key: str) -> None:
    text = GOOD.replace(*edit, 1)
    with pytest.raises(ConfigError, match=re.escape(f"c.toml: {key}:")):
        parse_config(text, "c.toml")


def test_config_remote_listen_needs_allow_remote() -> None:
    text = GOOD.replace('listen = "127.0.0.1:5555"', 'listen = "0.0.0.0:5555"\nallow_remote = true')
    assert parse_config(text, "c.toml").sensors[0].source.listen == ("0.0.0.0", 5555)


def test_config_rejects_duplicates_and_empty() -> None:
    with pytest.raises(ConfigError, match="used twice"):
        parse_config(GOOD + GOOD.split("[[sensor]]")[1].split("[[sink]]")[0].join(["[[sensor]]", ""]), "c.toml")
    with pytest.raises(ConfigError, match="sensor: is required"):
        parse_config("[daemon]\n", "c.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[daemon\n", "c.toml")


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if v == v and abs(v) != float("inf") else "nan"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_values = st.one_of(st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=20).filter(lambda s: all(ord(c) >= 32 and ord(c) != 127 for c in s)),
                    st.lists(st.integers(0, 9), max_size=3))
_keys = st.sampled_from(["id", "bundle", "type", "listen", "path", "speed", "format", "host", "port", "qos",
                         "topic", "url", "max_bytes", "state_dir", "state_interval", "channels", "input_scale",
                         "allow_remote", "tls", "username", "password", "batch", "reorder_window", "bogus"])


@settings(max_examples=600 * FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_config_structured(data: st.DataObject) -> None:
    """Mutate one key of each table of a valid config: a clean ConfigError or a valid config."""
    lines = GOOD.strip().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    if "=" in lines[i] and data.draw(st.booleans()):
        lines[i] = lines[i].split("=")[0] + "= " + _toml_value(data.draw(_values))
    else:
        lines.insert(i + 1, f"{data.draw(_keys)} = {_toml_value(data.draw(_values))}")
    try:
        parse_config("\n".join(lines), "c.toml")
    except ConfigError as e:
        assert str(e).startswith("c.toml")


@settings(max_examples=600 * FUZZ, deadline=None)
@given(st.lists(st.sampled_from(list('[]=".:,# \n') + ["sensor", "sink", "type", "udp", "1", "true",
                                                      "source", "id", "x", "listen"]), max_size=80).map("".join))
def test_fuzz_config_text(text: str) -> None:
    try:
        parse_config(text, "c.toml")
    except ConfigError:
        pass


# -- framing ---------------------------------------------------------------------------------------
def test_packet_roundtrip_both_formats() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    h, y = framing.decode(framing.encode(7, x), 1 << 16)
    assert (h.seq, h.n_frames, h.n_channels, h.format) == (7, 50, 3, 2)
    np.testing.assert_array_equal(y, x)
    xi = (x * 1000).astype(np.int16)
    h, y = framing.decode(framing.encode(2**32 + 5, xi, "int16"), 1 << 16)
    assert h.seq == 5 and y.dtype == np.int16
    np.testing.assert_array_equal(y, xi)


def test_packet_version_2_carries_the_first_frame_time() -> None:
    """Version-2 packets (24-byte header) carry t_ns, the UTC time of their first frame; version 1
    (16 bytes) still decode, without a time. Both decode whole and from a TCP stream in pieces."""
    x = np.random.default_rng(1).normal(size=(30, 2)).astype(np.float32)
    t_ns = 1_764_806_400_123_456_789
    p2, p1 = framing.encode(3, x, t_ns=t_ns), framing.encode(4, x)
    assert len(p2) == 24 + x.nbytes and len(p1) == 16 + x.nbytes
    h2, y2 = framing.decode(p2, 1 << 16)
    h1, y1 = framing.decode(p1, 1 << 16)
    assert (h2.version, h2.size, h2.t_ns, h2.seq) == (2, 24, t_ns, 3) and h2.t_wall == pytest.approx(t_ns / 1e9)
    assert (h1.version, h1.size, h1.t_wall) == (1, 16, None)
    np.testing.assert_array_equal(y2, x)
    np.testing.assert_array_equal(y1, x)
    dec = framing.StreamDecoder(1 << 16)
    stream = p2 + p1 + p2
    got = [pk for i in range(0, len(stream), 7) for pk in dec.feed(stream[i:i + 7])]
    assert [h.seq for h, _ in got] == [3, 4, 3] and [h.t_ns for h, _ in got] == [t_ns, 0, t_ns]
    assert dec.take_errors() == []
    for bad, reason in ((framing.encode(1, x, t_ns=-5), "malformed"), (p2[:20], "truncated"),
                        (p2[:4] + b"\x03" + p2[5:], "malformed")):
        with pytest.raises(framing.PacketError, match="packet") as ei:
            framing.decode(bad, 1 << 16)
        assert ei.value.reason == reason


def test_packet_errors_have_reasons() -> None:
    p = framing.encode(1, np.zeros((10, 2)))
    cases = {"truncated": [p[:10], p[:-1]], "malformed": [b"XXXX" + p[4:], p + b"\0", p[:4] + b"\x09" + p[5:],
                                                         p[:5] + b"\x07" + p[6:], p[:6] + b"\0\0" + p[8:]],
             "oversized": [framing.encode(1, np.zeros((1000, 2)))]}
    for reason, pkts in cases.items():
        for q in pkts:
            with pytest.raises(framing.PacketError) as ei:
                framing.decode(q, 4096)
            assert ei.value.reason == reason, (reason, q[:16])



def test_packet_errors_are_input_errors_naming_the_packet() -> None:
    """Issue #12 item 10: a refused packet is an edgefault InputError, and its message says it is a packet."""
    from edgefault.errors import EdgefaultError, InputError

    p = framing.encode(1, np.zeros((10, 2)))
    for q in (b"XXXX" + p[4:], p[:5] + b"\x07" + p[6:], p[:6] + b"\0\0" + p[8:], p[:4] + b"\x09" + p[5:], p[:10],
              p + b"\0"):
        with pytest.raises(framing.PacketError) as ei:
            framing.decode(q, 4096)
        assert isinstance(ei.value, InputError) and isinstance(ei.value, EdgefaultError)
        assert isinstance(ei.value, ValueError)  # what callers caught before
        assert "packet" in str(ei.value), str(ei.value)


@settings(max_examples=3000 * FUZZ, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_decode_random_bytes(buf: bytes) -> None:
    try:
        h, d = framing.decode(buf, 1024)
    except framing.PacketError as e:
        assert e.reason in ("malformed", "truncated", "oversized")
    else:
        assert d.shape == (h.n_frames, h.n_channels)


@settings(max_examples=1500 * FUZZ, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.binary(max_size=40)), min_size=1, max_size=8),
       st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_fuzz_stream_decoder_recovers_every_packet(packets: list[tuple[int, bytes]], cuts: list[int]) -> None:
    """Valid packets with garbage (holding no magic) between them, fed in random pieces: every
    valid packet comes out, in order, and each garbage stretch is counted at most once."""
    stream = b""
    want = []
    for i, (n, junk) in enumerate(packets):
        junk = junk.replace(b"E", b"e")
        x = np.arange(n * 2, dtype=np.float32).reshape(n, 2) + i
        stream += junk + framing.encode(i, x)
        want.append((i, x))
    d = framing.StreamDecoder(4096)
    got = []
    pos = k = 0
    while pos < len(stream):
        step = cuts[k % len(cuts)]
        k += 1
        got += d.feed(stream[pos:pos + step])
        pos += step
    assert [h.seq for h, _ in got] == [i for i, _ in want]
    for (h, a), (_, x) in zip(got, want):
        np.testing.assert_array_equal(a, x)
    assert len(d.take_errors()) <= sum(1 for _, j in packets if j)
    assert d.close() is None


@settings(max_examples=1500 * FUZZ, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_fuzz_stream_decoder_random_bytes(buf: bytes, step: int) -> None:
    d = framing.StreamDecoder(512)
    for i in range(0, len(buf), step):
        for h, a in d.feed(buf[i:i + step]):
            assert a.shape == (h.n_frames, h.n_channels)
    assert len(d.buf) < 512 + framing.HEADER_SIZE


def test_sequence_tracker() -> None:
    t = framing.SequenceTracker(reorder_window=10)
    assert t.check(2**32 - 2) == (True, 0)
    assert t.check(2**32 - 1) == (True, 0)
    assert t.check(0) == (True, 0)  # wraps
    assert t.check(3) == (True, 2)  # 1, 2 lost
    assert t.check(2) == (False, 0)  # late
    assert t.check(3) == (False, 0)  # duplicate
    assert t.check(4) == (True, 0)
    assert t.check(1000) == (True, 995)
    assert t.check(5) == (True, 0)  # far back: sender restart
    assert (t.gaps, t.lost, t.late, t.restarts) == (2, 997, 2, 1)


# -- spool ---------------------------------------------------------------------------------------------
@settings(max_examples=150 * FUZZ, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([8, 40, 200]))
def test_spool_model(seed: int, seg: int) -> None:
    """Random append / peek / commit / rewind / reopen against a list model: records come out in
    order, exactly those not committed are pending, and a reopen redelivers from the cursor."""
    d = Path(tempfile.mkdtemp(prefix="spool-"))
    rng = random.Random(seed)
    s = Spool(d, max_bytes=1 << 20, segment_bytes=seg)
    acked = n = peeked = 0
    for _ in range(80):
        op = rng.random()
        if op < 0.4:
            k = rng.randint(1, 5)
            s.append([b"%d\n" % (n + i) for i in range(k)])
            n += k
        elif op < 0.7:
            r = s.peek(rng.randint(1, 7))
            assert [int(x) for x in r] == list(range(acked + peeked, acked + peeked + len(r)))
            peeked += len(r)
        elif op < 0.85:
            c = rng.randint(0, peeked)
            s.commit(c)
            acked += c
            peeked -= c
        elif op < 0.92:
            s.rewind()
            peeked = 0
        else:
            s.close()
            s = Spool(d, max_bytes=1 << 20, segment_bytes=seg)
            peeked = 0
        assert s.pending == n - acked
    s.close()
    shutil.rmtree(d)


def test_spool_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=4096, segment_bytes=1024)
    s.append([b"%05d\n" % i for i in range(2000)])  # one write, then more segments
    for i in range(2000, 3000, 10):
        s.append([b"%05d\n" % j for j in range(i, i + 10)])
    got = s.peek(100000)
    assert s.dropped + len(got) == 3000 == s.dropped + s.pending
    assert [int(x) for x in got] == list(range(3000 - len(got), 3000))
    assert sum(p.stat().st_size for p in tmp_path.glob("*.jsonl")) <= 4096 + 1024
    s.close()


def test_spool_torn_tail_is_cut(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    s.append([b"a\n", b"b\n"])
    s.close()
    seg = next(tmp_path.glob("*.jsonl"))
    with open(seg, "ab") as fh:
        fh.write(b"{partial")
    s = Spool(tmp_path)
    assert s.peek(10) == [b"a\n", b"b\n"] and s.pending == 2
    s.close()



def test_spool_skips_a_stray_jsonl_and_keeps_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = Spool(tmp_path)
    s.append([b"a\n"])
    s.close()
    stray = tmp_path / "events-backup.jsonl"
    stray.write_bytes(b'{"not": "ours"}\n')
    with caplog.at_level("WARNING", logger="edgefault.daemon"):
        s = Spool(tmp_path)
    assert s.peek(10) == [b"a\n"] and s.pending == 1
    s.close()
    assert stray.read_bytes() == b'{"not": "ours"}\n'
    assert "events-backup.jsonl" in caplog.text

# -- metrics text ----------------------------------------------------------------------------------
def test_metrics_text_and_promtool() -> None:
    m = Metrics()
    m.inc("edgefault_windows_scored_total", 3, sensor='a"b\\c')
    m.set("edgefault_queue_depth", 2, sensor="x")
    for v in (0.0001, 0.003, 0.003, 7.0):
        m.observe(v, sensor="x")
    text = m.render()
    assert 'edgefault_windows_scored_total{sensor="a\\"b\\\\c"} 3' in text
    assert 'edgefault_scoring_latency_seconds_bucket{sensor="x",le="0.005"} 3' in text
    assert 'edgefault_scoring_latency_seconds_bucket{sensor="x",le="+Inf"} 4' in text
    assert 'edgefault_scoring_latency_seconds_count{sensor="x"} 4' in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (r.stdout, r.stderr)


# -- unit file --------------------------------------------------------------------------------------
def test_unit_file_verifies(tmp_path: Path) -> None:
    import edgefault.daemon

    unit = Path(edgefault.daemon.__file__).with_name("edgefault.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "StateDirectory=edgefault",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    # ExecStart must name an existing executable for verify: point it at this Python
    import sys

    (tmp_path / "edgefault.service").write_text(unit.replace("/usr/local/bin/edgefault", sys.executable))
    r = subprocess.run([tool, "verify", str(tmp_path / "edgefault.service")], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stderr


# -- file sink rotation -------------------------------------------------------------------------------
def test_file_sink_rotates_and_keeps_order(tmp_path: Path) -> None:
    from edgefault.daemon.config import SinkConfig
    from edgefault.daemon.sinks import FileSink, Record

    m = Metrics()
    s = FileSink(SinkConfig(type="file", id="f", path=str(tmp_path / "ev.jsonl"), max_bytes=1024, backups=2), m)
    lines = [b'{"seq":%d,"pad":"%s"}\n' % (i, b"x" * 40) for i in range(200)]
    for i in range(0, 200, 7):
        s.emit([Record("m", ln, False) for ln in lines[i:i + 7]])
    s.stop()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ev.jsonl", "ev.jsonl.1", "ev.jsonl.2"]
    kept = b"".join((tmp_path / n).read_bytes() for n in ["ev.jsonl.2", "ev.jsonl.1", "ev.jsonl"])
    assert kept == b"".join(lines)[-len(kept):] and kept.endswith(lines[-1])
    assert all((tmp_path / n).stat().st_size <= 1024 for n in names)
    assert m.get("edgefault_sink_events_total", sink="f") == 200



def test_sink_records_are_named_and_only_alarms_selects_alerts(tmp_path: Path) -> None:
    """A Record has named fields; a sink with only_alarms passes on the alert records only, in
    order, to stdout and to the spool (sensor id kept with each line)."""
    import io

    from edgefault.daemon.config import SinkConfig
    from edgefault.daemon.sinks import Record, SpooledSink, StdoutSink

    recs = [Record(sensor=f"s{i % 2}", line=b'{"seq":%d}\n' % i, alert=i % 3 == 0) for i in range(9)]
    assert recs[3] == ("s1", b'{"seq":3}\n', True) and recs[3].sensor == "s1" and recs[3].alert
    assert Record._fields == ("sensor", "line", "alert")
    out = io.BytesIO()
    StdoutSink(SinkConfig(type="stdout", id="o", only_alarms=True), Metrics(), out).emit(recs)
    assert out.getvalue() == b'{"seq":0}\n{"seq":3}\n{"seq":6}\n'
    out_all = io.BytesIO()
    StdoutSink(SinkConfig(type="stdout", id="a"), Metrics(), out_all).emit(recs)
    assert out_all.getvalue() == b"".join(r.line for r in recs)
    sp = SpooledSink(SinkConfig(type="webhook", id="w", url="http://127.0.0.1:9/", only_alarms=True), Metrics(),
                     tmp_path)
    sp.emit(recs)
    assert [sp._split(b) for b in sp.spool.peek(10, timeout=0)] == [("s0", b'{"seq":0}'), ("s1", b'{"seq":3}'),
                                                                     ("s0", b'{"seq":6}')]
    sp.spool.close()

def test_config_drift_keys_default_parse_and_validate() -> None:
    """Per-sensor drift / adaptive_threshold: absent = None (the bundle's choice), booleans pass
    through, anything else is an error naming the key."""
    s = parse_config(GOOD, "c.toml").sensors[0]
    assert s.drift is None and s.adaptive_threshold is None
    text = GOOD.replace('bundle = "b.efb"', 'bundle = "b.efb"\ndrift = false\nadaptive_threshold = true', 1)
    s = parse_config(text, "c.toml").sensors[0]
    assert s.drift is False and s.adaptive_threshold is True
    for key, bad in (("drift", '"yes"'), ("adaptive_threshold", "1"), ("drift", "0.0")):
        with pytest.raises(ConfigError, match=re.escape(f"c.toml: sensor[0].{key}: expected bool")):
            parse_config(GOOD.replace('bundle = "b.efb"', f'bundle = "b.efb"\n{key} = {bad}', 1), "c.toml")


def test_sensor_runtime_gets_drift_options(tmp_path: Path, small_bundle: Path) -> None:
    """The sensor's Runtime is built with the config's drift / adaptive_threshold; drift = true on a
    bundle without drift settings fails naming the sensor."""
    from edgefault.device.bundle import load_bundle
    from edgefault.daemon.config import SensorConfig, SourceConfig
    from edgefault.daemon.service import SensorWorker
    from edgefault.errors import InputError
    from edgefault.export import pack_bundle

    def runtime(bundle: Path, **kw: bool) -> object:
        cfg = SensorConfig(id="s", bundle=str(bundle), source=SourceConfig(type="stdin"), **kw)
        return SensorWorker._runtime(None, cfg)  # type: ignore[arg-type]  # uses no worker state

    b = load_bundle(small_bundle)
    assert "drift" in b.thresholds
    x = np.zeros((4 * b.spec.window, b.spec.n_channels), np.float32)
    assert all(e.drift is not None for e in runtime(small_bundle).push(x))  # type: ignore[attr-defined]
    assert all(e.drift is None for e in runtime(small_bundle, drift=False).push(x))  # type: ignore[attr-defined]
    rt = runtime(small_bundle, drift=False, adaptive_threshold=True)
    assert rt.get_state()["drift"] is not None  # type: ignore[attr-defined]  # the adaptive level's state
    old = tmp_path / "old.efb"
    pack_bundle(old, spec=b.spec, model=b.model, arrays=dict(b.arrays),
                thresholds={k: v for k, v in b.thresholds.items() if k != "drift"})
    assert all(e.drift is None for e in runtime(old).push(x))  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="sensor s: .*no drift calibration"):
        runtime(old, drift=True)
    with pytest.raises(InputError, match="sensor s: .*no drift calibration"):
        runtime(old, adaptive_threshold=True)


@pytest.mark.parametrize("before, after", [
    ({}, {"drift": False, "adaptive_threshold": True}),
    ({"drift": False, "adaptive_threshold": True}, {}),
    ({}, {"drift": False}),
])
def test_sighup_that_toggles_drift_keeps_samples_and_alarm(small_bundle: Path, before: dict[str, bool],
                                                           after: dict[str, bool]) -> None:
    """Swapping to the same bundle with other drift / adaptive settings restarts those monitors and
    keeps the partial window, the alarm state and the window count (it used to stop the worker)."""
    from types import SimpleNamespace
    from typing import Any

    from edgefault.daemon.config import SensorConfig, SourceConfig
    from edgefault.daemon.service import SensorWorker

    def runtime(**kw: bool) -> Any:
        cfg = SensorConfig(id="s", bundle=str(small_bundle), source=SourceConfig(type="stdin"), **kw)
        return SensorWorker._runtime(None, cfg)  # type: ignore[arg-type]

    old, ref = runtime(**before), runtime(**after)
    x = np.random.default_rng(3).standard_normal((12000, 2)).astype(np.float32)
    x[5000:6000] *= 40  # an alarm before the swap
    split = 7777  # mid-window
    old.push(x[:split])
    ns = SimpleNamespace(pending_rt=runtime(**after), rt=old, id="s", _info=lambda: None)
    SensorWorker._swap(ns)  # type: ignore[arg-type]
    new = ns.rt
    st_old = old.get_state()
    st_new = new.get_state()
    assert st_new["seq"] == st_old["seq"] and st_new["frames_seen"] == st_old["frames_seen"]
    np.testing.assert_array_equal(st_new["tail"], st_old["tail"])
    assert st_new["alarm"]["alarm"] == st_old["alarm"]["alarm"]
    ev = new.push(x[split:])
    assert ev and ev[0].seq == st_old["seq"]
    assert (ev[0].drift is None) == (ref._drift is None or not (ref._drift.has_score or ref._drift.has_latent))


def test_sensor_state_shared_with_runtime_and_bad_files_start_fresh(tmp_path: Path, small_bundle: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The sensor worker and Runtime.save_state/load_state write and read one state format: each
    restores the other's file; the daemon section carries seq / dropped frames / boot; an unreadable
    file or daemon section is logged (naming the file) and the sensor starts fresh."""
    import json
    import logging
    from types import SimpleNamespace

    from edgefault.daemon.config import SensorConfig, SourceConfig
    from edgefault.daemon.service import SensorWorker
    from edgefault.device.runtime import Runtime
    from edgefault.device.state import read_state

    sd = tmp_path / "st"
    sd.mkdir()
    daemon = SimpleNamespace(metrics=Metrics(), cfg=SimpleNamespace(state_dir=str(sd), state_interval=60.0))
    cfg = SensorConfig(id="m1", bundle=str(small_bundle), source=SourceConfig(type="stdin"))
    x = np.random.default_rng(5).standard_normal((3000, 2)).astype(np.float32)

    workers: list[SensorWorker] = []

    def worker() -> SensorWorker:
        if workers:
            workers.pop().seqfile.close()
        workers.append(SensorWorker(cfg, daemon))  # type: ignore[arg-type]  # uses metrics and cfg only
        return workers[-1]

    rt = Runtime(small_bundle)
    rt.push(x)
    rt.save_state(sd / "m1.state.npz")  # a Runtime's file: no daemon section
    w = worker()
    assert w.rt.get_state()["seq"] == rt.get_state()["seq"] and w.boot == 1 and w.seq == 0
    np.testing.assert_array_equal(w.rt.get_state()["tail"], rt.get_state()["tail"])
    w.seq, w.dropped_frames = 17, 5
    w.save_state()
    got = read_state(sd / "m1.state.npz")
    assert {k: got["daemon"][k] for k in ("seq", "dropped_frames", "boot", "sensor")} == \
        {"seq": 17, "dropped_frames": 5, "boot": 1, "sensor": "m1"}
    back = Runtime(small_bundle)
    back.load_state(sd / "m1.state.npz")  # the daemon's file read by a Runtime
    assert back.get_state()["seq"] == rt.get_state()["seq"]
    w2 = worker()
    assert (w2.seq, w2.dropped_frames, w2.boot) == (17, 5, 2)

    meta = {k: v for k, v in got.items() if k != "tail"}
    meta["daemon"] = "garbage"
    np.savez(sd / "m1.state.npz", tail=got["tail"], meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with caplog.at_level(logging.WARNING, logger="edgefault.daemon"):
        w3 = worker()
    assert "'daemon' section ignored" in caplog.text and w3.boot == 1
    assert w3.rt.get_state()["seq"] == rt.get_state()["seq"]  # the runtime part is still used
    caplog.clear()
    (sd / "m1.state.npz").write_bytes(b"not a state")
    with caplog.at_level(logging.WARNING, logger="edgefault.daemon"):
        w4 = worker()
    assert f"state file {sd / 'm1.state.npz'} is not a readable edgefault state" in caplog.text
    assert "starting fresh" in caplog.text and w4.rt.get_state()["seq"] == 0 and w4.boot == 0
    w4.seqfile.close()


def test_only_alarms_gets_drift_changes_and_the_retrain_onset(tmp_path: Path) -> None:
    """A real drift-monitored run (healthy, then a x1.5 gain change): the events sent to
    only_alarms sinks include every drift onset/end and the first retrain recommendation, once."""
    from conftest import drift_bundle, gain_change_run

    from edgefault.daemon.service import sink_alert
    from edgefault.device.runtime import Runtime

    rt = Runtime(drift_bundle(tmp_path / "m.efb"))
    events = rt.push(gain_change_run().astype(np.float32))
    retrain, sent = False, []
    for ev in events:
        alert, retrain = sink_alert(ev, retrain)
        if alert:
            sent.append(ev)
    assert any(e.retrain for e in events) and sum(e.retrain for e in events) > 1
    assert sum(e.retrain for e in sent if not (e.anomaly or e.alarm_changed or e.drift_changed)) <= 1
    first = next(i for i, e in enumerate(events) if e.retrain)
    assert events[first] in sent
    changes = [e for e in events if e.drift_changed]
    assert changes and all(e in sent for e in changes)



def _bare_worker(tmp_path: Path, bundle: Path, sid: str, queue_chunks: int = 4) -> tuple[Any, Metrics, list[Any]]:
    """A SensorWorker on a stand-in daemon (metrics, state folder, emit into the returned list):
    (worker, metrics, emitted records)."""
    from types import SimpleNamespace

    from edgefault.daemon.config import SensorConfig, SourceConfig
    from edgefault.daemon.service import SensorWorker

    sd = tmp_path / "st"
    sd.mkdir()
    m = Metrics()
    out: list[Any] = []
    daemon = SimpleNamespace(metrics=m, cfg=SimpleNamespace(state_dir=str(sd), state_interval=60.0), emit=out.extend)
    cfg = SensorConfig(id=sid, bundle=str(bundle), source=SourceConfig(type="stdin"), queue_chunks=queue_chunks)
    return SensorWorker(cfg, daemon), m, out  # type: ignore[arg-type]  # uses metrics, cfg and emit only


def test_dropped_chunk_becomes_a_marked_gap_not_a_splice(tmp_path: Path, small_bundle: Path) -> None:
    """A full queue drops a chunk: the next queued chunk carries the lost frame count, the scoring
    thread marks that many frames as a gap first (Runtime.push_gap), so windows over the gap are
    invalid with the flag 'gap' and every event's time stays on the true sample grid; source gaps
    (gap()) travel the same way and are never dropped. Packet timestamps reach the events' t_wall."""
    from edgefault.device.runtime import Runtime

    w, _, _ = _bare_worker(tmp_path, small_bundle, "g", queue_chunks=1)
    got: list = []
    w._emit = lambda t, evs: got.extend(evs)  # type: ignore[method-assign]
    x = np.random.default_rng(9).standard_normal((4 * 2048, 2)).astype(np.float32)
    a, b, c, d = (x[i * 2048:(i + 1) * 2048] for i in range(4))
    assert w.offer(a) and not w.offer(b)  # queue of one: b is dropped
    w._handle(*w.queue.get())
    w.gap(2048)  # a source gap of c's length
    assert w.offer(d, t_wall=1.8e9)  # d came with a packet timestamp
    item = w.queue.get()
    assert item[2] == 2 * 2048  # b's frames and the gap travel with d
    w._handle(*item)
    w.seqfile.close()
    ref = Runtime(small_bundle)
    want = ref.push(a) + ref.push_gap(2 * 2048) + ref.push(d, t_wall=1.8e9)
    skip = ("t_wall", "t_wall_source")  # a's receive clock differs
    assert [{k: v for k, v in e.to_dict().items() if k not in skip} for e in got] == \
        [{k: v for k, v in e.to_dict().items() if k not in skip} for e in want]
    hop, win, fs = ref.spec.hop, ref.spec.window, ref.fs
    lo, hi = 2048, 2048 + 2 * 2048  # the lost frames
    for e in got:
        end = round(e.t * fs)
        assert (e.flags == ("gap",)) == (end - win < hi and end > lo), (e.seq, e.flags)
    assert any(e.flags == ("gap",) for e in got) and w.dropped_frames == 2048
    assert [e.t for e in got] == [(win + k * hop) / fs for k in range(len(got))]
    after = [e for e in got if e.t * fs > hi]
    assert after and all(e.t_wall_source == "source" for e in after)
    assert after[-1].t_wall == pytest.approx(1.8e9 + after[-1].t - hi / fs)
    assert all(e.t_wall_source == "receive" for e in got if e.t * fs <= lo)


def test_sensor_faults_and_gaps_are_counted_by_reason(tmp_path: Path, small_bundle: Path) -> None:
    """Issue #12 item 6: windows a sensor-health check excluded are counted per reason, and the
    failed checks per channel; events say which channel failed which check."""
    w, m, out = _bare_worker(tmp_path, small_bundle, "h")
    x = np.random.default_rng(3).standard_normal((8192, 2)).astype(np.float32) * 0.3
    x[2048:6144, 0] = 0.0  # channel a disconnected: exact zeros
    assert w.offer(x[:4096])
    w._handle(*w.queue.get())
    w.gap(1000)  # travels with the next chunk
    assert w.offer(x[4096:])
    w._handle(*w.queue.get())
    w.seqfile.close()
    events = [json.loads(r.line) for r in out]
    faults = [e for e in events if e["flags"] == ["sensor_fault"]]
    gaps = [e for e in events if e["flags"] == ["gap"]]
    assert faults and gaps and all("a" in e["health"] and "b" not in e["health"] for e in faults)
    assert m.get("edgefault_windows_unscored_total", sensor="h", reason="sensor_fault") == len(faults)
    assert m.get("edgefault_windows_unscored_total", sensor="h", reason="gap") == len(gaps)
    assert m.get("edgefault_windows_invalid_total", sensor="h") == len(faults) + len(gaps)
    per_check = {c: m.get("edgefault_sensor_health_total", sensor="h", channel="a", check=c)
                 for c in ("flat", "dropout")}
    assert per_check["dropout"] >= 1 and sum(per_check.values()) >= len(faults)
    assert all(e["t_wall_source"] == "receive" and e["t_wall"] > 1.7e9 for e in events)


def test_state_gauges_follow_the_last_window(tmp_path: Path, small_bundle: Path) -> None:
    """Issue #15 item 3: per-sensor gauges for the last score, threshold, alarm, channel health,
    window timestamp and windows per second, and the process_* gauges, promtool-clean."""
    from edgefault.daemon.metrics import process_gauges, process_start_time

    w, m, out = _bare_worker(tmp_path, small_bundle, "g")
    assert m.get("edgefault_threshold", sensor="g") == w.rt.threshold and m.get("edgefault_alarm", sensor="g") == 0
    assert "edgefault_score{" not in m.render()  # nothing scored yet

    def feed(x: np.ndarray) -> list[dict]:  # type: ignore[type-arg]
        out.clear()
        assert w.offer(x)
        w._handle(*w.queue.get())
        return [json.loads(r.line) for r in out]

    rng = np.random.default_rng(5)
    ev = feed(rng.standard_normal((4096, 2)).astype(np.float32) * 0.3)
    last_scored = [e for e in ev if e["score"] is not None][-1]
    assert m.get("edgefault_score", sensor="g") == pytest.approx(last_scored["score"], rel=1e-6)
    assert m.get("edgefault_threshold", sensor="g") == pytest.approx(ev[-1]["threshold"], rel=1e-6)
    assert m.get("edgefault_alarm", sensor="g") == int(ev[-1]["alarm"])
    assert m.get("edgefault_last_window_timestamp_seconds", sensor="g") == pytest.approx(ev[-1]["t_wall"], abs=1e-3)
    assert m.get("edgefault_channel_healthy", sensor="g", channel="a") == 1
    # a loud stretch raises the alarm; the gauge follows the last window, and the score gauge keeps
    # the last scored window's score through windows that are not scored (channel a disconnected)
    loud = feed(rng.standard_normal((4096, 2)).astype(np.float32) * 5.0)
    assert loud[-1]["alarm"] and m.get("edgefault_alarm", sensor="g") == 1
    x = rng.standard_normal((4096, 2)).astype(np.float32) * 5.0
    x[:, 0] = 0.0
    ev = feed(x)
    assert ev[-1]["score"] is None and "a" in ev[-1]["health"]
    assert m.get("edgefault_channel_healthy", sensor="g", channel="a") == 0
    assert m.get("edgefault_channel_healthy", sensor="g", channel="b") == 1
    last_scored = [e for e in loud + ev if e["score"] is not None][-1]
    assert m.get("edgefault_score", sensor="g") == pytest.approx(last_scored["score"], rel=1e-6)
    import time

    assert w.windows_per_second(time.monotonic()) > 0
    assert w.windows_per_second(time.monotonic() + 11.0) == 0.0  # nothing in the last 10 s
    w.seqfile.close()
    process_gauges(m, process_start_time())
    assert m.get("process_resident_memory_bytes") > 10e6 and m.get("process_cpu_seconds_total") > 0
    assert 0 < time.time() - m.get("process_start_time_seconds") < 3600 and m.get("process_open_fds") >= 3
    promtool = shutil.which("promtool")
    if promtool is not None:
        r = subprocess.run([promtool, "check", "metrics"], input=m.render().encode(), capture_output=True,
                           timeout=30)
        assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (r.stdout, r.stderr)


def test_grafana_dashboard_queries_what_the_daemon_exports(tmp_path: Path) -> None:
    """docs/grafana-dashboard.json: every metric a panel or variable queries is one the daemon
    exports (metrics.FAMILIES), and every query parses as PromQL (promtool check rules)."""
    from edgefault.daemon.metrics import FAMILIES

    doc = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
    if not doc.exists():
        pytest.skip("docs/ is not beside the tests (an installed wheel's test run)")
    dash = json.loads(doc.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    queries = [v["query"] for v in dash["templating"]["list"]]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"]) and exprs
    used = set()
    for e in exprs + queries:
        for name in re.findall(r"\b((?:edgefault|process)_[a-z_]+)", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name) if name.endswith(("_bucket", "_sum", "_count")) else name
            assert base in FAMILIES, f"{doc.name}: {e!r} queries {name}, which the daemon does not export"
            used.add(base)
    for must in ("edgefault_score", "edgefault_threshold", "edgefault_alarm", "edgefault_drift",
                 "edgefault_channel_healthy", "edgefault_windows_per_second", "edgefault_queue_depth",
                 "process_resident_memory_bytes", "process_cpu_seconds_total"):
        assert must in used, f"no panel shows {must}"
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    rules = tmp_path / "rules.yml"
    lines = ["groups:", "- name: dashboard", "  rules:"]
    for i, e in enumerate(exprs):
        lines += [f"  - record: dashboard:query{i}", "    expr: " + json.dumps(e.replace("$sensor", ".*").replace("$job", ".*"))]
    rules.write_text("\n".join(lines) + "\n")
    r = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
