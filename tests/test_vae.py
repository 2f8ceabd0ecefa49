"""VAE anomaly model: training, ONNX export and parity, device scoring through Runtime, bad bundles.

Skipped with a reason when torch / onnx / onnxscript are not installed (the `[train]` extra)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the VAE tests need torch (pip install torch==2.13.0, CPU build)")
onnx = pytest.importorskip("onnx", reason="the VAE tests need onnx (pip install onnx)")
pytest.importorskip("onnxscript", reason="the VAE ONNX export needs onnxscript (pip install onnxscript)")
ort = pytest.importorskip("onnxruntime", reason="the VAE device model needs onnxruntime")

from conftest import noise_recording  # noqa: E402
from edgefault.device.bundle import load_bundle  # noqa: E402
from edgefault.errors import BundleError, InputError, MissingDependencyError  # noqa: E402
from edgefault.export import pack_bundle  # noqa: E402
from edgefault.device.runtime import Runtime  # noqa: E402
from edgefault.train.vae import (band_edges_bins, load_scoring_graph, pack_vae, train_vae, vae_spec,  # noqa: E402
                                 vae_waveform_spec)


def _faulty(rec, gain: float = 3.0):  # type: ignore[no-untyped-def]
    """Channel 'a' gets a strong extra tone at 1100 Hz: a fault on channel a only."""
    x = rec.data.copy()
    t = np.arange(x.shape[0]) / rec.fs
    x[:, 0] += gain * np.sin(2 * np.pi * 1100 * t).astype(np.float32)
    return x


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    rec = noise_recording(seconds=12.0, seed=3)
    spec = vae_spec(rec.fs, rec.channels, window=256, hop=128, n_bands=32)
    res = train_vae([rec], spec, epochs=15, seed=1, target_far=0.02)
    path = tmp_path_factory.mktemp("vae") / "vae.efb"
    bundle = pack_vae(res, path, k=2, n=3)
    return res, bundle, path, spec


def _session_outputs(onnx_bytes: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    s = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, {s.get_inputs()[0].name: x})))


def test_bundle_manifest_and_checked_onnx(trained) -> None:  # type: ignore[no-untyped-def]
    res, bundle, path, spec = trained
    m = bundle.model
    assert m["kind"] == "vae" and m["arch"] == "cnn" and m["input_shape"] == ["batch", 2, 32]
    assert 0.001 < m["mflop_per_window"] < 5.0
    assert m["parity"]["score_max_rel_diff"] <= 1e-4
    model = onnx.load_from_string(bundle.onnx["vae"])
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}
    assert [o.name for o in model.graph.output] == ["score", "err", "recon", "mu", "logvar"]
    assert res.info["stopped"] in ("early_stopping", "max_epochs")
    assert res.info["fit_far_at_threshold"] < 0.2
    # leak safety: fit < val < calib in time, a window apart
    b = {d["block"]: (d["start"], d["stop"]) for d in res.info["blocks"]}
    assert b["fit"][1] + spec.window <= b["val"][0] and b["val"][1] + spec.window <= b["calib"][0]


def test_onnx_matches_torch_on_healthy_and_fault_inputs(trained) -> None:  # type: ignore[no-untyped-def]
    res, bundle, _, spec = trained
    rec = noise_recording(seconds=3.0, seed=9)
    feats = np.concatenate([spec.transform(rec.data)[0], spec.transform(_faulty(rec))[0]])
    x = feats.reshape(-1, 2, 32).astype(np.float32)
    got = _session_outputs(bundle.onnx["vae"], x)
    with torch.no_grad():
        ref = [t.numpy() for t in res.graph(torch.from_numpy(x))]
    rel = np.max(np.abs(got["score"] - ref[0]) / np.abs(ref[0]))
    assert rel <= 1e-4
    np.testing.assert_allclose(got["mu"], ref[3], rtol=1e-4, atol=1e-4)
    # independent recomputation of the score from the graph's outputs
    z = (x - res.graph.norm.mean.numpy()) * res.graph.norm.inv_scale.numpy()
    err = (got["recon"] - z) ** 2 * res.graph.inv_err_ref.numpy()
    np.testing.assert_allclose(got["err"], err, rtol=1e-4, atol=1e-5)
    kl = 0.5 * np.sum(got["mu"] ** 2 + np.exp(got["logvar"]) - 1 - got["logvar"], axis=1)
    np.testing.assert_allclose(got["score"], err.mean(axis=(1, 2)) + res.graph.kl_weight * kl / 64, rtol=1e-4)


def _check_rebuilt_graph_matches_onnx(bundle, x: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    graph = load_scoring_graph(bundle)
    assert not graph.training
    got = _session_outputs(load_bundle(bundle).onnx["vae"] if isinstance(bundle, Path) else bundle.onnx["vae"], x)
    with torch.no_grad():
        ref = dict(zip(graph.output_names, (t.numpy() for t in graph(torch.from_numpy(x)))))
    assert set(ref) <= set(got)
    rel = np.max(np.abs(got["score"] - ref["score"]) / np.abs(ref["score"]))
    assert rel <= 1e-4
    for k in ("err", "recon", "mu", "logvar"):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-4, err_msg=k)
    # differentiable: a gradient of the score with respect to the input exists and is finite
    xt = torch.from_numpy(x[:3].copy()).requires_grad_(True)
    graph(xt)[0].sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all() and float(xt.grad.abs().sum()) > 0


def test_load_scoring_graph_rebuilds_the_onnx_model(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res, bundle, path, spec = trained
    m = bundle.model["torch"]
    assert m["config"]["arch"] == "cnn" and m["config"]["n_channels"] == 2 and m["config"]["n_bins"] == 32
    assert all(k.startswith("torch.") and k in bundle.arrays for k in m["state_dict"])
    rec = noise_recording(seconds=3.0, seed=9)
    x = np.concatenate([spec.transform(rec.data)[0], spec.transform(_faulty(rec))[0]]).reshape(-1, 2, 32)
    x = x.astype(np.float32)
    _check_rebuilt_graph_matches_onnx(path, x)  # from the path, re-read from disk
    # same weights as the trained module, bit for bit
    g = load_scoring_graph(bundle)
    for k, v in res.graph.state_dict().items():
        assert torch.equal(v, g.state_dict()[k]), k
    # bundles without weights / other kinds: clear errors
    model = {k: v for k, v in bundle.model.items() if k != "torch"}
    with pytest.raises(BundleError, match="no PyTorch weights"):
        load_scoring_graph(_repack(bundle, tmp_path, model=model))
    arrays = {k: v for k, v in bundle.arrays.items() if k != "torch.net.to_stats.weight"}
    with pytest.raises(BundleError, match="do not rebuild"):
        load_scoring_graph(_repack(bundle, tmp_path, arrays=arrays))


def test_runtime_scores_contrib_and_root_cause(trained) -> None:  # type: ignore[no-untyped-def]
    res, bundle, path, spec = trained
    rt = Runtime(path)
    later = noise_recording(seconds=4.0, seed=11)
    healthy = [e for e in rt.push(later.data) if e.valid]
    rt.reset()
    fault = [e for e in rt.push(_faulty(later)) if e.valid]
    hs = np.array([e.score for e in healthy])
    fs = np.array([e.score for e in fault])
    assert fs.min() > hs.max()
    assert np.mean(hs > rt.threshold) < 0.1 and np.all(fs > rt.threshold)
    for e in fault:
        c = e.contrib
        assert max(c["channel"], key=c["channel"].get) == "a"
        top_band = next(iter(c["band"]))
        lo, hi = [float(v.removesuffix("Hz")) for v in top_band.split("_")[1:3]]
        assert top_band.startswith("a.band") and lo - 70 <= 1100 <= hi + 70
    # device score = contrib (reconstruction part) + KL part, against the ONNX outputs directly
    feats = spec.transform(later.data)[0]
    batch = rt.model.score(feats, None)
    out = _session_outputs(bundle.onnx["vae"], feats.reshape(-1, 2, 32))
    np.testing.assert_allclose(batch.scores, out["score"], rtol=1e-5)
    nt = rt.model.n_terms
    np.testing.assert_allclose(batch.contrib[:, :nt].sum(axis=1), out["err"].mean(axis=(1, 2)), rtol=1e-5)
    # latent sensitivity view: |mu - mean| / std of the training latent means, per dimension
    lat = np.abs(out["mu"] - bundle.arrays["latent_mean"]) / bundle.arrays["latent_std"]
    np.testing.assert_allclose(batch.contrib[:, nt:], lat, rtol=1e-4, atol=1e-5)
    assert rt.model.contrib_names[nt:] == [f"latent.z{j}" for j in range(8)]
    e = healthy[0]
    assert list(e.contrib["latent"]) == [f"z{j}" for j in range(8)]
    # the channel sums hold only the terms of the score, not the extra views
    assert sum(e.contrib["channel"].values()) == pytest.approx(float(batch.contrib[0, :nt].sum()), rel=1e-5)
    # the training latent means sit close to their own distribution, fault windows further out
    z_h = np.mean([max(e.contrib["latent"].values()) for e in healthy])
    z_f = np.mean([max(e.contrib["latent"].values()) for e in fault])
    assert z_h < 4 and z_f > z_h


def test_nan_input_gives_invalid_event_not_a_crash(trained) -> None:  # type: ignore[no-untyped-def]
    _, _, path, _ = trained
    rt = Runtime(path)
    x = noise_recording(seconds=1.0, seed=5).data.copy()
    x[600, 1] = np.nan
    ev = rt.push(x)
    bad = [e for e in ev if not e.valid]
    assert bad and all(e.score is None and e.flags == ("nonfinite_input",) for e in bad)
    assert any(e.valid for e in ev)


def test_deterministic_with_seed(trained) -> None:  # type: ignore[no-untyped-def]
    res, _, _, spec = trained
    rec = noise_recording(seconds=12.0, seed=3)
    a = train_vae([rec], spec, epochs=8, seed=1, target_far=0.02, export=False)
    b = train_vae([rec], spec, epochs=8, seed=1, target_far=0.02, export=False)
    c = train_vae([rec], spec, epochs=8, seed=2, target_far=0.02, export=False)
    np.testing.assert_array_equal(a.calib_scores, b.calib_scores)
    assert not np.array_equal(a.calib_scores, c.calib_scores)
    for k, v in a.graph.state_dict().items():
        assert torch.equal(v, b.graph.state_dict()[k]), k


def test_transformer_variant_exports_with_parity(tmp_path: Path) -> None:
    rec = noise_recording(seconds=6.0, seed=4)
    spec = vae_spec(rec.fs, rec.channels, window=256, hop=128, n_bands=32)
    res = train_vae([rec], spec, arch="transformer", epochs=3, seed=0, target_far=0.05)
    assert res.parity["score_max_rel_diff"] <= 1e-4
    b = pack_vae(res, tmp_path / "t.efb")
    assert b.model["arch"] == "transformer"
    x = spec.transform(rec.data[:8192])[0].reshape(-1, 2, 32).astype(np.float32)
    _check_rebuilt_graph_matches_onnx(b, x)
    ev = Runtime(b).push(rec.data[:2048])
    assert ev and all(e.valid for e in ev)


def test_lps_input_groups_bins_into_bands(tmp_path: Path) -> None:
    rec = noise_recording(seconds=6.0, seed=4)
    spec = vae_spec(rec.fs, rec.channels, window=256, hop=128, representation="lps")
    edges = band_edges_bins(spec, 16)
    assert edges[0] == 0 and edges[-1] == 129 and np.all(np.diff(edges) > 0)
    res = train_vae([rec], spec, epochs=2, seed=0, target_far=0.05)
    rt = Runtime(pack_vae(res, tmp_path / "l.efb"))
    assert rt.model.n_terms == 2 * (edges.size - 1) and len(rt.model.contrib_names) == rt.model.n_terms + 8
    e = rt.push(_faulty(rec)[:4096])[-1]
    assert set(e.contrib["channel"]) == {"a", "b"} and all(".band" in k for k in e.contrib["band"])


# -- bad bundles ----------------------------------------------------------------------------------
def _repack(bundle, tmp_path: Path, **over):  # type: ignore[no-untyped-def]
    kw = dict(spec=bundle.spec, model=bundle.model, arrays=bundle.arrays, onnx=bundle.onnx,
              thresholds=bundle.thresholds)
    kw.update(over)
    return pack_bundle(tmp_path / "bad.efb", **kw)


def test_onnx_shape_mismatch_is_a_bundle_error(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bundle, _, spec = trained
    one_channel = vae_spec(spec.fs, ["a"], window=256, hop=128, n_bands=32)
    with pytest.raises(BundleError, match=r"shape .*\[batch, 1, 32\]"):
        Runtime(_repack(bundle, tmp_path, spec=one_channel))
    other_bands = vae_spec(spec.fs, ["a", "b"], window=256, hop=128, n_bands=16)
    with pytest.raises(BundleError, match="shape"):
        Runtime(_repack(bundle, tmp_path, spec=other_bands))
    wrong_kind = type(spec)(fs=spec.fs, window=256, hop=128, channels=("a", "b"), blocks=({"kind": "time_stats"},))
    with pytest.raises(BundleError, match="band_energy or log_power_spectrum"):
        Runtime(_repack(bundle, tmp_path, spec=wrong_kind))


def test_broken_onnx_and_missing_members_are_bundle_errors(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bundle, _, _ = trained
    with pytest.raises(BundleError, match="cannot be loaded by onnxruntime"):
        Runtime(_repack(bundle, tmp_path, onnx={"vae": b"not an onnx model"}))
    with pytest.raises(BundleError, match="models/vae.onnx"):
        Runtime(_repack(bundle, tmp_path, onnx={}))
    with pytest.raises(BundleError, match="band_edges"):
        Runtime(_repack(bundle, tmp_path, arrays={"band_edges": np.array([0, 5, 3, 32])}))
    with pytest.raises(BundleError, match="kl_weight"):
        Runtime(_repack(bundle, tmp_path, model={**bundle.model, "kl_weight": "x"}))


def test_model_entries_and_arrays_that_do_not_fit_the_graph_are_bundle_errors(  # type: ignore[no-untyped-def]
        trained, tmp_path: Path) -> None:
    """Entries and arrays checked against each other and against what the ONNX graph gives (one
    probe run at load): refused when the Runtime is built, naming the bundle and the entry, not
    a TypeError / ValueError from numpy while scoring."""
    _, bundle, _, _ = trained
    lm, ls = bundle.arrays["latent_mean"], bundle.arrays["latent_std"]
    n_lat = int(bundle.model["latent"])
    cases = [
        ({"model": {**bundle.model, "latent": [1, 2]}}, r"vae model entry 'latent' must be an integer >= 1"),
        ({"model": {**bundle.model, "latent": "<f4"}}, r"'latent' must be an integer"),
        ({"model": {**bundle.model, "input": 3}}, r"vae model entry 'input' must be a string"),
        ({"model": {**bundle.model, "onnx": ["vae"]}}, r"vae model entry 'onnx' must be a string"),
        ({"arrays": {**bundle.arrays, "band_edges": bundle.arrays["band_edges"].astype(np.float64)}},
         r"vae array 'band_edges' must hold integers"),
        ({"arrays": {**bundle.arrays, "band_edges": bundle.arrays["band_edges"][None, :]}},
         r"vae array 'band_edges' has shape \(1, \d+\), expected \(n,\)"),
        ({"arrays": {**bundle.arrays, "latent_std": np.where(ls == ls.max(), np.nan, ls)}},
         r"latent_mean / latent_std"),
        # consistent with each other but not with the graph's latent width (was a broadcast error in score())
        ({"model": {**bundle.model, "latent": n_lat + 1},
          "arrays": {**bundle.arrays, "latent_mean": np.append(lm, 0.0), "latent_std": np.append(ls, 1.0)}},
         rf"latent_mean / latent_std have {n_lat + 1} values, the ONNX model has {n_lat} latent dimensions"),
    ]
    for over, match in cases:
        path = tmp_path / "bad.efb"
        with pytest.raises(BundleError, match=f"^bundle {re.escape(str(path))}: .*{match}"):
            Runtime(_repack(bundle, tmp_path, **over))


def test_missing_onnxruntime_names_the_install(trained, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _, _, path, _ = trained
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"pip install edgefault\[vae\]"):
        Runtime(path)


def test_train_rejects_bad_arguments() -> None:
    rec = noise_recording(seconds=6.0, seed=4)
    spec = vae_spec(rec.fs, rec.channels, window=256, hop=128, n_bands=32)
    with pytest.raises(InputError, match="architecture"):
        train_vae([rec], spec, arch="rnn")
    with pytest.raises(InputError, match="channels"):
        train_vae([rec], vae_spec(rec.fs, ["a"], window=256, hop=128, n_bands=32), epochs=1)
    with pytest.raises(InputError, match="exactly one block"):
        train_vae([rec], type(spec)(fs=rec.fs, window=256, hop=128, channels=("a", "b"),
                                    blocks=({"kind": "spectral_shape"},)), epochs=1)
    with pytest.raises(InputError, match="no healthy recordings"):
        train_vae([], spec)


def test_cli_train_vae_and_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgefault.cli import main

    rec = noise_recording(seconds=12.0, seed=6)
    f = tmp_path / "h.npz"
    np.savez(f, data=rec.data, fs=np.float64(rec.fs), channels=np.array(rec.channels))
    out = tmp_path / "v.efb"
    assert main(["train", "anomaly", "--method", "vae", str(f), "--window", "256", "--epochs", "5",
                 "--seed", "2", "--target-far", "0.05", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "vae" and summary["epochs_run"] <= 5 and summary["onnx_score_max_rel_diff"] <= 1e-4
    assert load_bundle(out).model["kind"] == "vae"
    assert main(["score", str(out), str(f)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and set(lines[0]["contrib"]) == {"channel", "feature", "band", "latent"}
    assert main(["train", "anomaly", "--method", "vae", "--input", "waveform", str(f), "--window", "256",
                 "--epochs", "3", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["input"] == "waveform"
    assert load_bundle(out).model["input"] == "waveform"
    assert main(["score", str(out), str(f)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and set(lines[0]["contrib"]) == {"channel", "feature", "time", "latent"}
    assert main(["train", "anomaly", "--method", "vae", "--input", "waveform", "--forecast", str(f), "--window",
                 "256", "--epochs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert load_bundle(out).model["forecast"]["horizon"] == 32  # default: window / 8
    assert main(["train", "anomaly", "--method", "vae", "--forecast", "--forecast-horizon", "8", str(f), "--out", str(out)]) == 2
    assert "waveform" in capsys.readouterr().err


# -- waveform input --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def waveform(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    rec = noise_recording(seconds=12.0, seed=3)
    spec = vae_waveform_spec(rec.fs, rec.channels, window=256, hop=128)
    res = train_vae([rec], spec, input="waveform", epochs=12, seed=0, target_far=0.02)
    return res, pack_vae(res, tmp_path_factory.mktemp("wave") / "w.efb", k=2, n=3), spec


def test_waveform_vae_exports_scores_and_attributes_time(waveform) -> None:  # type: ignore[no-untyped-def]
    res, bundle, spec = waveform
    m = bundle.model
    assert m["input"] == "waveform" and m["input_shape"] == ["batch", 2, 256]
    assert m["parity"]["score_max_rel_diff"] <= 1e-4 and m["mflop_per_window"] > 0
    onnx.checker.check_model(onnx.load_from_string(bundle.onnx["vae"]), full_check=True)
    edges = bundle.arrays["segment_edges"]
    assert edges[0] == 0 and edges[-1] == 256 and edges.size == 9
    rt = Runtime(bundle)
    assert rt.model.needs_raw and not rt.model.needs_features
    later = noise_recording(seconds=4.0, seed=11)
    healthy = [e for e in rt.push(later.data) if e.valid]
    rt.reset()
    x = later.data.copy()
    x[:, 0] *= 4.0  # channel a four times louder
    fault = [e for e in rt.push(x) if e.valid]
    hs, fs_ = np.array([e.score for e in healthy]), np.array([e.score for e in fault])
    assert np.median(fs_) > np.quantile(hs, 0.95) and np.mean(fs_ > rt.threshold) > 0.9
    for e in fault:
        c = e.contrib
        assert set(c) == {"channel", "feature", "time", "latent"}
        assert max(c["channel"], key=c["channel"].get) == "a"
        assert list(c["time"]) == [f"seg{g:02d}_{edges[g]}_{edges[g + 1]}" for g in range(8)]
        # the time view and the channel view split the same reconstruction error
        assert sum(c["time"].values()) == pytest.approx(sum(c["channel"].values()), rel=1e-4)
    # device scores against the ONNX model on the raw windows the runtime saw
    _, _, finite, raw = spec.pipeline().push(later.data, 1.0, False, True)
    got = _session_outputs(bundle.onnx["vae"], raw[finite])
    np.testing.assert_allclose([e.score for e in healthy], got["score"], rtol=1e-5)
    _check_rebuilt_graph_matches_onnx(bundle, np.ascontiguousarray(raw[finite][:64]))


def test_waveform_nan_window_is_flagged(waveform) -> None:  # type: ignore[no-untyped-def]
    _, bundle, _ = waveform
    rt = Runtime(bundle)
    x = noise_recording(seconds=1.0, seed=5).data.copy()
    x[600, 0] = np.nan
    ev = rt.push(x)
    assert any(not e.valid and e.score is None for e in ev) and any(e.valid for e in ev)


def test_forecast_head_exports_and_joins_the_score(tmp_path: Path) -> None:
    """Waveform VAE with the forecasting head: ONNX outputs forecast / ferr, the device score adds
    forecast_weight * mean(ferr) (checked against the ONNX score), forecast terms per channel."""
    rec = noise_recording(seconds=8.0, seed=3)
    spec = vae_waveform_spec(rec.fs, rec.channels, window=128, hop=64)
    res = train_vae([rec], spec, input="waveform", epochs=4, seed=0, target_far=0.05, forecast=16,
                    forecast_weight=0.5)
    assert res.graph.output_names[-2:] == ("forecast", "ferr") and res.parity["score_max_rel_diff"] <= 1e-4
    b = pack_vae(res, tmp_path / "f.efb")
    assert b.model["forecast"]["horizon"] == 16 and b.model["forecast_weight"] == 0.5
    model = onnx.load_from_string(b.onnx["vae"])
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output][-2:] == ["forecast", "ferr"]
    rt = Runtime(b)
    _, _, finite, raw = spec.pipeline().push(rec.data[:4096], 1.0, False, True)
    x = np.ascontiguousarray(raw[finite])
    got = _session_outputs(b.onnx["vae"], x)
    assert got["forecast"].shape == (x.shape[0], 2, 16)
    batch = rt.model.score(None, x)
    np.testing.assert_allclose(batch.scores, got["score"], rtol=1e-5)
    nt = rt.model.n_terms
    assert rt.model.contrib_names[nt - 2:nt] == ["a.forecast", "b.forecast"]
    np.testing.assert_allclose(batch.contrib[:, nt - 2:nt].sum(axis=1), 0.5 * got["ferr"].mean(axis=(1, 2)), rtol=1e-5)
    _check_rebuilt_graph_matches_onnx(b, x[:32])
    g = load_scoring_graph(b)
    assert g.forecast is not None and g.forecast_weight == 0.5
    with pytest.raises(InputError, match="waveform"):
        train_vae([rec], vae_spec(rec.fs, rec.channels, window=256, hop=128, n_bands=32), forecast=8, epochs=1)
    with pytest.raises(BundleError, match="forecast_weight must be a number"):
        Runtime(_repack(b, tmp_path, model={**b.model, "forecast_weight": "x"}))


def test_waveform_bundle_with_mismatched_window_is_a_bundle_error(waveform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bundle, spec = waveform
    other = vae_waveform_spec(spec.fs, spec.channels, window=128, hop=64)
    with pytest.raises(BundleError, match=r"\[batch, 2, 128\].*samples per window"):
        Runtime(_repack(bundle, tmp_path, spec=other, arrays={**bundle.arrays, "segment_edges": np.array([0, 64, 128])}))
    with pytest.raises(BundleError, match="segment_edges"):
        Runtime(_repack(bundle, tmp_path, arrays={**bundle.arrays, "segment_edges": np.array([0, 300])}))
    with pytest.raises(BundleError, match="input 'wave'"):
        Runtime(_repack(bundle, tmp_path, model={**bundle.model, "input": "wave"}))
    with pytest.raises(BundleError, match="latent_mean / latent_std"):
        Runtime(_repack(bundle, tmp_path, arrays={**bundle.arrays, "latent_std": -bundle.arrays["latent_std"]}))


def test_forecast_weight_without_ferr_output_is_a_bundle_error(waveform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bundle, _ = waveform
    with pytest.raises(BundleError, match="no 'ferr' output"):
        Runtime(_repack(bundle, tmp_path, model={**bundle.model, "forecast_weight": 1.0}))


@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_waveform_short_windows_many_sensors_cmapss_shape(arch: str, tmp_path: Path) -> None:
    """C-MAPSS-like: 21 sensors sampled once per cycle with very different levels and scales (some
    constant), windows of 30 cycles, hop 1."""
    from edgefault.io.readers import Recording

    rng = np.random.default_rng(0)
    n, c = 3000, 21
    level = rng.uniform(-5, 2000, size=c)
    scale = 10.0 ** rng.uniform(-3, 1, size=c)
    scale[[0, 4, 9]] = 0.0  # constant sensors
    drift = np.cumsum(rng.normal(size=(n, 1)), axis=0) * 0.01
    x = (level + scale * (rng.normal(size=(n, c)) + drift)).astype(np.float32)
    names = tuple(f"s{i + 1}" for i in range(c))
    rec = Recording(data=x, fs=1.0, channels=names, path="synthetic_cmapss")
    spec = vae_waveform_spec(1.0, names, window=30, hop=1)
    res = train_vae([rec], spec, arch=arch, input="waveform", epochs=4, seed=0, target_far=0.05)
    assert res.parity["score_max_rel_diff"] <= 1e-4
    b = pack_vae(res, tmp_path / "c.efb")
    assert b.model["input_shape"] == ["batch", 21, 30]
    rt = Runtime(b)
    ev = rt.push(x[:200])
    assert len(ev) == 171 and all(e.valid for e in ev)
    assert len(ev[0].contrib["channel"]) == 21 and len(ev[0].contrib["time"]) == 8
    y = x[:200].copy()
    y[:, 7] += 20 * max(scale[7], 1e-3)  # sensor s8 shifts by 20 of its standard deviations
    rt.reset()
    ev = rt.push(y)
    assert all(max(e.contrib["channel"], key=e.contrib["channel"].get) == "s8" for e in ev)


@pytest.mark.data
def test_vae_cwru_eval_against_gaussian(shared_data: Path, tmp_path: Path) -> None:
    """Real data: VAE on DE+FE band spectra, healthy-vs-fault over every fault recording at every
    load, leak-safe split; the Gaussian baseline runs on the same blocks."""
    from edgefault.cli import main

    out = tmp_path / "r.json"
    assert main(["eval", "--method", "vae", "--manifest", str(shared_data / "cwru" / "manifest.csv"),
                 "--fs", "12000", "--channels", "DE,FE", "--hop", "128", "--epochs", "60",
                 "--out", str(out)]) == 0
    r = json.loads(out.read_text())["result"]
    assert r["auroc"] >= 0.995
    assert r["false_alarm_rate"] <= 0.02 and r["n_healthy_test_windows"] >= 100
    assert set(r["by_load_hp"]) == {"0"} and set(r["detection_rate_by_load_hp"]) == {"0", "1", "2", "3"}
    assert r["gaussian"]["auroc"] >= 0.99
    assert r["onnx_score_max_rel_diff"] <= 1e-4
    # root cause: the drive-end channel carries the most error for drive-end faults
    assert r["top_channel_is_DE_for_drive_end_faults"] >= 0.9 and r["n_alarmed_drive_end_windows"] > 1000


def test_missing_torch_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from edgefault.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "edgefault.train.vae")
    with pytest.raises(MissingDependencyError, match=r"pip install edgefault\[train\].*torch==2\.13\.0"):
        importlib.import_module("edgefault.train.vae")
    f = tmp_path / "h.npz"
    rec = noise_recording(seconds=2.0, seed=1)
    np.savez(f, data=rec.data, fs=np.float64(rec.fs), channels=np.array(rec.channels))
    assert main(["train", "anomaly", "--method", "vae", str(f), "--out", str(tmp_path / "x.efb")]) == 2
    assert "pip install edgefault[train]" in capsys.readouterr().err


def test_device_model_math_on_a_hand_built_fixed_batch_graph(tmp_path: Path) -> None:
    """An ONNX graph written by hand (batch fixed at 1: the device loops over windows):
    err = x^2, mu = mean of x over inputs, logvar = 0. The device score must equal
    recon_weight * mean(x^2) + kl_weight * 0.5 * sum(mu^2) / n_inputs, computed here in numpy."""
    from onnx import TensorProto, helper

    spec = vae_spec(4000.0, ["a", "b"], window=256, hop=128, n_bands=32)
    x_in = helper.make_tensor_value_info("spectrum", TensorProto.FLOAT, [1, 2, 32])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shp) for n, shp in
            (("err", [1, 2, 32]), ("mu", [1, 2]), ("logvar", [1, 2]))]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    nodes = [helper.make_node("Mul", ["spectrum", "spectrum"], ["err"]),
             helper.make_node("ReduceMean", ["spectrum", "axes"], ["mu"], keepdims=0),
             helper.make_node("Sub", ["mu", "mu"], ["logvar"])]
    graph = helper.make_graph(nodes, "hand", [x_in], outs, initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    b = pack_bundle(tmp_path / "hand.efb", spec=spec,
                    model={"kind": "vae", "onnx": "vae", "recon_weight": 0.5, "kl_weight": 2.0},
                    arrays={"band_edges": np.array([0, 8, 32])}, onnx={"vae": model.SerializeToString()},
                    thresholds={"threshold": 1e9})
    rt = Runtime(b)
    assert rt.model._fixed_batch and rt.model.contrib_names[:2] == ["a.band00_0_450Hz", "a.band01_450_1800Hz"]
    feats = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    batch = rt.model.score(feats, None)
    x = feats.reshape(5, 2, 32).astype(np.float64)
    mu = x.mean(axis=2)
    ref = 0.5 * (x ** 2).mean(axis=(1, 2)) + 2.0 * 0.5 * (mu ** 2).sum(axis=1) / 64
    np.testing.assert_allclose(batch.scores, ref, rtol=1e-5)
    ref_contrib = np.stack([0.5 * (x[:, c, lo:hi] ** 2).sum(axis=1) / 64 for c in range(2) for lo, hi in
                            ((0, 8), (8, 32))], axis=1)
    np.testing.assert_allclose(batch.contrib, ref_contrib, rtol=1e-5)
    # a fixed batch other than 1 is refused
    bad = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("spectrum", TensorProto.FLOAT, [4, 2, 32])],
                            outs, initializer=[axes])
    with pytest.raises(BundleError, match=r"shape \[4, 2, 32\]"):
        Runtime(_repack(b, tmp_path, onnx={"vae": helper.make_model(
            bad, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()}))
