"""Kind ``vae``: a 1D-CNN or Transformer VAE over per-channel spectra or raw windows, exported to
ONNX and run in onnxruntime on the device. Training: :mod:`edgefault.train.vae` (PyTorch,
``pip install "edgefault[train]"``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgefault.device.bundle import Bundle
from edgefault.errors import BundleError, MissingDependencyError
from edgefault.kinds import register
from edgefault.kinds.base import (ModelKind, ScoreBatch, TrainData, Trained, bundle_where, checked_array, drift_summary,
                                  model_number, onnx_session)

TRAINING_KEYS = ("arch", "input", "epochs_run", "best_epoch", "stopped", "train_seconds", "n_fit_windows",
                 "n_val_windows", "n_parameters")


class VAEDeviceModel:
    """VAE over per-channel spectra or raw windows (``model.input`` = spectrum | waveform; bundle
    member ``models/<model.onnx>.onnx``), run in onnxruntime with one thread, no spinning,
    sequential execution.

    score = recon_weight * mean(err) + kl_weight * KL / n_inputs (weights from the bundle), where
    ``err`` is the graph's reconstruction error per (channel, input) (for current bundles in units
    of its healthy level) and KL = 0.5 * sum(mu^2 + exp(logvar) - 1 - logvar). ``contrib`` holds
    the reconstruction part grouped by channel and frequency band (array ``band_edges``; spectrum
    input) or by channel and time segment of the window (array ``segment_edges``; waveform input);
    the KL part is not attributed. Extra views after those terms (not terms of the score):
    ``time.<segment>`` = the error of a time segment summed over channels (waveform input; a
    spectrum has no time axis inside the window), and ``latent.z<j>`` = |mu_j - mean_j| / std_j,
    how far each latent dimension sits from its training distribution (arrays ``latent_mean``,
    ``latent_std``, when the bundle has them). With ``model.forecast_weight`` > 0 (waveform
    input, forecasting head) the ONNX output ``ferr`` adds forecast_weight * mean(ferr) to the
    score, attributed per channel as ``<channel>.forecast`` terms.
    """

    needs_features = True
    needs_raw = False

    def __init__(self, bundle: Bundle) -> None:
        try:
            import onnxruntime  # noqa: F401  (fail early, with a clear message)
        except ImportError:
            raise MissingDependencyError(f"{bundle_where(bundle)}: kind 'vae' runs in onnxruntime, which is not "
                                         "installed: `pip install edgefault[vae]` (onnxruntime has no wheels for "
                                         "armv7l)") from None
        where = bundle_where(bundle)
        self._where = where
        spec = bundle.spec
        m = bundle.model
        kinds = [b.get("kind") for b in spec.blocks]
        for key in ("input", "onnx"):
            if key in m and not isinstance(m[key], str):
                raise BundleError(f"{where}: vae model entry {key!r} must be a string, got {m[key]!r:.60}")
        self.input = str(m.get("input", "spectrum"))
        waveform = self.input == "waveform"
        if waveform:
            self.needs_features, self.needs_raw = False, True
            n_ch, n_in = spec.n_channels, spec.window
        elif self.input != "spectrum":
            raise BundleError(f"{where}: vae model input {self.input!r}: expected 'spectrum' or 'waveform'")
        elif len(kinds) != 1 or kinds[0] not in ("band_energy", "log_power_spectrum"):
            raise BundleError(f"{where}: a vae model needs one band_energy or log_power_spectrum feature "
                              f"block, the spec has {kinds}")
        else:
            n_ch, n_in = spec.n_channels, len(spec.per_channel_names)
        member = str(m.get("onnx", "vae"))
        if member not in bundle.onnx:
            raise BundleError(f"{where}: model needs ONNX member models/{member}.onnx, bundle has "
                              f"{sorted(bundle.onnx)}")
        try:
            self.recon_weight = float(m["recon_weight"])
            self.kl_weight = float(m["kl_weight"])
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{where}: vae model needs numeric recon_weight and kl_weight, got "
                              f"{m.get('recon_weight')!r} / {m.get('kl_weight')!r}") from None
        if not (np.isfinite(self.recon_weight) and np.isfinite(self.kl_weight)
                and self.recon_weight >= 0 and self.kl_weight >= 0):
            raise BundleError(f"{where}: recon_weight / kl_weight must be finite and >= 0")
        try:
            self._sess = onnx_session(bundle.onnx[member])
        except Exception as e:  # onnxruntime raises its own exception types
            raise BundleError(f"{where}: ONNX member models/{member}.onnx cannot be loaded by onnxruntime "
                              f"({type(e).__name__}: {str(e)[:300]})") from None
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise BundleError(f"{where}: the ONNX model has {len(inputs)} inputs, expected 1 (spectra)")
        shape = list(inputs[0].shape)
        if len(shape) != 3 or shape[1] != n_ch or shape[2] != n_in or isinstance(shape[0], int) and shape[0] != 1:
            raise BundleError(f"{where}: the ONNX input {inputs[0].name!r} has shape {shape}, the feature spec "
                              f"gives [batch, {n_ch}, {n_in}] (channels {list(spec.channels)}, {n_in} "
                              f"{'samples per window' if waveform else f'{kinds[0]} values per channel'})")
        self._fixed_batch = isinstance(shape[0], int)
        self._input = inputs[0].name
        outs = {o.name for o in self._sess.get_outputs()}
        if not {"err", "mu", "logvar"} <= outs:
            raise BundleError(f"{where}: the ONNX model's outputs {sorted(outs)} lack err / mu / logvar")
        ename = "segment_edges" if waveform else "band_edges"
        edges = checked_array(bundle, ename, (None,), integer=True, kind="vae")
        edges = edges.astype(np.intp)  # reduceat indices: intp (32-bit ARM)
        if edges.size < 2 or edges[0] != 0 or edges[-1] != n_in or np.any(np.diff(edges) <= 0):
            raise BundleError(f"{where}: {ename} must increase strictly from 0 to {n_in}, got {edges.tolist()[:8]}...")
        self._edges = edges
        self._identity = edges.size == n_in + 1 and not waveform
        self._shape = (n_ch, n_in)
        self._n_elem = float(n_ch * n_in)
        extra: list[str] = []
        if waveform:  # channel x time segment (sample offsets within the window)
            segs = [f"seg{g:02d}_{edges[g]}_{edges[g + 1]}" for g in range(edges.size - 1)]
            self.contrib_names = [f"{c}.{s}" for c in spec.channels for s in segs]
            if "time" not in spec.channels:
                extra += [f"time.{s}" for s in segs]
        elif kinds[0] == "band_energy" and self._identity:
            self.contrib_names = list(spec.feature_names)
        else:  # groups of inputs: name them by their frequency range
            if kinds[0] == "band_energy":
                from edgefault.device.features import band_edges

                blk = spec.blocks[0]
                hz_at = np.asarray(band_edges(spec.fs, spec.window, n_in, blk.get("fmin") or 0.0,
                                              blk.get("fmax") or 0.0, blk.get("spacing") or "log"))
            else:
                hz_at = np.arange(n_in + 1) * (spec.fs / spec.window)
            self.contrib_names = [f"{c}.band{g:02d}_{hz_at[edges[g]]:.0f}_{hz_at[edges[g + 1]]:.0f}Hz"
                                  for c in spec.channels for g in range(edges.size - 1)]
        self._time_view = bool(extra)
        self._latent_ref: tuple[np.ndarray, np.ndarray] | None = None
        lm, ls = bundle.arrays.get("latent_mean"), bundle.arrays.get("latent_std")
        if lm is not None or ls is not None:
            for a, nm in ((lm, "latent_mean"), (ls, "latent_std")):
                if a is not None and a.dtype.kind not in "iuf":
                    raise BundleError(f"{where}: vae array {nm!r} must hold numbers, got dtype {a.dtype}")
            lm = np.asarray(lm, dtype=np.float64).ravel() if lm is not None else None
            ls = np.asarray(ls, dtype=np.float64).ravel() if ls is not None else None
            n_lat = model_number(bundle, "latent", integer=True, lo=1, default=lm.size if lm is not None else 0,
                                 kind="vae")
            if lm is None or ls is None or lm.size != n_lat or ls.size != n_lat or not np.all(ls > 0) \
                    or not np.all(np.isfinite(lm)) or not np.all(np.isfinite(ls)):
                raise BundleError(f"{where}: latent_mean / latent_std must both be present with {n_lat} finite "
                                  f"values and a positive std")
            self._latent_ref = (lm, ls)
            if "latent" not in spec.channels:
                extra += [f"latent.z{j}" for j in range(n_lat)]
        self._outputs = ["err", "mu", "logvar"]
        mu_shape = next(o.shape for o in self._sess.get_outputs() if o.name == "mu")
        self.latent_dim = mu_shape[1] if len(mu_shape) == 2 and isinstance(mu_shape[1], int) else None
        # optional forecasting head: its normalised error ``ferr`` (batch, channels, horizon) joins the
        # score with forecast_weight and the channel terms as "<channel>.forecast"
        try:
            self.forecast_weight = float(m.get("forecast_weight", 0.0))
        except (TypeError, ValueError):
            raise BundleError(f"{where}: forecast_weight must be a number, got {m.get('forecast_weight')!r}") from None
        if not (np.isfinite(self.forecast_weight) and self.forecast_weight >= 0):
            raise BundleError(f"{where}: forecast_weight must be finite and >= 0")
        if self.forecast_weight > 0:
            if "ferr" not in outs:
                raise BundleError(f"{where}: the model has forecast_weight {self.forecast_weight} but the ONNX "
                                  f"model has no 'ferr' output (outputs {sorted(outs)})")
            self._outputs.append("ferr")
            self.contrib_names = self.contrib_names + [f"{c}.forecast" for c in spec.channels]
        self.n_terms = len(self.contrib_names)
        self.contrib_names = self.contrib_names + extra
        self._probe(n_ch, n_in)

    def _probe(self, n_ch: int, n_in: int) -> None:
        """Run the graph once on zeros at load time: its outputs must have the shapes score() reads
        (err (batch, channels, inputs), mu and logvar (batch, latent), ferr (batch, channels, h)), so a
        graph that disagrees with the bundle's arrays and entries is refused here, not mid-stream."""
        where = self._where
        n = 1 if self._fixed_batch else 2
        outs = self._run(np.zeros((n, n_ch, n_in), dtype=np.float32))
        got = {k: np.asarray(v).shape for k, v in zip(self._outputs, outs)}
        lat = got["mu"][1] if len(got["mu"]) == 2 else None
        want = {"err": (n, n_ch, n_in), "mu": (n, lat), "logvar": (n, lat)}
        if "ferr" in got:
            h = got["ferr"][2] if len(got["ferr"]) == 3 else None
            want["ferr"] = (n, n_ch, h)
        bad = [k for k in want if got[k] != want[k] or (k == "ferr" and not want[k][2])]
        if lat is None or lat < 1 or bad:
            raise BundleError(f"{where}: the ONNX model's outputs have shapes {got} for a batch of {n}, expected "
                              f"err {want['err']}, mu and logvar (batch, latent)"
                              f"{', ferr (batch, channels, horizon)' if 'ferr' in got else ''}")
        for k, v in zip(self._outputs, outs):
            if np.asarray(v).dtype.kind != "f":
                raise BundleError(f"{where}: the ONNX output {k!r} has dtype {np.asarray(v).dtype}, expected float")
        if self.latent_dim is not None and self.latent_dim != lat:
            raise BundleError(f"{where}: the ONNX output 'mu' declares {self.latent_dim} latent dimensions but "
                              f"gives {lat}")
        self.latent_dim = lat
        if self._latent_ref is not None and self._latent_ref[0].size != lat:
            raise BundleError(f"{where}: latent_mean / latent_std have {self._latent_ref[0].size} values, the ONNX "
                              f"model has {lat} latent dimensions")

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            if not self._fixed_batch:
                return self._sess.run(self._outputs, {self._input: x})  # type: ignore[no-any-return]
            parts = [self._sess.run(self._outputs, {self._input: x[i:i + 1]}) for i in range(x.shape[0])]
            return [np.concatenate([p[j] for p in parts]) for j in range(len(self._outputs))]
        except Exception as e:  # onnxruntime's own exception types (a graph that fails when run)
            raise BundleError(f"{self._where}: the ONNX model fails when run on {x.shape[0]} window(s) "
                              f"({type(e).__name__}: {str(e)[:300]})") from None

    def score(self, features: np.ndarray | None, raw: np.ndarray | None) -> ScoreBatch:
        src = raw if self.needs_raw else features
        if src is None:
            raise ValueError(f"vae ({self.input} input) needs {'raw windows' if self.needs_raw else 'features'}")
        m = src.shape[0]
        x = np.ascontiguousarray(src, dtype=np.float32).reshape(m, *self._shape)
        ok = np.isfinite(x).all(axis=(1, 2))
        if not ok.all():
            x = np.where(ok[:, None, None], x, np.float32(0))
        outs = self._run(x)
        err, mu, logvar = outs[:3]
        kl = 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64)) - 1.0 - logvar).sum(axis=1)
        w = self.recon_weight / self._n_elem
        if self._identity:
            contrib = err.reshape(m, -1).astype(np.float64) * w
        else:
            contrib = np.add.reduceat(err.astype(np.float64), self._edges[:-1], axis=2).reshape(m, -1) * w
        grouped = contrib
        if self.forecast_weight > 0:
            ferr = outs[3].astype(np.float64)
            wf = self.forecast_weight / max(ferr.shape[1] * ferr.shape[2], 1)
            contrib = np.concatenate([contrib, ferr.sum(axis=2) * wf], axis=1)
        scores = contrib.sum(axis=1) + self.kl_weight * kl / self._n_elem
        scores[~ok] = np.nan
        if self._time_view or self._latent_ref is not None:
            views = [contrib]
            if self._time_view:
                views.append(grouped.reshape(m, self._shape[0], -1).sum(axis=1))
            if self._latent_ref is not None:
                views.append(np.abs(mu.astype(np.float64) - self._latent_ref[0]) / self._latent_ref[1])
            contrib = np.concatenate(views, axis=1)
        return ScoreBatch(scores=scores.astype(np.float32), contrib=contrib.astype(np.float32),
                          latent=np.where(ok[:, None], mu, np.float32(np.nan)).astype(np.float32))


