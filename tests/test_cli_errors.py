"""Issue #18 item 4: every CLI error names the command line's option (--fs, --window, ...), never a
Python parameter the CLI does not have (fs=, default_fs=, model_fs, format=, ...), and is one
clean line with exit status 2 (no traceback)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import noise_recording

from edgefault.cli import main

# Python-only names: keyword arguments (name=) and the library's parameter names.
PYTHON_ONLY = re.compile(r"\b[a-z][a-z_]*=(?![0-9])|\b(default_fs|model_fs|target_far|calib_fraction|n_bands|"
                         r"assume_model_rate|alarm_k|alarm_n|drift_far|blocks\[)")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli_errors")
    rec = noise_recording(seconds=4.0, seed=5)
    np.savez(d / "h.npz", data=rec.data, fs=np.float64(rec.fs), channels=np.array(rec.channels))
    np.savez(d / "nofs.npz", data=rec.data, channels=np.array(rec.channels))  # stores no rate
    (d / "bad.wav").write_bytes(b"RIFFxxxxWAVEjunk")
    (d / "bad.efb").write_bytes(b"not a bundle")
    (d / "h.foo").write_bytes(b"1,2\n")
    return d


def _run(argv: list[str], d: Path, small_bundle: Path, capsys: pytest.CaptureFixture[str]) -> str:
    argv = [a.replace("{d}", str(d)).replace("{bundle}", str(small_bundle)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse refuses a malformed option value
        rc = e.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "error:" in err
    return err.strip().splitlines()[-1]


TRAIN = ["train", "anomaly", "{d}/h.npz", "--out", "{d}/x.efb", "--window", "256"]
SCORE = ["score", "{bundle}", "{d}/h.npz"]


@pytest.mark.parametrize("argv, option", [
    # a file that stores no sample rate: each command names its own options
    (["train", "anomaly", "{d}/nofs.npz", "--out", "{d}/x.efb"], "--file-fs"),
    (["train", "anomaly", "{d}/nofs.npz", "--out", "{d}/x.efb", "--fs", "4000"], "--assume-model-rate"),
    (["score", "{bundle}", "{d}/nofs.npz"], "--fs"),
    (["score", "{bundle}", "{d}/nofs.npz"], "--assume-model-rate"),
    (["explain", "{bundle}", "{d}/nofs.npz"], "vae"),  # not a VAE bundle: said before the file is read
    # a format the command line cannot take from the extension (the CLI has no --format)
    (["score", "{bundle}", "{d}/h.foo"], "extension"),
    (["train", "anomaly", "{d}/h.foo", "--out", "{d}/x.efb"], "extension"),
    # wrong channel names, bad files, wrong bundle kind
    (["score", "{bundle}", "{d}/h.npz", "--channels", "a,zz"], "zz"),
    (["score", "{bundle}", "{d}/h.npz", "--channels", "a"], "--channels"),
    (["train", "anomaly", "{d}/h.npz", "--out", "{d}/x.efb", "--channels", ","], "--channels"),
    (["score", "{bundle}", "{d}/bad.wav"], "bad.wav"),
    (["score", "{d}/bad.efb", "{d}/h.npz"], "bad.efb"),
    (["info", "{d}/h.npz"], "h.npz"),
    (["train", "classify", "--out", "{d}/x.efb"], "--manifest"),
    (["eval"], "--manifest"),
    # bad numbers: refused naming the option
    (TRAIN + ["--fs", "-1"], "--fs"),
    (TRAIN + ["--file-fs", "0"], "--file-fs"),
    (TRAIN + ["--window", "0"], "--window"),
    (TRAIN + ["--window", "abc"], "--window"),
    (TRAIN + ["--hop", "0"], "--hop"),
    (TRAIN + ["--target-far", "2"], "--target-far"),
    (TRAIN + ["--target-far", "0"], "--target-far"),
    (TRAIN + ["--calib-fraction", "1.5"], "--calib-fraction"),
    (TRAIN + ["--k", "9", "--n", "5"], "--k"),
    (TRAIN + ["--fmax", "99999"], "--fmax"),
    (TRAIN + ["--bands", "0"], "--bands"),
    (TRAIN[:-1] + ["100000"], "--window"),
    (TRAIN[:-2] + ["--window", "1024", "--hop", "1024"], "--hop"),  # too few windows to calibrate
    (SCORE + ["--fs", "-5"], "--fs"),
    (SCORE + ["--chunk", "0"], "--chunk"),
    (SCORE + ["--k", "9"], "--k"),
    (SCORE + ["--k", "4", "--n", "3"], "--n"),
    (["report", "{d}/h.npz", "--out", "{d}/r.html", "--max-plots", "-1"], "--max-plots"),
    (["demo", "--seed", "-1"], "--seed"),
    (SCORE + ["--channels", "a,a"], "--channels a,a"),
    (TRAIN + ["--channels", "a,a"], "--channels a,a"),
    (TRAIN + ["--fs", "1"], "Hz"),  # a rate ratio the resampler cannot take: no fs_in= / fs_out=
    (TRAIN + ["--calibration", "pot"], "--calibration lognormal"),
    (["train", "anomaly", "--method", "nope", "{d}/h.npz", "--out", "{d}/x.efb"], "--method"),
    (["eval", "--dataset", "cmapss"], "--data"),
])
def test_cli_errors_name_cli_options(argv: list[str], option: str, inputs: Path, small_bundle: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    line = _run(argv, inputs, small_bundle, capsys)
    assert option in line, line
    assert not PYTHON_ONLY.search(line), f"names a Python parameter: {line}"


def test_cli_message_translates_library_parameter_names() -> None:
    """The translation layer itself: the library's API wording becomes each command's options."""
    from edgefault.cli import cli_message
    from edgefault.errors import InputError, RateUnknownError

    e = RateUnknownError("x (npy) does not store its sample rate: pass fs=<Hz> or default_fs=", path="x.npy",
                         format="npy", model_fs=4000.0)
    assert "--file-fs" in cli_message("train", e) and "--fs" in cli_message("score", e)
    assert "4000 Hz" in cli_message("score", e) and "fs=" not in cli_message("score", e)
    assert cli_message("score", InputError("default_fs must be a positive finite number")) \
        == "--fs must be a positive finite number"
    assert cli_message("train", InputError("model_fs must be positive")) == "--fs must be positive"
    assert cli_message("eval", InputError("edgefault eval: --manifest is required")) == "--manifest is required"
    warning = "probably sampled faster than 4000 Hz: check its rate and give it with --fs <Hz> (fs=)"
    assert cli_message("train", InputError(warning)).endswith("give it with --file-fs <Hz> (or a manifest fs column)")
    assert cli_message("score", InputError(warning)).endswith("give it with --fs <Hz>")
    assert "min_len" not in cli_message("eval", InputError("x.mat: 100 samples, fewer than min_len=1024"))
    assert "--window" in cli_message("eval", InputError("x.mat: 100 samples, fewer than min_len=1024"))
    assert cli_message("explain", InputError("time range [5.0, 1.0) s of h.npz (4.000 s long) holds no full "
                                             "window of 0.064 s")).endswith("(choose --start / --end)")
