"""A dependency-free progress bar on stderr, shown only on a terminal."""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def progress(items: Sequence[T] | Iterable[T], desc: str = "", total: int | None = None) -> Iterator[T]:
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)  # type: ignore[arg-type]
    show = sys.stderr.isatty()
    t0 = time.monotonic()
    for i, item in enumerate(items):
        if show:
            frac = f"{i}/{total}" if total else str(i)
            bar = ""
            if total:
                filled = int(24 * i / max(total, 1))
                bar = "[" + "#" * filled + "." * (24 - filled) + "] "
            sys.stderr.write(f"\r{desc} {bar}{frac} {time.monotonic() - t0:5.1f}s")
            sys.stderr.flush()
        yield item
    if show:
        sys.stderr.write(f"\r{desc} done: {total if total is not None else ''} in {time.monotonic() - t0:.1f}s\n")
        sys.stderr.flush()
