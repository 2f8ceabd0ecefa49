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


def pytest_report_header(config: pytest.Config) -> str:
    import edgefault

    return f"edgefault {edgefault.__version__} from {Path(edgefault.__file__).parent}"


def same_stream(events):  # type: ignore[no-untyped-def]
    """Event dicts without the receive-clock wall time (which differs between two runs of the same
    stream), for comparing runs."""
    return [{k: v for k, v in e.to_dict().items() if k not in ("t_wall", "t_wall_source")} for e in events]


def noise_recording(seconds: float = 20.0, fs: float = 4000.0, channels: tuple[str, ...] = ("a", "b"),
                    seed: int = 0):  # type: ignore[no-untyped-def]
    """Stationary coloured noise plus a tone: a stand-in healthy machine for unit tests."""
    import numpy as np

    from edgefault.io.readers import Recording

    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    cols = []
    for c in range(len(channels)):
        w = rng.normal(size=n + 8)
        x = np.convolve(w, np.ones(8) / 8, mode="valid")[:n] + 0.5 * np.sin(2 * np.pi * (50 + 30 * c) * t)
        cols.append(x)
    data = np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)
    return Recording(data=data, fs=fs, channels=channels, path=f"noise-{seed}")


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Gaussian anomaly bundle trained on 20 s of 2-channel noise at 4 kHz (window 256)."""
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    rec = noise_recording()
    spec = FeatureSpec.for_anomaly(rec.fs, rec.channels, window=256, hop=128, n_bands=8)
    result = train_gaussian([rec], spec, target_far=0.02)
    path = tmp_path_factory.mktemp("bundle") / "small.efb"
    pack_gaussian(result, path, k=2, n=3, name="unit-test")
    return path


def drift_bundle(path: Path, seconds: float = 60.0, fs: float = 12000.0, drift_far: float = 1e-3) -> Path:
    """A Gaussian bundle with drift monitors on one simulated healthy bearing channel ``x``
    (time statistics and 12 log band energies, window 1024, hop 512)."""
    from edgefault.device.spec import FeatureSpec
    from edgefault.io.readers import Recording
    from edgefault.io.synth import bearing_signal
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    spec = FeatureSpec(fs=fs, window=1024, hop=512, channels=("x",), blocks=(
        {"kind": "time_stats", "stats": ["rms", "kurtosis", "crest_factor"]},
        {"kind": "band_energy", "n_bands": 12, "spacing": "log", "fmin": 50.0, "fmax": 5000.0, "log": True}))
    x = bearing_signal(seconds, fs, seed=1)[:, None]
    res = train_gaussian([Recording(data=x, fs=fs, channels=("x",), path="healthy")], spec, target_far=0.01,
                         drift_far=drift_far)
    pack_gaussian(res, path)
    return path


def gain_change_run(fs: float = 12000.0):  # type: ignore[no-untyped-def]
    """20 s of healthy bearing, then 30 s at x1.5 gain: drift, then a retrain recommendation."""
    import numpy as np

    from edgefault.io.synth import bearing_signal

    return np.concatenate([bearing_signal(20.0, fs, seed=21), 1.5 * bearing_signal(30.0, fs, seed=22)])


def classifier_run(d: Path) -> dict[str, Path]:
    """An SFDSC bundle trained by the CLI on healthy / inner-race recordings (calibrated on their
    later quarter), a later recording that turns from healthy to inner race half-way scored by
    `edgefault score`, and its `edgefault report` page. Skips where scikit-learn is older than
    1.6 (SFDSC training uses validate_data; armhf's Debian scikit-learn is 1.2)."""
    import numpy as np

    pytest.importorskip("sklearn", minversion="1.6", reason="SFDSC training needs scikit-learn >= 1.6")

    from edgefault.cli import main
    from edgefault.io.synth import bearing_signal

    fs = 12000.0
    rows = ["path,fault,fs_hz"]
    for i, fault in enumerate([None, "inner_race"]):
        x = bearing_signal(6.0, fs, fault=fault, severity=1.0, seed=30 + i)
        np.savez(d / f"r{i}.npz", data=x[:, None], fs=np.float64(fs), channels=np.array(["DE"]))
        rows.append(f"r{i}.npz,{fault or 'normal'},12000")
    (d / "m.csv").write_text("\n".join(rows) + "\n")
    bundle = d / "c.efb"
    assert main(["train", "classify", "--method", "sfdsc", "--manifest", str(d / "m.csv"), "--out", str(bundle),
                 "--atoms", "3", "--max-windows", "40"]) == 0
    later = np.concatenate([bearing_signal(4.0, fs, seed=40), bearing_signal(4.0, fs, fault="inner_race",
                                                                             severity=1.0, seed=41)])
    np.savez(d / "later.npz", data=later[:, None], fs=np.float64(fs), channels=np.array(["DE"]))
    events = d / "ev.jsonl"
    assert main(["score", str(bundle), str(d / "later.npz"), "--out", str(events)]) == 0
    page = d / "r.html"
    assert main(["report", str(events), "--out", str(page), "--bundle", str(bundle)]) == 0
    return {"bundle": bundle, "events": events, "page": page}
