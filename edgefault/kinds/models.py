"""Device-side models: turn a window's features (or raw samples) into a score, contributions
and, for classifiers, class probabilities. One class per bundle ``model.kind``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgefault import _core
from edgefault.device.bundle import Bundle
from edgefault.errors import BundleError, MissingDependencyError


@dataclass
class ScoreBatch:
    scores: np.ndarray                 # (m,) float32, NaN for invalid windows
    contrib: np.ndarray | None = None  # (m, n_contrib) terms that sum to the score ("<channel>.*" names),
    #                                    then extra views named "<group>.*" (VAE: time, latent) that do not
    proba: np.ndarray | None = None    # (m, n_labels)
    latent: np.ndarray | None = None   # (m, n_latent) model's latent mean (drift monitors), if any


def onnx_session(onnx_bytes: bytes):  # type: ignore[no-untyped-def]
    """An onnxruntime session as the device runs it: one thread, no spinning, sequential."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=so, providers=["CPUExecutionProvider"])


class GaussianDeviceModel:
    """Mahalanobis distance in the bundle's feature space, scored in the C++ core."""

    needs_features = True
    needs_raw = False

    def __init__(self, bundle: Bundle) -> None:
        """``core_scorer`` lets the runtime fuse framing, features, scoring and alarm state into
        one core call per push."""
        d = bundle.spec.feature_dim
        mean, scale, prec = bundle.array("mean"), bundle.array("scale"), bundle.array("precision")
        if mean.shape != (d,) or scale.shape != (d,) or prec.shape != (d, d):
            raise BundleError(f"bundle {bundle.path}: gaussian arrays have shapes mean {mean.shape}, "
                              f"scale {scale.shape}, precision {prec.shape}; the feature spec gives "
                              f"{d} features")
        try:
            self.core_scorer = _core.GaussianScorer(mean, scale, prec)
        except ValueError as e:
            raise BundleError(f"bundle {bundle.path}: {e}") from None
        self.contrib_names = bundle.spec.feature_names

    def score(self, features: np.ndarray, raw: np.ndarray | None) -> ScoreBatch:
        scores, contrib = self.core_scorer.score(features, True)
        return ScoreBatch(scores=scores, contrib=contrib)


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
            raise MissingDependencyError("bundle kind 'vae' runs in onnxruntime, which is not installed: "
                                         "`pip install onnxruntime`") from None
        where = f"bundle {bundle.path or bundle.bundle_id}"
        spec = bundle.spec
        m = bundle.model
        kinds = [b.get("kind") for b in spec.blocks]
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
        edges = np.asarray(bundle.array(ename)).astype(np.intp).ravel()  # reduceat indices: intp (32-bit ARM)
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
            lm = np.asarray(lm, dtype=np.float64).ravel() if lm is not None else None
            ls = np.asarray(ls, dtype=np.float64).ravel() if ls is not None else None
            n_lat = int(m.get("latent", lm.size if lm is not None else 0))
            if lm is None or ls is None or lm.size != n_lat or ls.size != n_lat or not np.all(ls > 0) \
                    or not np.all(np.isfinite(lm)):
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

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        if not self._fixed_batch:
            return self._sess.run(self._outputs, {self._input: x})  # type: ignore[no-any-return]
        parts = [self._sess.run(self._outputs, {self._input: x[i:i + 1]}) for i in range(x.shape[0])]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(self._outputs))]

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


# -- SFDSC: structured Fisher dictionary + tree-structured sparse coding + quadratic SVM ------------
def sfdsc_tree_codes(X: np.ndarray, dictionary: np.ndarray, tree: tuple[np.ndarray, np.ndarray, np.ndarray],
                     alpha: float, max_iter: int, tol: float, coder: object | None = None) -> np.ndarray:
    """Codes (m, n_atoms) of rows of X over ``dictionary`` (n_atoms, d) with the tree norm given
    as (parent, atom_node, weight): tree-structured group lasso (FISTA, exact tree prox) in the
    C++ core, float32. ``coder``: a :class:`edgefault.sparse.TreeLassoCoder` built for this
    dictionary and tree, reused across calls (built here when None)."""
    if coder is None:
        from edgefault.device.sparse import TreeLassoCoder

        coder = TreeLassoCoder(np.ascontiguousarray(np.asarray(dictionary).T), tuple(tree))
    return coder.encode(X, alpha, max_iter=max_iter, tol=tol).astype(np.float64)  # type: ignore[attr-defined]


def sfdsc_signal_matrix(features: np.ndarray, raw: np.ndarray | None, n_channels: int) -> np.ndarray:
    """Rows [mean_c, std_c for each channel | representation of channel 0, 1, ...] from features
    laid out per channel as [mean, std, representation...]; the representation is the raw
    window (m, n_channels, window) when ``raw`` is given."""
    m = features.shape[0]
    f = np.asarray(features, dtype=np.float64).reshape(m, n_channels, -1)
    extra = f[:, :, :2].reshape(m, -1)
    rep = np.asarray(raw, dtype=np.float64) if raw is not None else f[:, :, 2:]
    return np.concatenate([extra, rep.reshape(m, -1)], axis=1)


