"""Daemon configuration: a TOML file, validated into plain dataclasses.

Every setting, its type and its default are documented in docs/daemon.md. Validation errors
raise :class:`ConfigError` naming the file and the key (``sensor[1].source.listen``) and saying
what was expected. Unknown keys are errors (a typo must not silently fall back to a default).
"""
from __future__ import annotations

import ipaddress
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgefault.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SOURCE_TYPES = ("stdin", "file", "udp", "tcp", "mqtt", "serial")
SINK_TYPES = ("stdout", "file", "mqtt", "webhook")
RAW_FORMATS = ("int16", "float32", "csv")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ConfigError(InputError):
    "The daemon configuration is missing a key, has an unknown key or a value of the wrong kind."


# -- dataclasses ------------------------------------------------------------------------------
@dataclass
class TLSConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


@dataclass
class SourceConfig:
    type: str
    listen: tuple[str, int] | None = None  # udp / tcp
    allow_remote: bool = False
    format: str = "float32"  # stdin / serial: int16 | float32 | csv
    path: str | None = None  # file
    speed: float = 1.0  # file: 1.0 = real time, 0 = as fast as possible
    loop: bool = False  # file
    fs: float | None = None  # file: the rate of a file that stores none (resampled to the bundle's)
    assume_model_rate: bool = False  # file: read a file whose rate is known from nothing at the bundle's
    chunk_frames: int = 1024  # stdin / file / serial read granularity
    max_packet_bytes: int = 65507  # udp / tcp / mqtt: larger packets are counted and skipped
    reorder_window: int = 1024  # packets: older sequence numbers are late, further back a restart
    gap_fill_frames: int | None = None  # frames marked as a gap per sequence gap (default: 10 minutes of samples)
    device: str | None = None  # serial
    baudrate: int = 115200  # serial
    mqtt: "MQTTConfig | None" = None  # mqtt source


@dataclass
class MQTTConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str = "edgefault/events"
    qos: int = 1
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    tls: TLSConfig | None = None
    keepalive: int = 30
    retain: bool = False


@dataclass
class SensorConfig:
    id: str
    bundle: str
    source: SourceConfig
    input_scale: float | None = None
    channels: list[str] | None = None  # file source: file channels fed to the bundle, in order
    alarm_k: int | None = None
    alarm_n: int | None = None
    queue_chunks: int = 256
    drift: bool | None = None  # None: as the bundle was calibrated; False: off; True: required
    adaptive_threshold: bool | None = None  # None: the bundle's choice


@dataclass
class SinkConfig:
    type: str
    id: str
    path: str | None = None  # file
    max_bytes: int = 10 << 20  # file rotation size
    backups: int = 5  # file rotation: files kept
    only_alarms: bool = False  # deliver only anomalous windows, alarm / drift changes and retrain recommendations
    mqtt: MQTTConfig | None = None
    url: str | None = None  # webhook
    timeout: float = 5.0  # webhook request timeout
    batch: int = 100  # mqtt in-flight window / webhook events per POST
    retry_initial: float = 0.5  # seconds, doubles up to retry_max
    retry_max: float = 30.0
    spool_max_bytes: int = 256 << 20  # on-disk spool bound; oldest events dropped (counted) beyond
    headers: dict[str, str] = field(default_factory=dict)  # webhook


@dataclass
class DaemonConfig:
    path: str
    state_dir: str
    state_interval: float = 60.0
    log_level: str = "info"
    http_listen: tuple[str, int] | None = ("127.0.0.1", 9108)
    http_allow_remote: bool = False
    watchdog: bool = True
    fsync_interval: float = 1.0
    sensors: list[SensorConfig] = field(default_factory=list)
    sinks: list[SinkConfig] = field(default_factory=list)


