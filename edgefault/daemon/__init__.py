"""`edgefault serve`: the field daemon (config, sources, sinks, metrics, state, systemd).

See docs/daemon.md. Imports only numpy and the stdlib at module level; paho-mqtt and pyserial
are imported when an MQTT or serial source/sink is configured (``pip install edgefault[daemon]``).
"""
from __future__ import annotations

from edgefault.daemon.config import ConfigError, DaemonConfig, load_config, parse_config
from edgefault.daemon.service import Daemon, serve

__all__ = ["ConfigError", "DaemonConfig", "Daemon", "load_config", "parse_config", "serve"]