def sfdsc_prepare(S: np.ndarray, input_mean: np.ndarray | None = None, input_scale: np.ndarray | None = None,
                  row_norm: bool = True) -> np.ndarray:
    """The dictionary's input from signal rows S (m, d): standardised per column when
    ``input_mean`` / ``input_scale`` are given; then each row centred and scaled to unit norm
    (``row_norm``), or else the whole divided by sqrt(d) (unit norm on average for standardised
    columns)."""
    S = np.asarray(S, dtype=np.float64)
    if input_mean is not None and input_scale is not None:
        S = (S - input_mean) / input_scale
    if not row_norm:
        return S / np.sqrt(max(S.shape[1], 1))
    S = S - S.mean(axis=1, keepdims=True)
    nrm = np.linalg.norm(S, axis=1, keepdims=True)
    return np.divide(S, nrm, out=np.zeros_like(S), where=nrm > 0)


def sfdsc_features(X: np.ndarray, n_passthrough: int, dictionary: np.ndarray, atom_class: np.ndarray,
                   tree: tuple[np.ndarray, np.ndarray, np.ndarray], alpha: float, max_iter: int,
                   tol: float, input_mean: np.ndarray | None = None,
                   input_scale: np.ndarray | None = None, use_extra: bool = True,
                   row_norm: bool = True, coder: object | None = None) -> np.ndarray:
    """SVM inputs per row of X = [passthrough (n_passthrough) | signal (d)]: per-class squared
    residuals ||x - a^i D_i||^2 and activations ||a^i||_2 of the tree-sparse code a of the signal
    (:func:`sfdsc_prepare`), then (``use_extra``) the passthrough columns (the window's mean and
    standard deviation), or with n_passthrough = 0 the signal row's own mean and std."""
    X = np.asarray(X, dtype=np.float64)
    S = X[:, n_passthrough:]
    extra = X[:, :n_passthrough] if n_passthrough else np.stack([S.mean(axis=1), S.std(axis=1)], axis=1)
    S = sfdsc_prepare(S, input_mean, input_scale, row_norm)
    codes = sfdsc_tree_codes(S, dictionary, tree, alpha, max_iter, tol, coder)
    n_cls = int(atom_class.max()) + 1
    res = np.empty((X.shape[0], n_cls))
    act = np.empty((X.shape[0], n_cls))
    for i in range(n_cls):
        b = atom_class == i
        res[:, i] = np.sum((S - codes[:, b] @ dictionary[b]) ** 2, axis=1)
        act[:, i] = np.linalg.norm(codes[:, b], axis=1)
    return np.concatenate([res, act, extra] if use_extra else [res, act], axis=1)