# -- helpers ----------------------------------------------------------------------------------
class _Table:
    """A TOML table being consumed key by key; `done()` rejects what is left over."""

    def __init__(self, data: Any, where: str, file: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: {where} must be a table, got {type(data).__name__}")
        self.data = data
        self.where = where
        self.file = file
        self.seen: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.where}.{k}" if self.where else k

    def err(self, k: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key(k)}: {msg}")

    def get(self, k: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False,
            check: Callable[[Any], str | None] | None = None) -> Any:
        self.seen.add(k)
        if k not in self.data:
            if required:
                raise self.err(k, "is required")
            return default
        v = self.data[k]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            names = " or ".join(t.__name__ for t in kinds)
            raise self.err(k, f"expected {names}, got {type(v).__name__} {v!r}")
        if check is not None:
            msg = check(v)
            if msg:
                raise self.err(k, f"{msg} (got {v!r})")
        return v

    def sub(self, k: str, required: bool = False) -> "_Table | None":
        self.seen.add(k)
        if k not in self.data:
            if required:
                raise self.err(k, "is required (a table)")
            return None
        return _Table(self.data[k], self.key(k), self.file)

    def done(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise self.err(extra[0], f"unknown key; known keys here: {', '.join(sorted(self.seen))}")


def _positive(v: float) -> str | None:
    return None if v > 0 and v == v and v != float("inf") else "must be a positive finite number"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 and v == v and v != float("inf") else "must be >= 0 and finite"


def _one_of(options: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number 0-65535"


def _range(lo: int, hi: int) -> Callable[[int], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be in [{lo}, {hi}]"


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9108', '[::1]:9108', ':9108' (loopback) -> (host, port)."""
    m = re.fullmatch(r"\[(?P<h6>[^\]]+)\]:(?P<p>\d{1,5})|(?P<h>[^:\[\]]*):(?P<p2>\d{1,5})", text.strip())
    if not m:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9108 or [::1]:9108")
    host = m.group("h6") if m.group("h6") is not None else (m.group("h") or "127.0.0.1")
    port = int(m.group("p") or m.group("p2"))
    if port > 65535:
        raise ValueError("port must be 0-65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(t: _Table, key: str, default: str | None, allow_remote: bool) -> tuple[str, int] | None:
    v = t.get(key, str, default)
    if v is None or v == "":
        return None
    try:
        host, port = parse_listen(v)
    except ValueError as e:
        raise t.err(key, f"{e} (got {v!r})") from None
    if not allow_remote and not is_loopback(host):
        raise t.err(key, f"{host} is not a loopback address; set allow_remote = true in the same "
                         f"table to listen beyond this machine")
    return host, port


def _tls(t: _Table | None) -> TLSConfig | None:
    if t is None:
        return None
    c = TLSConfig(ca_file=t.get("ca_file", str), cert_file=t.get("cert_file", str),
                  key_file=t.get("key_file", str), insecure=t.get("insecure", bool, False))
    if (c.cert_file is None) != (c.key_file is None):
        raise t.err("cert_file", "cert_file and key_file go together (client certificate)")
    t.done()
    return c


def _mqtt(t: _Table, default_topic: str) -> MQTTConfig:
    c = MQTTConfig(
        host=t.get("host", str, "127.0.0.1"),
        port=t.get("port", int, 1883, check=_port),
        topic=t.get("topic", str, default_topic, check=lambda v: None if v else "must not be empty"),
        qos=t.get("qos", int, 1, check=_range(0, 2)),
        client_id=t.get("client_id", str),
        username=t.get("username", str),
        password=t.get("password", str),
        tls=_tls(t.sub("tls")),
        keepalive=t.get("keepalive", int, 30, check=_range(5, 3600)),
        retain=t.get("retain", bool, False),
    )
    if c.password is not None and c.username is None:
        raise t.err("password", "a password needs a username")
    return c


def _source(t: _Table, sensor_id: str) -> SourceConfig:
    kind = t.get("type", str, required=True, check=_one_of(SOURCE_TYPES))
    allow = t.get("allow_remote", bool, False)
    s = SourceConfig(type=kind, allow_remote=allow)
    if kind in ("udp", "tcp"):
        s.listen = _listen(t, "listen", None, allow)
        if s.listen is None:
            raise t.err("listen", f"is required for a {kind} source (e.g. \"127.0.0.1:5555\")")
    if kind in ("udp", "tcp", "mqtt"):
        s.max_packet_bytes = t.get("max_packet_bytes", int, 65507, check=_range(32, 64 << 20))
        s.reorder_window = t.get("reorder_window", int, 1024, check=_range(0, 1 << 30))
        s.gap_fill_frames = t.get("gap_fill_frames", int, None, check=_range(0, 1 << 24))
    if kind in ("stdin", "serial"):
        s.format = t.get("format", str, "float32", check=_one_of(RAW_FORMATS))
    if kind in ("stdin", "file", "serial"):
        s.chunk_frames = t.get("chunk_frames", int, 1024, check=_range(1, 1 << 22))
    if kind == "file":
        s.path = t.get("path", str, required=True)
        s.speed = t.get("speed", float, 1.0, check=_non_negative)
        s.loop = t.get("loop", bool, False)
        s.fs = t.get("fs", float, None, check=_positive)
        s.assume_model_rate = t.get("assume_model_rate", bool, False)
    if kind == "serial":
        s.device = t.get("device", str, required=True)
        s.baudrate = t.get("baudrate", int, 115200, check=_range(50, 10_000_000))
    if kind == "mqtt":
        s.mqtt = _mqtt(t, f"edgefault/in/{sensor_id}")
    t.done()
    return s


def _sensor(t: _Table, i: int, base: Path) -> SensorConfig:
    sid = t.get("id", str, required=True,
                check=lambda v: None if _ID.match(v) else "must be 1-64 characters of A-Z a-z 0-9 _ . -")
    bundle = t.get("bundle", str, required=True)
    src = t.sub("source", required=True)
    assert src is not None
    chans = t.get("channels", list)
    if chans is not None and (not chans or not all(isinstance(c, str) and c for c in chans)):
        raise t.err("channels", "expected a non-empty list of channel names")
    c = SensorConfig(
        id=sid, bundle=str(_resolve(base, bundle)), source=_source(src, sid),
        input_scale=t.get("input_scale", float, None, check=_positive),
        channels=chans,
        alarm_k=t.get("alarm_k", int, None, check=_range(1, 1000)),
        alarm_n=t.get("alarm_n", int, None, check=_range(1, 1000)),
        drift=t.get("drift", bool, None),
        adaptive_threshold=t.get("adaptive_threshold", bool, None),
        queue_chunks=t.get("queue_chunks", int, 256, check=_range(1, 1 << 20)),
    )
    if c.source.path is not None:
        c.source.path = str(_resolve(base, c.source.path))
    t.done()
    return c


def _sink(t: _Table, i: int, base: Path) -> SinkConfig:
    kind = t.get("type", str, required=True, check=_one_of(SINK_TYPES))
    sid = t.get("id", str, f"{kind}{i}",
                check=lambda v: None if _ID.match(v) else "must be 1-64 characters of A-Z a-z 0-9 _ . -")
    s = SinkConfig(type=kind, id=sid, only_alarms=t.get("only_alarms", bool, False))
    if kind == "file":
        s.path = str(_resolve(base, t.get("path", str, required=True)))
        s.max_bytes = t.get("max_bytes", int, 10 << 20, check=_range(1024, 1 << 40))
        s.backups = t.get("backups", int, 5, check=_range(0, 1000))
    if kind in ("mqtt", "webhook"):
        s.batch = t.get("batch", int, 100, check=_range(1, 100_000))
        s.retry_initial = t.get("retry_initial", float, 0.5, check=_positive)
        s.retry_max = t.get("retry_max", float, 30.0, check=_positive)
        s.spool_max_bytes = t.get("spool_max_bytes", int, 256 << 20, check=_range(4096, 1 << 40))
    if kind == "mqtt":
        s.mqtt = _mqtt(t, "edgefault/events/{sensor}")
    if kind == "webhook":
        s.url = t.get("url", str, required=True,
                      check=lambda v: None if re.match(r"^https?://[^/\s]+", v) else "must be an http:// or https:// URL")
        s.timeout = t.get("timeout", float, 5.0, check=_positive)
        h = t.get("headers", dict, {})
        if not all(isinstance(v, str) for v in h.values()):
            raise t.err("headers", "header values must be strings")
        s.headers = dict(h)
    t.done()
    return s


def _resolve(base: Path, p: str) -> Path:
    q = Path(os.path.expanduser(p))
    return q if q.is_absolute() else base / q


def parse_config(text: str, path: str = "<config>") -> DaemonConfig:
    """Validate TOML text; relative paths are taken relative to the file's folder."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    top = _Table(raw, "", path)
    base = Path(path).resolve().parent if path != "<config>" else Path.cwd()
    d = top.sub("daemon") or _Table({}, "daemon", path)
    state_default = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "edgefault-state"
    cfg = DaemonConfig(
        path=path,
        state_dir=str(_resolve(base, d.get("state_dir", str, state_default))),
        state_interval=d.get("state_interval", float, 60.0, check=_positive),
        log_level=d.get("log_level", str, "info", check=_one_of(("debug", "info", "warning", "error"))),
        watchdog=d.get("watchdog", bool, True),
        fsync_interval=d.get("fsync_interval", float, 1.0, check=_positive),
    )
    d.done()
    h = top.sub("http") or _Table({}, "http", path)
    cfg.http_allow_remote = h.get("allow_remote", bool, False)
    cfg.http_listen = _listen(h, "listen", "127.0.0.1:9108", cfg.http_allow_remote)
    h.done()
    sensors = top.get("sensor", list, None, required=True)
    if not sensors:
        raise top.err("sensor", "at least one [[sensor]] is required")
    cfg.sensors = [_sensor(_Table(s, f"sensor[{i}]", path), i, base) for i, s in enumerate(sensors)]
    ids = [s.id for s in cfg.sensors]
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
        raise ConfigError(f"{path}: sensor id {dup[0]!r} is used twice; ids must be unique")
    sinks = top.get("sink", list, None)
    if sinks is None:
        sinks = [{"type": "stdout"}]
    cfg.sinks = [_sink(_Table(s, f"sink[{i}]", path), i, base) for i, s in enumerate(sinks)]
    sids = [s.id for s in cfg.sinks]
    dup = sorted({x for x in sids if sids.count(x) > 1})
    if dup:
        raise ConfigError(f"{path}: sink id {dup[0]!r} is used twice; give each sink a unique id")
    if sum(s.source.type == "stdin" for s in cfg.sensors) > 1:
        raise ConfigError(f"{path}: only one sensor can read stdin")
    listens = [(s.source.type, s.source.listen) for s in cfg.sensors if s.source.listen is not None]
    for i, a in enumerate(listens):
        if a[1][1] != 0 and a in listens[:i]:
            raise ConfigError(f"{path}: two {a[0]} sources listen on {a[1][0]}:{a[1][1]}")
    top.done()
    return cfg


def load_config(path: str | os.PathLike[str]) -> DaemonConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {p} cannot be read: {e}") from None
    return parse_config(text, str(p))