class VAEKind(ModelKind):
    name = "vae"
    task = "anomaly"
    help = "variational autoencoder over per-channel spectra or raw windows, ONNX on the device (needs torch)"
    train_extra = "train"
    train_modules = ("torch", "onnx", "onnxscript", "onnxruntime")
    reference = "gaussian"  # eval runs the Gaussian on the same folds beside the VAE

    def device_model(self, bundle: Bundle) -> VAEDeviceModel:
        return VAEDeviceModel(bundle)

    def add_arguments(self, group: Any) -> None:
        group.add_argument("--arch", default="cnn", choices=["cnn", "transformer"], help="vae: network (default cnn)")
        group.add_argument("--input", default="spectrum", choices=["spectrum", "waveform"],
                           help="vae: model input (default spectrum: per-channel band energies in dB; waveform: the "
                                "raw window of every channel, standardised per channel)")
        group.add_argument("--forecast", action="store_true",
                           help="vae --input waveform: add a forecasting head predicting the window's last samples "
                                "from the rest; its error joins the score (default off)")
        group.add_argument("--forecast-horizon", type=int,
                           help="vae: samples the forecasting head predicts (default window/8)")
        group.add_argument("--epochs", type=int, default=200,
                           help="vae: maximum epochs, early stopping on a later validation block (default 200)")

    def scoring_graph(self, bundle: Bundle) -> Any:
        from edgefault.train.vae import load_scoring_graph  # MissingDependencyError naming the install

        return load_scoring_graph(bundle)

    def train(self, data: TrainData, opts: argparse.Namespace, out: Path) -> Trained:
        self.require_training()
        from edgefault.device.runtime import Runtime
        from edgefault.device.thresholds import calibrate
        from edgefault.train.vae import pack_vae, train_vae, vae_spec, vae_waveform_spec

        hop = opts.hop or opts.window // 2
        inp = opts.input
        spec = data.spec or (vae_waveform_spec(data.fs, data.channels, window=opts.window, hop=hop)
                             if inp == "waveform" else vae_spec(data.fs, data.channels, window=opts.window, hop=hop,
                                                                fmax=getattr(opts, "fmax", None)))
        horizon = (opts.forecast_horizon or max(1, spec.window // 8)) if opts.forecast else 0
        # With separate calibration blocks the VAE still keeps a short calibration block of its own
        # (drift limits); the threshold is then set on the separate blocks through the device path.
        calib_fraction = 0.1 if data.calib is not None else opts.calib_fraction
        res = train_vae(data.recordings, spec, arch=opts.arch, epochs=opts.epochs, seed=opts.seed, input=inp,
                        forecast=horizon, target_far=opts.target_far, calibration=opts.calibration,
                        calib_fraction=calib_fraction, val_fraction=0.2, train_hop=data.train_hop,
                        progress=sys.stderr.isatty(), drift_far=opts.drift_far,
                        adaptive_threshold=opts.adaptive_threshold)
        res.info.update(data.info)
        n_calib = res.info["n_calib_windows"]
        scores: list[float] = []
        if data.calib is not None:
            rt = Runtime(pack_vae(res, out, k=opts.k, n=opts.n))
            for b in data.calib:
                rt.reset()
                x = np.ascontiguousarray(b, dtype=np.float32)
                scores += [e.score for e in rt.push(x if x.shape[1] > 1 else x[:, 0]) if e.valid]
            res.calibration = calibrate(np.array(scores, dtype=np.float64), target_far=opts.target_far,
                                                  method=opts.calibration)
            n_calib = len(scores)
        bundle = pack_vae(res, out, k=opts.k, n=opts.n, name=getattr(opts, "name", None))
        cal = res.calibration
        info = res.info
        summary = {
            "out": str(out), "bundle_id": bundle.bundle_id, "method": "vae", "arch": res.arch,
            "input": inp, "fs": spec.fs, "channels": list(spec.channels), "window": spec.window, "hop": spec.hop,
            "n_inputs": int(bundle.model["input_shape"][1]) * int(bundle.model["input_shape"][2]),
            "n_fit_windows": info["n_fit_windows"], "n_val_windows": info["n_val_windows"],
            "n_calib_windows": n_calib, "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
            "stopped": info["stopped"], "train_seconds": info["train_seconds"],
            "mflop_per_window": bundle.model["mflop_per_window"],
            "onnx_score_max_rel_diff": res.parity["score_max_rel_diff"],
            "threshold": cal.threshold, "calibration": cal.method, "target_far": cal.target_far,
            "far_on_calibration": cal.far_on_calibration, **drift_summary(info.get("drift")),
        }
        eval_info = {"vae": {k: info.get(k) for k in TRAINING_KEYS},
                     "mflop_per_window": bundle.model["mflop_per_window"],
                     "onnx_score_max_rel_diff": res.parity["score_max_rel_diff"]}
        if data.calib is not None:
            eval_info.update(far_on_calibration=cal.far_on_calibration, input=inp, forecast_horizon=horizon)
        return Trained(bundle=bundle, summary=summary, threshold=cal.threshold, calibration=cal.method,
                       n_train_windows=info["n_fit_windows"], n_calib_windows=n_calib, eval_info=eval_info,
                       calib_scores=np.asarray(scores if data.calib is not None else res.calib_scores))


register(VAEKind())
