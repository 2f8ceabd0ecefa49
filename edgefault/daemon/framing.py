"""Sample packet framing for UDP, TCP and MQTT sources (documented in docs/daemon.md).

A packet is a 16-byte little-endian header followed by the samples::

    offset size field
    0      4    magic        b"EFS1"
    4      1    version      1
    5      1    format       1 = int16, 2 = float32 (little-endian)
    6      2    n_channels   uint16, 1..1024
    8      4    seq          uint32 packet sequence number, +1 per packet, wraps at 2**32
    12     4    n_frames     uint32, frames (samples per channel) in this packet
    16     ...  payload      n_frames * n_channels samples, interleaved frame by frame

UDP: one packet per datagram (the datagram length must equal 16 + payload). TCP: packets back
to back on the stream; after a bad header the reader skips to the next magic. MQTT: one packet
per message.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from edgefault.errors import InputError

MAGIC = b"EFS1"
VERSION = 1
HEADER = struct.Struct("<4sBBHII")
HEADER_SIZE = HEADER.size  # 16
FORMATS = {1: np.dtype("<i2"), 2: np.dtype("<f4")}
FORMAT_CODES = {"int16": 1, "float32": 2}
MAX_CHANNELS = 1024


class PacketError(InputError):
    """A packet that cannot be used (an :class:`~edgefault.errors.InputError`, so a ``ValueError``);
    ``reason`` is one of malformed, truncated, oversized, channels."""

    def __init__(self, reason: str, msg: str) -> None:
        super().__init__(msg)
        self.reason = reason


@dataclass(frozen=True)
class Header:
    format: int
    n_channels: int
    seq: int
    n_frames: int

    @property
    def payload_bytes(self) -> int:
        return self.n_frames * self.n_channels * FORMATS[self.format].itemsize


def encode(seq: int, samples: np.ndarray, fmt: str = "float32") -> bytes:
    """Build a packet from (n_frames, n_channels) samples (sender side; used by tests and bench)."""
    code = FORMAT_CODES[fmt]
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    data = np.ascontiguousarray(x, dtype=FORMATS[code]).tobytes()
    return HEADER.pack(MAGIC, VERSION, code, x.shape[1], seq & 0xFFFFFFFF, x.shape[0]) + data


def parse_header(buf: bytes | memoryview, max_packet_bytes: int) -> Header:
    if len(buf) < HEADER_SIZE:
        raise PacketError("truncated", f"packet of {len(buf)} bytes is shorter than the {HEADER_SIZE}-byte header")
    magic, version, fmt, nch, seq, nfr = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise PacketError("malformed", f"packet has bad magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise PacketError("malformed", f"packet version {version} is not supported (expected {VERSION})")
    if fmt not in FORMATS:
        raise PacketError("malformed", f"packet sample format code {fmt} is unknown (1 = int16, 2 = float32)")
    if not 1 <= nch <= MAX_CHANNELS:
        raise PacketError("malformed", f"packet n_channels {nch} is outside 1..{MAX_CHANNELS}")
    h = Header(fmt, nch, seq, nfr)
    if HEADER_SIZE + h.payload_bytes > max_packet_bytes:
        raise PacketError("oversized", f"packet of {HEADER_SIZE + h.payload_bytes} bytes exceeds "
                                       f"max_packet_bytes {max_packet_bytes}")
    return h


def decode(buf: bytes | memoryview, max_packet_bytes: int) -> tuple[Header, np.ndarray]:
    """Parse one whole packet (UDP datagram / MQTT message) -> header and (n_frames, n_channels)."""
    if len(buf) > max_packet_bytes:
        raise PacketError("oversized", f"packet of {len(buf)} bytes exceeds max_packet_bytes {max_packet_bytes}")
    h = parse_header(buf, max_packet_bytes)
    want = HEADER_SIZE + h.payload_bytes
    if len(buf) < want:
        raise PacketError("truncated", f"packet has {len(buf)} bytes, its header announces {want}")
    if len(buf) > want:
        raise PacketError("malformed", f"packet has {len(buf)} bytes, its header announces {want}")
    data = np.frombuffer(buf, dtype=FORMATS[h.format], offset=HEADER_SIZE, count=h.n_frames * h.n_channels)
    return h, data.reshape(h.n_frames, h.n_channels)


class StreamDecoder:
    """Incremental TCP decoder: feed bytes, get packets; resynchronises on the magic."""

    def __init__(self, max_packet_bytes: int) -> None:
        self.max = max_packet_bytes
        self.buf = bytearray()
        self.errors: list[str] = []  # reasons since the last call to take_errors()
        self._in_sync = True

    def feed(self, data: bytes) -> list[tuple[Header, np.ndarray]]:
        """Append bytes; return the complete packets now available. Each stretch of bytes
        skipped to resynchronise counts once in ``errors`` (with the reason that started it)."""
        buf = self.buf
        buf += data
        out = []
        while buf:
            n = len(buf)
            k = min(4, n)
            if buf[:k] != MAGIC[:k]:
                nxt = buf.find(MAGIC, 1)
                if nxt < 0:  # keep a tail that may be the start of the next magic
                    keep = next((j for j in (3, 2, 1) if n > j and buf[n - j:] == MAGIC[:j]), 0)
                    nxt = n - keep
                self._skip(nxt, "malformed")
                continue
            if n < HEADER_SIZE:
                break
            try:
                h = parse_header(bytes(buf[:HEADER_SIZE]), self.max)
            except PacketError as e:
                self._skip(1, e.reason)
                continue
            want = HEADER_SIZE + h.payload_bytes
            if n < want:
                break
            arr = np.frombuffer(bytes(buf[HEADER_SIZE:want]), dtype=FORMATS[h.format])
            out.append((h, arr.reshape(h.n_frames, h.n_channels)))
            del buf[:want]
            self._in_sync = True
        return out

    def _skip(self, n: int, reason: str) -> None:
        if self._in_sync:
            self.errors.append(reason)
            self._in_sync = False
        del self.buf[:n]

    def take_errors(self) -> list[str]:
        e, self.errors = self.errors, []
        return e

    def close(self) -> str | None:
        """End of stream: a partial packet left over is 'truncated'."""
        left = len(self.buf)
        self.buf.clear()
        return "truncated" if left else None


class SequenceTracker:
    """Classifies packet sequence numbers: in order, gap (lost packets), late/duplicate, restart.

    ``check(seq)`` returns (accept, lost): accept False for a late or duplicate packet (dropped),
    lost = number of packets missing before this one. A jump back by more than ``reorder_window``
    is taken as the sender restarting and accepted.
    """

    def __init__(self, reorder_window: int = 1024) -> None:
        self.window = reorder_window
        self.expected: int | None = None
        self.gaps = self.lost = self.late = self.restarts = 0

    def check(self, seq: int) -> tuple[bool, int]:
        if self.expected is None:
            self.expected = (seq + 1) & 0xFFFFFFFF
            return True, 0
        ahead = (seq - self.expected) & 0xFFFFFFFF
        if ahead == 0:
            self.expected = (seq + 1) & 0xFFFFFFFF
            return True, 0
        behind = (self.expected - seq) & 0xFFFFFFFF
        if behind <= self.window:
            self.late += 1
            return False, 0
        if ahead < 0x80000000 and ahead <= (1 << 24):
            self.gaps += 1
            self.lost += ahead
            self.expected = (seq + 1) & 0xFFFFFFFF
            return True, ahead
        self.restarts += 1
        self.expected = (seq + 1) & 0xFFFFFFFF
        return True, 0
