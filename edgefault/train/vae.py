"""Variational autoencoder over per-channel spectra or raw windows (PyTorch; ``pip install edgefault[train]``).

Input (``input=``): ``spectrum`` (default) = the core feature pipeline's band-energy (or full
log-power spectrum) block, one row of ``n_bins`` values per channel, standardised per (channel,
bin); or ``waveform`` = the raw window of every channel (the runtime hands it over:
``needs_raw``), standardised per channel. The model sees ``(batch, n_channels, n)`` with the
channels as input channels (1D-CNN over the frequency / time axis, or a Transformer over patches).
The graph encodes to a latent mean and log variance, decodes from the mean (no sampling at
scoring time) and returns

* ``err``  (batch, n_channels, n): squared standardised reconstruction error divided by its
  healthy level ``err_ref`` (the mean on the validation block, per (channel, input)), so channel,
  band and time contributions are in comparable units,
* ``recon``, ``mu``, ``logvar`` (batch, latent),
* ``score`` (batch,): ``recon_weight * mean(err) + kl_weight * KL / (n_channels * n)``, with
  ``KL = 0.5 * sum(mu^2 + exp(logvar) - 1 - logvar)``.

On the device (:class:`edgefault.kinds.vae.VAEDeviceModel`) the error is grouped by channel and
frequency band (spectrum) or channel and time segment (waveform; ``n_segments`` equal segments of
the window, plus a ``time`` view summed over channels). A spectrum has no time axis inside the
window, so spectrum bundles give no per-segment view: time resolution there is the hop between
windows (the event stream). Latent sensitivity: ``|mu_j - mean_j| / std_j`` against the latent
means of the fit windows (arrays ``latent_mean`` / ``latent_std``), the ``latent`` view.

Training is leak-safe: each healthy recording is cut into fit | validation | calibration blocks in
time order (gap of one window between blocks) before windowing. Early stopping and ``err_ref``
use the validation block (later than the fit block), the threshold is calibrated on the
calibration block (later still), scored through the exported ONNX graph exactly as on the device.
The bundle also stores the PyTorch weights (arrays ``torch.<name>``) so that
:func:`load_scoring_graph` rebuilds the differentiable model offline.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefault.errors import InputError, MissingDependencyError
from edgefault.evaluation.protocols import contiguous_blocks
from edgefault.io.readers import Recording
from edgefault.device.spec import FeatureSpec, health_for_training
from edgefault.device.thresholds import Calibration, calibrate, evidence

TORCH_HINT = ("the VAE needs PyTorch: `pip install edgefault[train]` and the CPU build of torch, "
              "`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`")

try:
    import torch
    from torch import nn
except ImportError as _e:  # pragma: no cover - exercised only without torch
    raise MissingDependencyError(f"{TORCH_HINT} ({_e})") from None

ARCHS = ("cnn", "transformer")
TORCH_PREFIX = "torch."  # bundle arrays holding the PyTorch state_dict


SPECTRUM_KINDS = ("band_energy", "log_power_spectrum")


def vae_spec(fs: float, channels: Sequence[str], window: int = 1024, hop: int | None = None,
             representation: str = "bands", n_bands: int = 64, fmax: float | None = None) -> FeatureSpec:
    """Feature spec of the VAE input, per channel: ``bands`` (default) = ``n_bands`` linear band
    energies in dB over 0..0.45 fs (a smoothed log spectrum: each value averages about
    0.45 window / n_bands bins, so single-window periodogram noise does not dominate the
    reconstruction error; the top 10 % of the band is left out as it holds the anti-aliasing
    roll-off, which differs between recorders and resamplers), or ``lps`` = the full log-power
    spectrum (window/2 + 1 bins). ``fmax``: the bands end there instead of 0.45 fs."""
    if representation == "bands":
        block: dict[str, Any] = {"kind": "band_energy", "n_bands": int(n_bands), "spacing": "linear",
                                 "fmin": 0.0, "fmax": 0.45 * float(fs) if fmax is None else float(fmax), "log": True}
    elif representation == "lps":
        block = {"kind": "log_power_spectrum"}
    else:
        raise InputError(f"VAE spectrum representation {representation!r}: use bands or lps")
    return FeatureSpec(fs=fs, window=window, hop=hop or window // 2, channels=tuple(channels), blocks=(block,))


INPUTS = ("spectrum", "waveform")
WAVEFORM_BLOCK = {"kind": "time_stats", "stats": ["mean", "std"]}


def vae_waveform_spec(fs: float, channels: Sequence[str], window: int = 1024, hop: int | None = None) -> FeatureSpec:
    """Feature spec of a waveform VAE: the model reads the raw window (channels x window samples)
    that the runtime hands over; the spec's one cheap block (per-channel mean and std) only
    satisfies the feature pipeline. Any window length >= 8 works (e.g. fs=1, window=30 cycles)."""
    return FeatureSpec(fs=fs, window=window, hop=hop or max(1, window // 2), channels=tuple(channels),
                       blocks=(dict(WAVEFORM_BLOCK),))


def input_shape(spec: FeatureSpec, input: str = "spectrum") -> tuple[int, int]:
    """(n_channels, values per channel) the VAE sees: spectrum bins, or the window's samples."""
    if input == "waveform":
        if spec.window < 8:
            raise InputError(f"waveform VAE: window of {spec.window} samples, need at least 8")
        return spec.n_channels, spec.window
    if input != "spectrum":
        raise InputError(f"VAE input {input!r}: use one of {list(INPUTS)}")
    return spectrum_shape(spec)


