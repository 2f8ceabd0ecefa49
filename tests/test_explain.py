"""`edgefault explain`: integrated gradients of a VAE bundle's score (completeness, fault localisation,
device parity, CLI, bad input). Skipped with a reason without torch / onnx / onnxruntime."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="explain needs torch (the [train] extra)")
pytest.importorskip("onnx", reason="the VAE export needs onnx")
pytest.importorskip("onnxscript", reason="the VAE ONNX export needs onnxscript")
pytest.importorskip("onnxruntime", reason="the VAE device model needs onnxruntime")

from conftest import noise_recording  # noqa: E402
from edgefault.cli import main  # noqa: E402
from edgefault.errors import InputError, MissingDependencyError  # noqa: E402
from edgefault.report.explain import explain_recording, explain_windows, window_inputs  # noqa: E402
from edgefault.device.runtime import Runtime  # noqa: E402
from edgefault.train.vae import load_scoring_graph, pack_vae, train_vae, vae_spec, vae_waveform_spec  # noqa: E402


def _npz(path: Path, data: np.ndarray, fs: float, channels: tuple[str, ...]) -> Path:
    np.savez(path, data=data, fs=np.float64(fs), channels=np.array(channels))
    return path


def _with_tone(seed: int, channel: int, hz: float, gain: float = 3.0, seconds: float = 4.0) -> Any:
    """Healthy noise; from the middle on, channel ``channel`` gets a tone at ``hz``."""
    rec = noise_recording(seconds=seconds, seed=seed)
    x = rec.data.copy()
    half = x.shape[0] // 2
    t = np.arange(x.shape[0] - half) / rec.fs
    x[half:, channel] += (gain * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return rec, x


@pytest.fixture(scope="module")
def spectrum_vae(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = noise_recording(seconds=12.0, seed=3)
    spec = vae_spec(rec.fs, rec.channels, window=256, hop=128, n_bands=32)
    res = train_vae([rec], spec, epochs=15, seed=1, target_far=0.02)
    path = tmp_path_factory.mktemp("explain") / "vae.efb"
    pack_vae(res, path, k=2, n=3)
    return path


@pytest.fixture(scope="module")
def waveform_vae(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = noise_recording(seconds=12.0, seed=3)
    spec = vae_waveform_spec(rec.fs, rec.channels, window=256, hop=128)
    res = train_vae([rec], spec, input="waveform", epochs=8, seed=0, target_far=0.02)
    path = tmp_path_factory.mktemp("explain") / "w.efb"
    pack_vae(res, path, k=2, n=3)
    return path


def test_completeness_and_device_parity(spectrum_vae: Path) -> None:
    rt = Runtime(spectrum_vae)
    rec, x = _with_tone(11, 1, 1100.0)
    inputs, ends, finite = window_inputs(rt.bundle, x)
    assert finite.all() and inputs.shape == (ends.shape[0], 2, 32)
    res = explain_windows(load_scoring_graph(spectrum_vae), inputs, steps=32, tol=1e-4)
    delta = res["score"] - res["baseline_score"]
    assert np.abs(delta).max() > 1.0  # the fault windows move the score a lot: a real test of completeness
    np.testing.assert_allclose(res["attr"].sum(axis=(1, 2)), delta, rtol=1e-4, atol=1e-6)
    # the graph's score is the device's (onnxruntime through the Runtime) on the same windows
    ev = [e.score for e in rt.push(x)]
    np.testing.assert_allclose(res["score"], ev, rtol=1e-4)
    # a window equal to the baseline gets zero attribution; few nodes are less complete than many
    base = load_scoring_graph(spectrum_vae).norm.mean.numpy()[None].astype(np.float32)
    z = explain_windows(load_scoring_graph(spectrum_vae), base)
    assert np.abs(z["attr"]).max() == 0.0
    coarse = explain_windows(load_scoring_graph(spectrum_vae), inputs, steps=1, max_steps=1)
    assert np.abs(coarse["completeness_error"]).max() > np.abs(res["completeness_error"]).max()
    gxi = explain_windows(load_scoring_graph(spectrum_vae), inputs[:4], method="gradxinput")
    assert gxi["attr"].shape == (4, 2, 32) and np.isfinite(gxi["attr"]).all()


def test_integrated_gradients_match_a_closed_form() -> None:
    """score = sum w (x - m)^2 + sum c x^3 (the graph's first output): with baseline m the
    integrated gradients are, in closed form, attr_i = w_i (x_i - m_i)^2 + c_i (x_i^3 - m_i^3)."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(2, 5))
    w = rng.uniform(0.5, 2.0, size=(2, 5))
    c = rng.normal(size=(2, 5)) * 0.1

    class Norm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(m))

    class Toy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = Norm()
            self.register_buffer("w", torch.as_tensor(w))
            self.register_buffer("c", torch.as_tensor(c))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
            return ((self.w * (x - self.norm.mean) ** 2 + self.c * x ** 3).sum(dim=(1, 2)),)

    x = rng.normal(size=(6, 2, 5))
    res = explain_windows(Toy(), x, steps=4, tol=1e-12, max_steps=4)  # Gauss-Legendre, 4 nodes: exact for cubics
    ref = w * (x - m) ** 2 + c * (x ** 3 - m ** 3)
    np.testing.assert_allclose(res["attr"], ref, rtol=1e-10, atol=1e-12)
    # gradient x input at x: (x - m) * (2 w (x - m) + 3 c x^2)
    gxi = explain_windows(Toy(), x, method="gradxinput")
    np.testing.assert_allclose(gxi["attr"], (x - m) * (2 * w * (x - m) + 3 * c * x ** 2), rtol=1e-10)
    zero = explain_windows(Toy(), x, baseline="zero", steps=4, max_steps=4)
    np.testing.assert_allclose(zero["attr"], w * ((x - m) ** 2 - m ** 2) + c * x ** 3, rtol=1e-9, atol=1e-12)
    with pytest.raises(InputError, match="baseline"):
        explain_windows(Toy(), x, baseline="median")
    with pytest.raises(InputError, match="method"):
        explain_windows(Toy(), x, method="shap")


