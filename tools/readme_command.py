"""Print one of the README's "Two commands" exactly as written (.ci/run runs them from here, so
CI runs what the README says): `python tools/readme_command.py demo|test`."""
from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def two_commands(text: str) -> dict[str, str]:
    """{"demo": ..., "test": ...}: the one-line bash blocks of the "## Two commands" section."""
    m = re.search(r"^## Two commands\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        raise SystemExit(f"{README}: no '## Two commands' section")
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", m.group(1), re.S)]
    out = {}
    for b in blocks:
        if "\n" in b:
            raise SystemExit(f"{README}: a 'Two commands' block holds more than one line: {b!r}")
        out["demo" if "edgefault demo" in b else "test" if "pytest" in b else b] = b
    if set(out) != {"demo", "test"}:
        raise SystemExit(f"{README}: expected a demo and a test command in 'Two commands', got {blocks}")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("demo", "test"):
        raise SystemExit("usage: python tools/readme_command.py demo|test")
    print(two_commands(README.read_text())[sys.argv[1]])