def segment_edges(window: int, n_segments: int = 8) -> np.ndarray:
    """Sample offsets [0, ..., window] cutting a window into about ``n_segments`` equal time segments."""
    return np.unique(np.round(np.linspace(0, window, min(n_segments, window) + 1)).astype(np.int64))


def spectrum_shape(spec: FeatureSpec) -> tuple[int, int]:
    """(n_channels, n_bins) of a VAE spec; InputError unless the spec is one spectrum block."""
    kinds = [b.get("kind") for b in spec.blocks]
    if len(kinds) != 1 or kinds[0] not in SPECTRUM_KINDS:
        raise InputError(f"VAE input must be exactly one block of kind {list(SPECTRUM_KINDS)}, the spec has {kinds}")
    return spec.n_channels, len(spec.per_channel_names)


def band_edges_bins(spec: FeatureSpec, n_bands: int = 16) -> np.ndarray:
    """Input indices [0, b1, ..., n_bins] grouping the reconstruction error by frequency band on the
    device: one group per input band for band-energy input; log-spaced groups of bins for the
    full log-power spectrum (group 0 holds DC and the first 4 bins)."""
    n_bins = spectrum_shape(spec)[1]
    if spec.blocks[0]["kind"] == "band_energy":
        return np.arange(n_bins + 1, dtype=np.int64)
    lo = 4
    edges = np.unique(np.round(lo * (n_bins / lo) ** (np.arange(1, n_bands) / n_bands)).astype(np.int64))
    edges = edges[(edges > lo) & (edges < n_bins)]
    return np.concatenate([[0, lo], edges, [n_bins]]).astype(np.int64)