@pytest.mark.parametrize("channel, hz", [(1, 1100.0), (0, 420.0)])
def test_top_channel_and_band_are_the_faulty_ones(spectrum_vae: Path, tmp_path: Path, channel: int,
                                                  hz: float) -> None:
    rec, x = _with_tone(12, channel, hz)
    f = _npz(tmp_path / "fault.npz", x, rec.fs, rec.channels)
    rep = explain_recording(spectrum_vae, f)
    assert rep["completeness"]["ok"] and rep["device_parity_max_rel_diff"] < 1e-4
    agg = rep["aggregate_above_threshold"]
    assert agg["n_windows"] >= 0.4 * rep["n_windows"]
    name = rec.channels[channel]
    assert max(agg["channel"], key=agg["channel"].get) == name
    top_band = max(agg["band"], key=agg["band"].get)
    lo, hi = (float(v.removesuffix("Hz")) for v in top_band.split("_")[1:3])
    assert top_band.startswith(f"{name}.band") and lo <= hz <= hi
    # per window: the fault half of the recording points at the same channel
    late = [w for w in rep["windows"] if w["t_start"] >= 2.0]
    assert late and all(max(w["channel"], key=w["channel"].get) == name for w in late)
    assert all(abs(w["attr_sum"] - (w["score"] - w["baseline_score"])) <= 1e-3 * abs(w["score"] - w["baseline_score"])
               + 1e-6 for w in rep["windows"])


