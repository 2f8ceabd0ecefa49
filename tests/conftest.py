from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("EDGEFAULT_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (CWRU, C-MAPSS); skips the test when it is absent."""
    d = _shared_data_dir()
    if not (d / "cwru" / "manifest.csv").is_file():
        pytest.skip(f"real data not found at {d} (set EDGEFAULT_SHARED_DATA to its path)")
    return d
