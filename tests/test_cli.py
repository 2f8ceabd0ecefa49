from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import noise_recording
from edgefault.cli import main


def _write_npz(path: Path, data: np.ndarray, fs: float, channels: tuple[str, ...]) -> Path:
    np.savez(path, data=data, fs=np.float64(fs), channels=np.array(channels))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    healthy = noise_recording(seconds=20.0, seed=1)
    later = noise_recording(seconds=4.0, seed=2)
    faulty = later.data.copy()
    faulty[:, 0] *= 4.0
    out = {
        "healthy": _write_npz(d / "healthy.npz", healthy.data, healthy.fs, healthy.channels),
        "later": _write_npz(d / "later.npz", later.data, later.fs, later.channels),
        "faulty": _write_npz(d / "faulty.npz", faulty, later.fs, later.channels),
    }
    (d / "m.csv").write_text("path,label,fs\nhealthy.npz,normal,4000\nlater.npz,normal,4000\nfaulty.npz,fault,4000\n")
    out["manifest"] = d / "m.csv"
    out["dir"] = d
    return out


def test_train_score_info_roundtrip(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bundle = files["dir"] / "m.efb"
    rc = main(["train", "anomaly", "--method", "gaussian", str(files["healthy"]), "--out", str(bundle),
               "--window", "256", "--target-far", "0.02"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["channels"] == ["a", "b"] and summary["threshold"] > 0
    rc = main(["score", str(bundle), str(files["later"]), str(files["faulty"])])
    assert rc == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    n_per_file = (16000 - 256) // 128 + 1
    assert len(lines) == 2 * n_per_file
    for key in ("file", "t", "score", "threshold", "anomaly", "label", "proba", "contrib"):
        assert key in lines[0]
    later = [l for l in lines if l["file"].endswith("later.npz")]
    faulty = [l for l in lines if l["file"].endswith("faulty.npz")]
    assert np.mean([l["anomaly"] for l in later]) < 0.1
    assert np.mean([l["anomaly"] for l in faulty]) > 0.9
    assert all(max(l["contrib"]["channel"], key=l["contrib"]["channel"].get) == "a" for l in faulty if l["anomaly"])
    assert main(["info", str(bundle)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "gaussian" and info["channels"] == ["a", "b"]


def test_train_from_manifest_uses_healthy_rows(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bundle = files["dir"] / "m2.efb"
    assert main(["train", "anomaly", "--manifest", str(files["manifest"]), "--out", str(bundle),
                 "--window", "256", "--target-far", "0.02"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_train_windows"] > 100


def test_eval_split_reports_metrics(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["dir"] / "metrics.json"
    assert main(["eval", "--manifest", str(files["manifest"]), "--channels", "a,b", "--window", "256",
                 "--target-far", "0.02", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())["result"]
    for key in ("auroc", "false_alarm_rate", "accuracy", "macro_f1", "confusion", "detection_rate"):
        assert key in rep
    assert rep["auroc"] > 0.99
    # leak safety: the healthy test blocks start after train+calib (+ gap) of the same file
    for blk in rep["healthy_blocks"]:
        assert blk["calib"][1] + 256 <= blk["test"][0]


@pytest.mark.parametrize("argv, match", [
    (["score", "missing.efb", "x.npz"], "not found"),
    (["train", "anomaly", "--out", "x.efb"], "give healthy recordings"),
    (["train", "anomaly", "nothere.wav", "--out", "x.efb"], "nothere.wav"),
])
def test_errors_are_one_clear_line(argv: list[str], match: str, capsys: pytest.CaptureFixture[str],
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and match in err and "Traceback" not in err


def test_score_rejects_wrong_channel_count(files: dict[str, Path], small_bundle: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(small_bundle), str(files["later"]), "--channels", "a"]) == 2
    assert "expects 2" in capsys.readouterr().err


def test_console_script_version_and_demo(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("edgefault")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "edgefault"]
    out = subprocess.run(cmd + ["--version"], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.startswith("edgefault ")
    r = subprocess.run(cmd + ["demo", "--out-dir", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "alarm at" in r.stdout and "never raised" in r.stdout
    events = [json.loads(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(events) > 1000


def test_train_drift_options_and_score_overrides(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """train anomaly --drift-far / --adaptive-threshold land in the bundle; --drift-far off packs
    none; score --no-drift / --adaptive-threshold / --no-adaptive-threshold override at run time."""
    from edgefault.device.bundle import load_bundle

    d = files["dir"]
    on, off = d / "drift_on.efb", d / "drift_off.efb"
    assert main(["train", "anomaly", str(files["healthy"]), "--out", str(on), "--window", "256",
                 "--drift-far", "1e-3", "--adaptive-threshold"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["drift_far"] == 1e-3 and summary["adaptive_threshold"] is True and summary["drift_score_h"] > 0
    dr = load_bundle(on).thresholds["drift"]
    assert dr["target_far"] == 1e-3 and dr["adaptive"]["enabled"] is True
    assert main(["train", "anomaly", str(files["healthy"]), "--out", str(off), "--window", "256",
                 "--drift-far", "off"]) == 0
    assert json.loads(capsys.readouterr().out)["drift_far"] is None
    assert "drift" not in load_bundle(off).thresholds

    def score(*extra: str) -> list[dict[str, Any]]:
        assert main(["score", *extra, str(files["later"])]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    base = score(str(on))
    assert base[0]["drift"] is not None
    thr = {round(e["threshold"], 9) for e in base}
    assert len(thr) > 1  # the bundle's adaptive threshold moves
    no_drift = score("--no-drift", str(on))
    assert all(e["drift"] is None for e in no_drift) and len({round(e["threshold"], 9) for e in no_drift}) > 1
    fixed = score("--no-adaptive-threshold", str(on))
    assert len({round(e["threshold"], 9) for e in fixed}) == 1 and fixed[0]["drift"] is not None
    # forcing drift features on a bundle without drift settings is a one-line error
    assert main(["score", "--adaptive-threshold", str(off), str(files["later"])]) == 2
    assert "no drift calibration" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "0.5"])
def test_train_rejects_bad_drift_far(value: str, files: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc_or_exit: int | None
    try:
        rc_or_exit = main(["train", "anomaly", str(files["healthy"]), "--out", str(tmp_path / "x.efb"),
                           "--window", "256", "--drift-far", value])
    except SystemExit as e:  # argparse: a malformed value
        rc_or_exit = int(e.code or 0)
    assert rc_or_exit == 2
    assert "drift" in capsys.readouterr().err


def test_score_rate_less_file_refused_unless_rate_given(files: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #18 item 1: a file that stores no rate is not read at the bundle's rate silently."""
    bundle = tmp_path / "m.efb"
    assert main(["train", "anomaly", "--method", "gaussian", str(files["healthy"]), "--out", str(bundle),
                 "--window", "256", "--target-far", "0.02"]) == 0
    assert "(header)" in capsys.readouterr().err  # the npz stores its fs
    assert main(["info", str(bundle)]) == 0  # in process: `python -m` from the repository root imports the tree
    info = json.loads(capsys.readouterr().out)
    assert info["training"]["file_rates"] == [{"file": "healthy.npz", "fs": 4000.0, "fs_source": "header"}]
    with np.load(files["later"]) as z:
        npy = tmp_path / "later_no_fs.npz"  # the same data and channels, without its fs entry
        np.savez(npy, data=z["data"], channels=z["channels"])
    assert main(["score", str(bundle), str(npy)]) == 2
    err = capsys.readouterr().err
    assert str(npy) in err and "--fs" in err and "--assume-model-rate" in err
    assert main(["score", str(bundle), str(npy), "--assume-model-rate"]) == 0
    captured = capsys.readouterr()
    assert f"{npy}: read at 4000 Hz (model)" in captured.err and captured.out.count("\n") > 10
    assert main(["score", str(bundle), str(npy), "--fs", "8000"]) == 0
    assert f"{npy}: read at 8000 Hz (option), resampled to 4000 Hz" in capsys.readouterr().err