def test_time_range_selects_windows(spectrum_vae: Path, tmp_path: Path) -> None:
    rec, x = _with_tone(13, 0, 420.0)
    f = _npz(tmp_path / "f.npz", x, rec.fs, rec.channels)
    rep = explain_recording(spectrum_vae, f, start=1.0, end=2.0, per_window=True)
    ts = [w["t_start"] for w in rep["windows"]]
    assert min(ts) >= 1.0 - 1e-9 and max(w["t"] for w in rep["windows"]) <= 2.0 + 1e-9
    # the windows are those of `edgefault score` (same grid): t values match the Runtime's events
    rt_t = [e.t for e in Runtime(spectrum_vae).push(x) if 1.0 - 1e-9 <= e.t_start and e.t <= 2.0 + 1e-9]
    np.testing.assert_allclose([w["t"] for w in rep["windows"]], rt_t)
    with pytest.raises(InputError, match="holds no full window"):
        explain_recording(spectrum_vae, f, start=3.99)


def test_waveform_bundle_attributes_channel_and_time(waveform_vae: Path, tmp_path: Path) -> None:
    rec = noise_recording(seconds=4.0, seed=11)
    x = rec.data.copy()
    x[:, 0] *= 4.0
    f = _npz(tmp_path / "loud.npz", x, rec.fs, rec.channels)
    rep = explain_recording(waveform_vae, f)
    assert rep["group"] == "time" and rep["completeness"]["ok"]
    agg = rep["aggregate"]
    assert max(agg["channel"], key=agg["channel"].get) == "a"
    assert set(agg["time_all_channels"]) == {f"seg{g:02d}_{32 * g}_{32 * (g + 1)}" for g in range(8)}
    assert sum(agg["time"].values()) == pytest.approx(sum(agg["channel"].values()), rel=1e-9)


def test_cli_explain_and_report_section(spectrum_vae: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec, x = _with_tone(14, 1, 1100.0)
    f = _npz(tmp_path / "fault.npz", x, rec.fs, rec.channels)
    out = tmp_path / "ex.json"
    assert main(["explain", str(spectrum_vae), str(f), "--out", str(out), "--no-windows"]) == 0
    err = capsys.readouterr().err
    assert "top channel b" in err and "completeness" in err
    rep = json.loads(out.read_text())
    assert "windows" not in rep and rep["method"] == "integrated_gradients"
    events = tmp_path / "ev.jsonl"
    assert main(["score", str(spectrum_vae), str(f), "--out", str(events)]) == 0
    html = tmp_path / "r.html"
    assert main(["report", str(events), "--out", str(html), "--explain", str(out)]) == 0
    page = html.read_text()
    assert 'class="explain"' in page and 'data-group="explain-band"' in page
    assert 'data-name="b"' in page


def test_bad_input_is_one_clear_error(spectrum_vae: Path, small_bundle: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rec = noise_recording(seconds=2.0, seed=1)
    f = _npz(tmp_path / "h.npz", rec.data, rec.fs, rec.channels)
    for argv, match in [
        (["explain", str(small_bundle), str(f)], "'vae' bundles only"),
        (["explain", str(spectrum_vae), str(tmp_path / "nothere.npz")], "nothere.npz"),
        (["explain", str(spectrum_vae), str(f), "--channels", "a"], "expects 2"),
        (["explain", str(spectrum_vae), str(f), "--max-windows", "3"], "--max-windows"),
        (["report", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "r.html"), "--explain", "x.json"],
         "not found"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "error:" in err and match in err and "Traceback" not in err, (argv, err)
    x = rec.data.copy()
    x[300:400, 0] = np.nan  # windows holding NaN are skipped and counted, not explained
    g = _npz(tmp_path / "nan.npz", x, rec.fs, rec.channels)
    rep = explain_recording(spectrum_vae, g)
    assert rep["n_windows_skipped_nonfinite"] >= 1 and np.isfinite(rep["aggregate"]["channel"]["a"])


def test_missing_torch_names_the_install(spectrum_vae: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rec = noise_recording(seconds=2.0, seed=1)
    f = _npz(tmp_path / "h.npz", rec.data, rec.fs, rec.channels)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "edgefault.train.vae")
    assert main(["explain", str(spectrum_vae), str(f)]) == 2
    assert "pip install edgefault[train]" in capsys.readouterr().err
    with pytest.raises(MissingDependencyError):
        explain_recording(spectrum_vae, f)