def svm_ovo_decision(Z: np.ndarray, support_vectors: np.ndarray, dual_coef: np.ndarray, intercept: np.ndarray,
                     n_support: np.ndarray, gamma: float, coef0: float, degree: int) -> np.ndarray:
    """One-vs-one decision values (m, c(c-1)/2) of a polynomial-kernel SVM stored like
    scikit-learn's SVC (pairs (i, j), i < j, in order; positive means class i)."""
    K = (gamma * (np.asarray(Z, dtype=np.float64) @ support_vectors.T) + coef0) ** degree
    starts = np.concatenate([[0], np.cumsum(n_support)])
    c = n_support.size
    out = np.empty((K.shape[0], c * (c - 1) // 2))
    p = 0
    for i in range(c):
        si = slice(starts[i], starts[i + 1])
        for j in range(i + 1, c):
            sj = slice(starts[j], starts[j + 1])
            out[:, p] = K[:, si] @ dual_coef[j - 1, si] + K[:, sj] @ dual_coef[i, sj] + intercept[p]
            p += 1
    return out


def ovr_from_ovo(dec: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's one-vs-rest shape of OvO decisions: votes plus confidences squashed into
    (-1/3, 1/3), so the argmax is the vote winner, ties broken by confidence."""
    m = dec.shape[0]
    votes = np.zeros((m, n_classes))
    conf = np.zeros((m, n_classes))
    p = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            votes[:, i] += dec[:, p] > 0
            votes[:, j] += dec[:, p] <= 0
            conf[:, i] += dec[:, p]
            conf[:, j] -= dec[:, p]
            p += 1
    return votes + conf / (3.0 * (np.abs(conf) + 1.0))


def softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SFDSCDeviceModel:
    """SFDSC classifier: per channel, the window's mean and std (time_stats) and a signal
    representation (a spectral feature block, or the raw window when ``model.input == "raw"``);
    tree-structured sparse codes over the bundle's dictionary; per-class residuals and
    activations plus mean/std, standardised, into a quadratic-kernel SVM evaluated in numpy.

    proba = softmax(temperature * one-vs-rest decision) (votes + confidences, see
    :func:`ovr_from_ovo`); score = 1 - P(normal label) when the model has one, else
    1 - max proba.
    """

    needs_features = True

    def __init__(self, bundle: Bundle) -> None:
        m = bundle.model
        where = f"bundle {bundle.path or bundle.bundle_id}"
        try:
            self.needs_raw = m["input"] == "raw"
            self.alpha, self.max_iter, self.tol = float(m["alpha"]), int(m["max_iter"]), float(m["tol"])
            self.gamma, self.coef0, self.degree = float(m["gamma"]), float(m["coef0"]), int(m["degree"])
            self.temperature = float(m["temperature"])
            self.use_extra = bool(m.get("use_extra", True))
            self.row_norm = bool(m.get("row_norm", True))
            normal = m.get("normal_label")
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"{where}: sfdsc model entry is incomplete or malformed ({e!r})") from None
        a = {k: bundle.array(k) for k in ("dictionary", "atom_class", "tree_parent", "tree_atom_node",
                                           "tree_weight", "feature_mean", "feature_scale", "support_vectors",
                                           "dual_coef", "intercept", "n_support")}
        self.labels = bundle.labels or []
        c = len(self.labels)
        spec = bundle.spec
        self.n_ch = spec.n_channels
        per = len(spec.per_channel_names)
        if spec.per_channel_names[:2] != ("mean", "std") or (not self.needs_raw and per < 3):
            raise BundleError(f"{where}: sfdsc needs features [mean, std, representation...] per channel, "
                              f"got {list(spec.per_channel_names[:4])}")
        self.per = per
        d = self.n_ch * (spec.window if self.needs_raw else per - 2)
        D = a["dictionary"].astype(np.float64)
        if D.ndim != 2 or D.shape[1] != d or a["atom_class"].shape != (D.shape[0],) or c < 2 \
                or a["n_support"].shape != (c,) or a["dual_coef"].shape[0] != c - 1:
            raise BundleError(f"{where}: sfdsc arrays do not fit: dictionary {D.shape} for signal length {d}, "
                              f"{c} labels, n_support {a['n_support'].shape}, dual_coef {a['dual_coef'].shape}")
        self.D = D
        self.atom_class = a["atom_class"].astype(np.int64)
        self.tree = (a["tree_parent"], a["tree_atom_node"], a["tree_weight"])
        from edgefault.device.faulttree import groups_from_index_tree

        try:
            groups_from_index_tree(*self.tree)
            from edgefault.device.sparse import TreeLassoCoder

            self.coder = TreeLassoCoder(np.ascontiguousarray(D.T), self.tree)
        except Exception as e:
            raise BundleError(f"{where}: {e}") from None
        self.fmean, self.fscale = a["feature_mean"].astype(np.float64), a["feature_scale"].astype(np.float64)
        self.imean = bundle.arrays.get("input_mean")
        self.iscale = bundle.arrays.get("input_scale")
        if (self.imean is None) != (self.iscale is None) or (self.imean is not None and (
                self.imean.shape != (d,) or self.iscale.shape != (d,) or not np.all(self.iscale > 0))):
            raise BundleError(f"{where}: input_mean / input_scale must both be present with shape ({d},) and a "
                              f"positive scale")
        self.sv, self.dual = a["support_vectors"].astype(np.float64), a["dual_coef"].astype(np.float64)
        self.intercept, self.n_support = a["intercept"].astype(np.float64), a["n_support"].astype(np.int64)
        self.normal_index = self.labels.index(normal) if normal in self.labels else None
        self.contrib_names: list[str] = []

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        F = sfdsc_features(X, 2 * self.n_ch, self.D, self.atom_class, self.tree, self.alpha, self.max_iter, self.tol,
                           self.imean, self.iscale, self.use_extra, self.row_norm, self.coder)
        Z = (F - self.fmean) / self.fscale
        dec = svm_ovo_decision(Z, self.sv, self.dual, self.intercept, self.n_support, self.gamma, self.coef0,
                               self.degree)
        return softmax_rows(self.temperature * ovr_from_ovo(dec, self.n_support.size))

    def score(self, features: np.ndarray, raw: np.ndarray | None) -> ScoreBatch:
        m = features.shape[0]
        X = sfdsc_signal_matrix(features, raw if self.needs_raw else None, self.n_ch)
        ok = np.isfinite(X).all(axis=1)
        proba = np.full((m, len(self.labels)), np.nan)
        if ok.any():
            proba[ok] = self.predict_proba(X[ok])
        if self.normal_index is not None:
            scores = 1.0 - proba[:, self.normal_index]
        else:
            scores = 1.0 - proba.max(axis=1)
        return ScoreBatch(scores=scores.astype(np.float32), proba=proba.astype(np.float32))


MODEL_KINDS: dict[str, Callable[[Bundle], object]] = {
    "gaussian": GaussianDeviceModel,
    "vae": VAEDeviceModel,
    "sfdsc": SFDSCDeviceModel,
}


def device_model(bundle: Bundle):  # type: ignore[no-untyped-def]
    try:
        factory = MODEL_KINDS[bundle.kind]
    except KeyError:
        raise BundleError(f"bundle {bundle.path}: model kind {bundle.kind!r} is not supported by this "
                          f"edgefault (knows {sorted(MODEL_KINDS)}); upgrade edgefault") from None
    return factory(bundle)