# -- networks -------------------------------------------------------------------------------------
class _Standardise(nn.Module):
    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("inv_scale", torch.as_tensor(1.0 / scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_scale


def _conv_lengths(n: int, depth: int) -> list[int]:
    out = [n]
    for _ in range(depth):
        out.append((out[-1] - 1) // 2 + 1)  # kernel 5, stride 2, padding 2
    return out


class CNNVAE(nn.Module):
    """1D-CNN encoder/decoder over the frequency axis; channels are the input channels."""

    def __init__(self, n_channels: int, n_bins: int, latent: int = 8, width: int = 8, depth: int | None = None) -> None:
        super().__init__()
        if depth is None:  # down to about 8 positions
            depth = max(1, min(5, int(math.floor(math.log2(max(n_bins, 2) / 8)))))
        self.lengths = _conv_lengths(n_bins, depth)
        widths = [n_channels] + [width * min(2 ** i, 2) for i in range(depth)]
        enc: list[nn.Module] = []
        for i in range(depth):
            enc += [nn.Conv1d(widths[i], widths[i + 1], 5, stride=2, padding=2), nn.ReLU()]
        self.encoder = nn.Sequential(*enc)
        self.flat = widths[-1] * self.lengths[-1]
        self.to_stats = nn.Linear(self.flat, 2 * latent)
        self.from_latent = nn.Linear(latent, self.flat)
        self.last_width = widths[-1]
        if min(self.lengths) < 2:
            raise InputError(f"CNN VAE: {n_bins} inputs per channel are too few for {depth} stride-2 layers")
        dec: list[nn.Module] = []
        for i in range(depth, 0, -1):
            # output length = 2 * L_in - 1 + output_padding must equal lengths[i - 1]
            op = self.lengths[i - 1] - (2 * self.lengths[i] - 1)
            dec.append(nn.ConvTranspose1d(widths[i], widths[i - 1] if i > 1 else width, 5, stride=2,
                                          padding=2, output_padding=op))
            dec.append(nn.ReLU())
        dec.append(nn.Conv1d(width, n_channels, 5, padding=2))
        self.decoder = nn.Sequential(*dec)
        self.latent = latent
        self.config = {"arch": "cnn", "n_channels": int(n_channels), "n_bins": int(n_bins), "latent": int(latent),
                       "width": int(width), "depth": int(depth)}

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(z).flatten(1)
        stats = self.to_stats(h)
        return stats[:, : self.latent], stats[:, self.latent:]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(code).view(-1, self.last_width, self.lengths[-1])
        return self.decoder(torch.relu(h))


class _Block(nn.Module):
    """Pre-norm Transformer encoder block from plain ops (exports to basic ONNX ops)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.n1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.n2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).chunk(3, dim=-1)
        h = self.heads
        q = q.reshape(b, t, h, d // h).transpose(1, 2)
        k = k.reshape(b, t, h, d // h).transpose(1, 2)
        v = v.reshape(b, t, h, d // h).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(d // h)), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.ff(self.n2(x))


class TransformerVAE(nn.Module):
    """Transformer encoder over patches of the spectrum (tokens = frequency patches)."""

    def __init__(self, n_channels: int, n_bins: int, latent: int = 8, d: int = 32, heads: int = 4,
                 patch: int | None = None, layers: int = 2) -> None:
        super().__init__()
        patch = patch or max(1, n_bins // 16)
        self.n_channels, self.n_bins, self.patch, self.latent, self.d = n_channels, n_bins, patch, latent, d
        self.tokens = -(-n_bins // patch)
        self.pad = self.tokens * patch - n_bins
        self.embed = nn.Linear(n_channels * patch, d)
        self.pos = nn.Parameter(torch.zeros(1, self.tokens, d))
        self.enc = nn.Sequential(*[_Block(d, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)
        self.to_stats = nn.Linear(d, 2 * latent)
        self.from_latent = nn.Linear(latent, d)
        self.pos_dec = nn.Parameter(torch.zeros(1, self.tokens, d))
        self.dec = nn.Sequential(*[_Block(d, heads) for _ in range(max(1, layers - 1))])
        self.out = nn.Linear(d, n_channels * patch)
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.pos_dec, std=0.02)
        self.config = {"arch": "transformer", "n_channels": int(n_channels), "n_bins": int(n_bins),
                       "latent": int(latent), "d": int(d), "heads": int(heads), "patch": int(patch),
                       "layers": int(layers)}

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = z.shape[0]
        x = nn.functional.pad(z, (0, self.pad))
        x = x.reshape(b, self.n_channels, self.tokens, self.patch).permute(0, 2, 1, 3)
        x = self.embed(x.reshape(b, self.tokens, self.n_channels * self.patch)) + self.pos
        h = self.norm(self.enc(x)).mean(dim=1)
        stats = self.to_stats(h)
        return stats[:, : self.latent], stats[:, self.latent:]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        b = code.shape[0]
        x = self.from_latent(code).unsqueeze(1) + self.pos_dec
        y = self.out(self.dec(x)).reshape(b, self.tokens, self.n_channels, self.patch)
        y = y.permute(0, 2, 1, 3).reshape(b, self.n_channels, self.tokens * self.patch)
        return y[:, :, : self.n_bins]


class ForecastHead(nn.Module):
    """Short-term forecast (waveform input): the last ``horizon`` samples of every channel from the
    samples before them in the same window (standardised units), an MLP over the flattened past.
    Its error measures how far the window's recent course departs from the healthy dynamics, the
    slow-degradation signal of the issue's forecasting head, without state across windows."""

    def __init__(self, n_channels: int, n_in: int, horizon: int, hidden: int = 64) -> None:
        super().__init__()
        if not 1 <= horizon <= n_in // 2:
            raise InputError(f"forecast horizon {horizon}: expected 1..{n_in // 2} (half the window of {n_in})")
        self.n_channels, self.horizon, self.past = n_channels, horizon, n_in - horizon
        self.mlp = nn.Sequential(nn.Linear(n_channels * self.past, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_channels * horizon))
        self.config = {"n_channels": int(n_channels), "n_in": int(n_in), "horizon": int(horizon),
                       "hidden": int(hidden)}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        return self.mlp(z[:, :, : self.past].reshape(b, -1)).reshape(b, self.n_channels, self.horizon)


class ScoringGraph(nn.Module):
    """Raw inputs in, (score, err, recon, mu, logvar) out; deterministic (latent mean).

    ``err`` is the squared standardised reconstruction error divided by ``err_ref``, the mean
    squared error of each (channel, input) on healthy validation windows (ones when not
    calibrated): every element's error in units of its own healthy error level, so
    contributions of channels and bands are comparable (a diagonal Mahalanobis distance of the
    residual). ``shape`` is the input shape without the batch axis (defaults to ``mean.shape``).

    With a ``forecast`` head (:class:`ForecastHead`) the graph also outputs ``forecast`` (batch,
    n_channels, horizon; standardised units) and ``ferr``, its squared error against the window's
    last ``horizon`` samples divided by its healthy level ``ferr_ref``, and the score gains
    ``forecast_weight * mean(ferr)``.
    """

    output_names: tuple[str, ...] = ("score", "err", "recon", "mu", "logvar")

    def __init__(self, net: nn.Module, mean: np.ndarray, scale: np.ndarray, recon_weight: float,
                 kl_weight: float, err_ref: np.ndarray | None = None,
                 shape: tuple[int, ...] | None = None, forecast: ForecastHead | None = None,
                 forecast_weight: float = 1.0) -> None:
        super().__init__()
        self.norm = _Standardise(mean, scale)
        self.net = net
        self.recon_weight = float(recon_weight)
        self.kl_weight = float(kl_weight)
        shape = tuple(shape or np.shape(mean))
        ref = np.ones(shape, np.float32) if err_ref is None else np.asarray(err_ref, np.float32)
        if ref.shape != shape:
            raise InputError(f"err_ref has shape {ref.shape}, expected {shape}")
        self.register_buffer("inv_err_ref", torch.as_tensor(1.0 / ref, dtype=torch.float32))
        self.n_elem = float(ref.size)
        self.forecast = forecast
        self.forecast_weight = float(forecast_weight) if forecast is not None else 0.0
        if forecast is not None:
            self.output_names = ScoringGraph.output_names + ("forecast", "ferr")
            self.register_buffer("inv_ferr_ref", torch.ones(shape[0], forecast.horizon))

    def set_ferr_ref(self, ferr_ref: np.ndarray) -> None:
        self.inv_ferr_ref.copy_(torch.as_tensor(1.0 / np.asarray(ferr_ref, np.float32)))

    def raw_ferr(self, x: torch.Tensor) -> torch.Tensor:
        """Squared standardised forecast error before the healthy-level normalisation."""
        assert self.forecast is not None
        z = self.norm(x)
        return (self.forecast(z) - z[:, :, z.shape[2] - self.forecast.horizon:]) ** 2

    def set_err_ref(self, err_ref: np.ndarray) -> None:
        self.inv_err_ref.copy_(torch.as_tensor(1.0 / np.asarray(err_ref, np.float32)))

    def raw_err(self, x: torch.Tensor) -> torch.Tensor:
        """Squared standardised reconstruction error before the healthy-level normalisation."""
        z = self.norm(x)
        return (self.net.decode(self.net.encode(z)[0]) - z) ** 2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        z = self.norm(x)
        mu, logvar = self.net.encode(z)
        recon = self.net.decode(mu)
        err = (recon - z) ** 2 * self.inv_err_ref
        kl = 0.5 * (mu * mu + torch.exp(logvar) - 1.0 - logvar).sum(dim=1)
        score = self.recon_weight * err.mean(dim=(1, 2)) + self.kl_weight * kl / self.n_elem
        if self.forecast is None:
            return score, err, recon, mu, logvar
        fc = self.forecast(z)
        ferr = (fc - z[:, :, z.shape[2] - self.forecast.horizon:]) ** 2 * self.inv_ferr_ref
        return score + self.forecast_weight * ferr.mean(dim=(1, 2)), err, recon, mu, logvar, fc, ferr


def build_net(arch: str, n_channels: int, n_bins: int, latent: int, **kw: Any) -> nn.Module:
    """A network by name; ``kw`` = the architecture's own options (cnn: width, depth; transformer:
    d, heads, patch, layers), as recorded in ``net.config``."""
    if arch == "cnn":
        return CNNVAE(n_channels, n_bins, latent=latent, **kw)
    if arch == "transformer":
        return TransformerVAE(n_channels, n_bins, latent=latent, **kw)
    raise InputError(f"unknown VAE architecture {arch!r}; use one of {list(ARCHS)}")


# -- training -------------------------------------------------------------------------------------
@dataclass
class VAETraining:
    graph: ScoringGraph
    spec: FeatureSpec
    arch: str
    calibration: Calibration
    calib_scores: np.ndarray
    onnx_bytes: bytes
    parity: dict[str, Any]
    mflop: float
    info: dict[str, Any] = field(default_factory=dict)


def _set_determinism(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.use_deterministic_algorithms(True)


def _spectra(spec: FeatureSpec, data: np.ndarray, hop: int, input: str = "spectrum") -> np.ndarray:
    """(m, n_channels, n) model inputs of the finite windows of one block at ``hop``: spectra, or
    the raw windows exactly as the runtime hands them to the device model (waveform input)."""
    dense = FeatureSpec(fs=spec.fs, window=spec.window, hop=hop, channels=spec.channels, blocks=spec.blocks,
                        taper=spec.taper)
    c, f = input_shape(spec, input)
    if input == "waveform":
        x = np.ascontiguousarray(data, dtype=np.float32)
        _, _, finite, raw = dense.pipeline().push(x if spec.n_channels > 1 else x[:, 0], 1.0, False, True)
        return np.asarray(raw)[np.asarray(finite, dtype=bool)].reshape(-1, c, f)
    feats, _, finite = dense.transform(data)
    return feats[finite].reshape(-1, c, f)


def train_vae(recordings: Sequence[Recording], spec: FeatureSpec, *, arch: str = "cnn", epochs: int = 200,
              seed: int = 0, latent: int = 8, beta: float = 1.0, lr: float = 2e-3, batch_size: int = 32,
              patience: int = 15, target_far: float = 0.01, calibration: str = "auto",
              calib_fraction: float = 0.3, val_fraction: float = 0.2, train_hop: int | None = None,
              hysteresis: float = 0.9, min_scale_db: float = 1.0, n_bands: int = 16,
              max_seconds: float | None = None, progress: bool = False, export: bool = True,
              err_norm: bool = True, input: str = "spectrum", n_segments: int = 8,
              forecast: int = 0, forecast_weight: float = 1.0, drift_far: float | None = 1e-4,
              adaptive_threshold: bool = False) -> VAETraining:
    """Train a VAE on healthy recordings, export it to ONNX, check parity and calibrate a threshold.

    Each recording is cut in time order into fit | validation | calibration blocks (fractions
    ``1 - val - calib``, ``val``, ``calib``; gap of one window), *then* windowed with ``train_hop``
    (default window/16: dense windows inside each block; no window crosses a block boundary).
    ``export=False`` skips the ONNX export (calibration scores then come from PyTorch): for tests.
    ``input``: ``spectrum`` (default; spec from :func:`vae_spec`) or ``waveform`` (raw windows,
    standardised per channel; spec from :func:`vae_waveform_spec`; error grouped into
    ``n_segments`` time segments). ``err_norm`` (default on): divide each (channel, input)'s squared error by its mean on the
    validation block (see :class:`ScoringGraph`), so per-channel / per-band contributions are in
    units of the healthy error level and comparable across channels.
    ``forecast`` (waveform input; 0 = off): horizon in samples of a :class:`ForecastHead` trained
    jointly (loss + ``forecast_weight`` x its mean squared error); its normalised error joins the
    score with ``forecast_weight``.
    ``drift_far``: target false-drift onsets per window of the drift monitors (score CUSUM + MEWMA
    of the latent mean), calibrated on the calibration blocks, one session per recording
    (:func:`edgefault.device.drift.calibrate_drift`); None: no drift monitors. ``adaptive_threshold``:
    the bundle enables the per-machine adaptive threshold by default.
    """
    from edgefault.export.onnx_vae import export_scoring_graph

    if arch not in ARCHS:
        raise InputError(f"unknown VAE architecture {arch!r}; use one of {list(ARCHS)}")
    if input not in INPUTS:
        raise InputError(f"VAE input {input!r}: use one of {list(INPUTS)}")
    if forecast and input != "waveform":
        raise InputError("the forecasting head needs --input waveform (a spectrum has no time axis to forecast)")
    if forecast_weight < 0 or not math.isfinite(forecast_weight):
        raise InputError(f"forecast_weight must be finite and >= 0, got {forecast_weight}")
    if not recordings:
        raise InputError("no healthy recordings to train on")
    if not (0.05 <= calib_fraction <= 0.6 and 0.05 <= val_fraction <= 0.4 and calib_fraction + val_fraction < 0.8):
        raise InputError(f"calib_fraction {calib_fraction} / val_fraction {val_fraction}: expected "
                         f"0.05-0.6 / 0.05-0.4 with a sum below 0.8")
    if epochs < 1:
        raise InputError(f"epochs must be >= 1, got {epochs}")
    spec = health_for_training(spec, [r.data for r in recordings if r.fs == spec.fs], "train vae")
    n_ch, n_bins = input_shape(spec, input)
    hop = int(train_hop or max(1, spec.window // 16))
    parts: dict[str, list[np.ndarray]] = {"fit": [], "val": [], "calib": []}
    blocks_info = []
    calib_groups: list[np.ndarray] = []  # recording index of each calibration window (drift: between-session spread)
    fit_frac = 1.0 - calib_fraction - val_fraction
    for r in recordings:
        if r.fs != spec.fs:
            raise InputError(f"{r.path}: sample rate {r.fs} Hz differs from the spec's {spec.fs} Hz")
        if r.data.shape[1] != n_ch:
            raise InputError(f"{r.path}: {r.data.shape[1]} channels, the spec has {n_ch} ({list(spec.channels)})")
        blocks = contiguous_blocks(r.data.shape[0], [fit_frac, val_fraction, calib_fraction], gap=spec.window,
                                   names=["fit", "val", "calib"], min_len=spec.window)
        for name, start, stop in blocks:
            parts[name].append(_spectra(spec, r.data[start:stop], hop if name != "calib" else spec.hop, input))
            if name == "calib":
                calib_groups.append(np.full(parts[name][-1].shape[0], len(calib_groups)))
            blocks_info.append({"file": Path(r.path).name, "block": name, "start": int(start), "stop": int(stop)})
    X = {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}
    if X["fit"].shape[0] < 32 or X["val"].shape[0] < 4:
        raise InputError(f"only {X['fit'].shape[0]} fit / {X['val'].shape[0]} validation windows: "
                         f"give more healthy data")
    if input == "waveform":  # one level and scale per channel (the model must see the absolute level)
        mean = X["fit"].mean(axis=(0, 2))[:, None].astype(np.float32)
        sd = X["fit"].std(axis=(0, 2))[:, None]
        scale = np.maximum(sd, 1e-4 * np.maximum(np.abs(mean), 1.0)).astype(np.float32)
    else:
        mean = X["fit"].mean(axis=0)
        scale = np.maximum(X["fit"].std(axis=0), float(min_scale_db)).astype(np.float32)

    _set_determinism(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is several times faster than two
    net = build_net(arch, n_ch, n_bins, latent)
    head = ForecastHead(n_ch, n_bins, int(forecast)) if forecast else None
    graph = ScoringGraph(net, mean, scale, recon_weight=1.0, kl_weight=beta, shape=(n_ch, n_bins),
                         forecast=head, forecast_weight=forecast_weight)
    params = list(net.parameters()) + (list(head.parameters()) if head is not None else [])
    opt = torch.optim.Adam(params, lr=lr)
    xf = torch.from_numpy(X["fit"])
    xv = torch.from_numpy(X["val"])
    gen = torch.Generator().manual_seed(seed)
    n_elem = float(n_ch * n_bins)
    best = (math.inf, -1)
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    best_head = {k: v.clone() for k, v in head.state_dict().items()} if head is not None else {}
    history = []
    t0 = time.monotonic()
    stopped = "max_epochs"
    for epoch in range(epochs):
        graph.train()
        perm = torch.randperm(xf.shape[0], generator=gen)
        tot = 0.0
        for i in range(0, xf.shape[0], batch_size):
            xb = graph.norm(xf[perm[i:i + batch_size]])
            mu, logvar = net.encode(xb)
            eps = torch.randn(mu.shape, generator=gen)
            code = mu + eps * torch.exp(0.5 * logvar)
            rec = net.decode(code)
            kl = 0.5 * (mu * mu + torch.exp(logvar) - 1.0 - logvar).sum(dim=1)
            loss = ((rec - xb) ** 2).mean(dim=(1, 2)).mean() + beta * kl.mean() / n_elem
            if head is not None:
                loss = loss + forecast_weight * ((head(xb) - xb[:, :, n_bins - head.horizon:]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * xb.shape[0]
        graph.eval()
        with torch.no_grad():
            val = float(graph(xv)[0].mean())
        history.append({"epoch": epoch, "train_loss": tot / xf.shape[0], "val_score": val})
        if progress:
            import sys
            sys.stderr.write(f"\repoch {epoch + 1}/{epochs} train {tot / xf.shape[0]:.4f} val {val:.4f}")
            sys.stderr.flush()
        if best[1] < 0 or val < best[0] - 1e-6 * abs(best[0]):
            best = (val, epoch)
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
            best_head = {k: v.clone() for k, v in head.state_dict().items()} if head is not None else {}
        elif epoch - best[1] >= patience:
            stopped = "early_stopping"
            break
        if max_seconds is not None and time.monotonic() - t0 > max_seconds:
            stopped = "time_limit"
            break
    if progress:
        import sys
        sys.stderr.write("\n")
    train_seconds = time.monotonic() - t0
    net.load_state_dict(best_state)
    if head is not None:
        head.load_state_dict(best_head)
    graph.eval()
    err_ref_info: dict[str, Any] = {"err_norm": bool(err_norm)}
    if err_norm:
        # healthy error level of every (channel, input), on the validation block (held out from
        # the fit, earlier than the calibration block); floored at 5 % of its median so an input
        # the model happens to reconstruct almost perfectly cannot dominate every score
        with torch.no_grad():
            ref = graph.raw_err(xv).mean(dim=0).numpy().astype(np.float64)
        floor = 0.05 * float(np.median(ref))
        err_ref_info.update({"err_ref_floor": floor, "err_ref_n_floored": int(np.sum(ref < floor)),
                             "err_ref_mean_by_channel": ref.mean(axis=tuple(range(1, ref.ndim))).tolist()})
        graph.set_err_ref(np.maximum(ref, floor))
        if head is not None:
            with torch.no_grad():
                fref = graph.raw_ferr(xv).mean(dim=0).numpy().astype(np.float64)
            graph.set_ferr_ref(np.maximum(fref, 0.05 * float(np.median(fref))))
    # latent sensitivity reference: distribution of the latent means over the fit windows
    with torch.no_grad():
        mu_fit = net.encode(graph.norm(xf))[0].numpy().astype(np.float64)
    latent_mean = mu_fit.mean(axis=0)
    latent_std = np.maximum(mu_fit.std(axis=0), 1e-3)
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)

    if export:
        onnx_bytes, parity, mflop, session_scores = export_scoring_graph(
            graph, n_ch, n_bins, check_inputs=[X["calib"], X["val"]], input_name=input)
    else:
        onnx_bytes, parity, mflop = b"", {}, float("nan")

        def session_scores(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return graph(torch.from_numpy(x))[0].numpy().astype(np.float64)
    calib_scores = session_scores(X["calib"])
    cal = calibrate(calib_scores, target_far=target_far, method=calibration, hysteresis=hysteresis,
                    groups=np.concatenate(calib_groups))
    fit_scores = session_scores(X["fit"])
    info = {
        "arch": arch, "input": input, "seed": seed, "latent": latent, "beta": beta, "lr": lr,
        "batch_size": batch_size, "epochs_run": len(history), "best_epoch": best[1], "stopped": stopped,
        "best_val_score": best[0], "train_seconds": round(train_seconds, 3), "train_hop": hop,
        "n_fit_windows": int(X["fit"].shape[0]), "n_val_windows": int(X["val"].shape[0]),
        "n_calib_windows": int(X["calib"].shape[0]), "blocks": blocks_info,
        "files": [Path(r.path).name for r in recordings],
        "n_parameters": int(sum(p.numel() for p in params)),
        "forecast": int(forecast), "forecast_weight": float(forecast_weight) if forecast else 0.0,
        "fit_far_at_threshold": float(np.mean(fit_scores > cal.threshold)),
        "history": history[-5:], **err_ref_info,
    }
    from edgefault.train.anomaly import fingerprint

    info["fingerprint"] = fingerprint(recordings)
    from edgefault.samples import training_scaling

    info["input_scaling"] = training_scaling(r.input_scaling for r in recordings)
    from edgefault.io.readers import file_rates

    info["file_rates"] = file_rates(recordings)
    info["n_bands"] = int(n_bands)
    info.update(evidence(calib_scores, target_far))  # independent windows, smallest supported target
    from edgefault.device.drift import calibrate_drift  # drift monitors: score CUSUM + MEWMA of mu, on held-out blocks

    if drift_far is not None:
        with torch.no_grad():
            mu_calib, mu_val = (graph(torch.from_numpy(X[b]))[3].numpy() for b in ("calib", "val"))
        info["drift"] = calibrate_drift(calib_scores, latent=mu_calib, latent_ref=mu_val,
                                        groups=np.concatenate(calib_groups), target_far=drift_far,
                                        adaptive=adaptive_threshold)
    info["n_segments"] = int(n_segments)
    info["latent_mean"] = latent_mean.tolist()
    info["latent_std"] = latent_std.tolist()
    return VAETraining(graph=graph, spec=spec, arch=arch, calibration=cal, calib_scores=calib_scores,
                       onnx_bytes=onnx_bytes, parity=parity, mflop=mflop, info=info)


def pack_vae(result: VAETraining, out: str | Path, *, k: int = 3, n: int = 5, name: str | None = None):  # type: ignore[no-untyped-def]
    """Pack the ONNX scoring graph, score weights, error grouping (frequency bands for spectrum
    input, time segments for waveform input), latent reference, PyTorch weights and threshold
    into a bundle."""
    from edgefault.export import pack_bundle

    spec = result.spec
    inp = str(result.info.get("input", "spectrum"))
    n_ch, n_bins = input_shape(spec, inp)
    cal = result.calibration
    g = result.graph
    model = {
        "kind": "vae", "task": "anomaly", "arch": result.arch, "input": inp,
        "representation": spec.blocks[0]["kind"] if inp == "spectrum" else "waveform",
        "score": "recon_weight * mean(squared standardised reconstruction error / healthy error level) "
                 "+ kl_weight * KL / n_inputs",
        "err_normalised": bool(result.info.get("err_norm", False)),
        "recon_weight": g.recon_weight, "kl_weight": g.kl_weight, "latent": int(result.info["latent"]),
        "onnx": "vae", "input_shape": ["batch", n_ch, n_bins], "outputs": list(g.output_names),
        "mflop_per_window": round(result.mflop, 4), "parity": result.parity,
    }
    arrays: dict[str, np.ndarray] = {}
    if inp == "waveform":
        arrays["segment_edges"] = segment_edges(n_bins, int(result.info.get("n_segments", 8)))
    else:
        arrays["band_edges"] = band_edges_bins(spec, int(result.info.get("n_bands", 16)))
    training = {k2: v for k2, v in result.info.items() if k2 not in ("latent_mean", "latent_std")}
    if "latent_mean" in result.info:  # latent sensitivity on the device: |mu - mean| / std per dimension
        arrays["latent_mean"] = np.asarray(result.info["latent_mean"], dtype=np.float32)
        arrays["latent_std"] = np.asarray(result.info["latent_std"], dtype=np.float32)
    # The PyTorch weights, so offline tools (gradient attribution) can rebuild the differentiable
    # graph with load_scoring_graph: every state_dict tensor as array "torch.<name>" (float32 .npy,
    # no pickle), the architecture in model["torch"].
    state = {f"{TORCH_PREFIX}{k}": v.detach().cpu().numpy().astype(np.float32)
             for k, v in g.state_dict().items()}
    if g.forecast is not None:
        model["forecast"] = {"horizon": g.forecast.horizon, "weight": g.forecast_weight,
                             "score": "+ weight * mean(squared standardised forecast error of the window's "
                                      "last horizon samples / healthy level)"}
        model["forecast_weight"] = g.forecast_weight
    model["torch"] = {"config": dict(g.net.config), "input": inp, "shape": [n_ch, n_bins],
                      "forecast": dict(g.forecast.config) if g.forecast is not None else None,
                      "forecast_weight": g.forecast_weight,
                      "state_dict": sorted(state), "recon_weight": g.recon_weight, "kl_weight": g.kl_weight,
                      "standardisation": ["torch.norm.mean", "torch.norm.inv_scale"],
                      "err_reference": "torch.inv_err_ref"}
    return pack_bundle(out, spec=spec, model=model, arrays={**arrays, **state},
                       onnx={"vae": result.onnx_bytes},
                       thresholds={"threshold": cal.threshold, "clear_threshold": cal.clear_threshold, "k": k,
                                   "n": n, "method": cal.method, "target_far": cal.target_far,
                                   "calibration": cal.to_dict(),
                                   **({"drift": result.info["drift"]} if result.info.get("drift") else {})},
                       training=training, name=name)


def load_scoring_graph(bundle: Any) -> ScoringGraph:
    """Rebuild the differentiable PyTorch :class:`ScoringGraph` of a VAE bundle (a
    :class:`edgefault.device.bundle.Bundle` or a path), in eval mode, float32, on the CPU.

    Stable API for offline tools (``edgefault explain``, gradient attribution): the returned
    module maps raw inputs ``x`` of shape ``(batch, *model["input_shape"][1:])`` (the device's
    feature rows reshaped per channel, before standardisation) to the tuple
    ``graph.output_names`` = (score, err, recon, mu, logvar[, forecast, ferr]) and equals the bundle's ONNX
    graph on the same inputs (within the export parity tolerance). ``graph.norm`` holds the
    standardisation, ``graph.net`` the encoder/decoder (``encode(z)``, ``decode(code)`` on
    standardised inputs).

    Raises BundleError if the bundle is not a VAE bundle or lacks the stored weights (bundles
    packed before the weights were stored: retrain).
    """
    from edgefault.device.bundle import Bundle, load_bundle
    from edgefault.errors import BundleError

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    where = f"bundle {b.path or b.bundle_id}"
    if b.kind != "vae":
        raise BundleError(f"{where}: model kind {b.kind!r}, load_scoring_graph needs a 'vae' bundle")
    tm = b.model.get("torch")
    if not isinstance(tm, dict) or not isinstance(tm.get("config"), dict):
        raise BundleError(f"{where}: no PyTorch weights stored (model.torch missing); retrain the model "
                          f"with this edgefault to get a bundle that load_scoring_graph can rebuild")
    cfg = dict(tm["config"])
    try:
        arch = str(cfg.pop("arch"))
        n_ch, n_bins, latent = int(cfg.pop("n_channels")), int(cfg.pop("n_bins")), int(cfg.pop("latent"))
        state = {k[len(TORCH_PREFIX):]: torch.from_numpy(np.array(b.arrays[k], dtype=np.float32))
                 for k in tm["state_dict"]}
        net = build_net(arch, n_ch, n_bins, latent, **cfg)
        fcfg = tm.get("forecast")
        head = ForecastHead(int(fcfg["n_channels"]), int(fcfg["n_in"]), int(fcfg["horizon"]),
                            int(fcfg["hidden"])) if fcfg else None
        graph = ScoringGraph(net, state["norm.mean"].numpy(), 1.0 / state["norm.inv_scale"].numpy(),
                             recon_weight=float(tm["recon_weight"]), kl_weight=float(tm["kl_weight"]),
                             shape=(n_ch, n_bins), forecast=head,
                             forecast_weight=float(tm.get("forecast_weight", 1.0)))
        state.setdefault("inv_err_ref", torch.ones(n_ch, n_bins))
        graph.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as e:
        raise BundleError(f"{where}: the stored PyTorch weights do not rebuild the model "
                          f"({type(e).__name__}: {str(e)[:300]})") from None
    graph.eval()
    return graph
