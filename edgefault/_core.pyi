"""
edgefault C++ core: framer, FFT, feature kernels, sensor-health checks, scoring and alarm state.

Threads: every stateful object (FeatureExtractor, Pipeline, GaussianScorer, AlarmState, DriftMonitor, ScoredStream, OmpCoder, TreeLassoCoder) holds its own lock across each call that touches its state, getters and get_state/set_state included, so calls on one object from several threads serialise and give what a serial run in the order admitted gives (ScoredStream.push holds the locks of all its objects). Waiting for a lock releases the GIL.

Window flags (ScoredStream meta column 1): FLAG_FINITE, FLAG_ANOMALY, FLAG_ALARM, FLAG_ALARM_CHANGED, FLAG_DRIFT, FLAG_DRIFT_CHANGED, FLAG_RETRAIN, FLAG_SENSOR_FAULT (a channel failed a health check: the window was not scored).
Health bits (one uint8 per window and channel, push(..., health=True)): FLAG_HEALTH_FLAT, FLAG_HEALTH_CLIP, FLAG_HEALTH_DROPOUT, FLAG_HEALTH_DC_JUMP; 0 = healthy. Rules and defaults: docs/features.md, 'Sensor health'.
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
class FeatureExtractor:
    """
    Per-window features of one channel from a block spec (docs/features.md).
    """
    def __init__(self, fs: typing.SupportsFloat | typing.SupportsIndex, window: typing.SupportsInt | typing.SupportsIndex, blocks: typing.Any, taper: str = 'hann') -> None:
        ...
    def __repr__(self) -> str:
        ...
    def compute(self, windows: typing.Any) -> numpy.typing.NDArray[numpy.float32]:
        """
        (window,) -> (n_features,) or (m, window) -> (m, n_features), float32.
        """
    @property
    def blocks(self) -> list:
        """
        The blocks with every default filled in (same schema as the constructor).
        """
    @property
    def feature_names(self) -> list[str]:
        ...
    @property
    def fs(self) -> float:
        ...
    @property
    def n_features(self) -> int:
        ...
    @property
    def taper(self) -> str:
        ...
    @property
    def window(self) -> int:
        ...
class Pipeline:
    """
    Streaming framer + feature extractor over n_channels interleaved channels, with per-channel sensor-health checks on every window: FLAG_HEALTH_FLAT (window std <= flat_abs, or < flat_rel x healthy_std), FLAG_HEALTH_CLIP (a plateau of samples at the window's extreme standing out from the levels below it, or samples at the configured rails), FLAG_HEALTH_DROPOUT (a run of >= dropout_run exact zeros or NaN), FLAG_HEALTH_DC_JUMP (the mean stepped by > dc_k reference stds from a window ending a hop before this one starts, and not as a ramp would). Definitions: docs/features.md, 'Sensor health'. Calls from several threads serialise on the pipeline's lock.
    """
    def __init__(self, n_channels: typing.SupportsInt | typing.SupportsIndex, hop: typing.SupportsInt | typing.SupportsIndex, extractor: FeatureExtractor, health: typing.Any = None) -> None:
        """
        health: the feature spec's 'health' section, a dict with any of checks (list of 'flat', 'clip', 'dropout', 'dc_jump'; [] = none), flat_abs, flat_rel, healthy_std (one per channel), clip_eps, clip_fraction, clip_ratio, clip_levels, rails ([lo, hi] after the scale), rail_fraction, dropout_run, dc_k, dc_own; None or missing keys = the conservative defaults (the .health property lists them). ValueError naming the key for a bad one.
        """
    def get_state(self) -> tuple[numpy.typing.NDArray[numpy.float32], int]:
        ...
    def max_windows_for(self, n_frames: typing.SupportsInt | typing.SupportsIndex) -> int:
        ...
    def push(self, chunk: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, features: bool = True, raw: bool = False, *, health: bool = False) -> typing.Any:
        """
        Push samples (n,) or (n, n_channels), float32/float64/int16/int32, each multiplied by scale. Returns (features (m, feature_dim) float32, end_frame (m,) uint64, finite (m,) bool, raw (m, n_channels, window) float32) for the m windows completed; features / raw have 0 rows unless asked for. With health=True a fifth item: health (m, n_channels) uint8, per window and channel the FLAG_HEALTH_* bits of the checks that failed (0 = healthy). The checks run on every window either way; this path does not exclude unhealthy windows from anything (the caller decides).
        """
    def reset(self) -> None:
        """
        Forget buffered samples and the health checks' previous window.
        """
    def set_state(self, tail: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], frames_seen: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Restore a get_state() tail; the DC-jump health check restarts (no previous window).
        """
    @property
    def feature_dim(self) -> int:
        ...
    @property
    def frames_seen(self) -> int:
        ...
    @property
    def health(self) -> dict:
        """
        The sensor-health settings with every default filled in (same schema as the constructor's health).
        """
    @property
    def hop(self) -> int:
        ...
    @property
    def n_channels(self) -> int:
        ...
    @property
    def window(self) -> int:
        ...
class GaussianScorer:
    """
    Squared Mahalanobis distance with per-feature contributions.
    """
    def __init__(self, mean: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], scale: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], precision: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> None:
        ...
    def score(self, features: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], contrib: bool = True) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
        ...
    @property
    def dim(self) -> int:
        ...
class AlarmState:
    """
    k-of-n debounced alarm with hysteresis.
    """
    def __init__(self, threshold: typing.SupportsFloat | typing.SupportsIndex, clear_threshold: typing.SupportsFloat | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def get_state(self) -> tuple[int, int, int, bool]:
        ...
    def reset(self) -> None:
        ...
    def set_state(self, above: typing.SupportsInt | typing.SupportsIndex, above_clear: typing.SupportsInt | typing.SupportsIndex, n_valid: typing.SupportsInt | typing.SupportsIndex, alarm: bool) -> None:
        ...
    def set_threshold(self, threshold: typing.SupportsFloat | typing.SupportsIndex, clear_threshold: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    def update(self, scores: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], valid: typing.Annotated[numpy.typing.ArrayLike, numpy.bool]) -> tuple[numpy.typing.NDArray[numpy.bool], numpy.typing.NDArray[numpy.bool], numpy.typing.NDArray[numpy.bool]]:
        ...
    @property
    def alarm(self) -> bool:
        ...
    @property
    def clear_threshold(self) -> float:
        ...
    @property
    def k(self) -> int:
        ...
    @property
    def n(self) -> int:
        ...
    @property
    def threshold(self) -> float:
        ...
class ScoredStream:
    """
    Fused push for core-scored models: framing, sensor health, features, score, contributions and alarm state (and drift) in one call. Holds references to the objects; a push holds the locks of all of them, so concurrent pushes serialise.
    """
    def __init__(self, pipeline: Pipeline, scorer: GaussianScorer, alarm: AlarmState, drift: typing.Any = None) -> None:
        """
        drift: an optional DriftMonitor; push then returns meta (m, 7) = end_frame, flags, score, threshold, score drift stat, latent drift stat, signalling monitors
        """
    def push(self, chunk: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, health: bool = False) -> typing.Any:
        """
        None when no window completes, else (meta (m, 3) float64 = end_frame, flags (FLAG_* bits), score; contrib (m, feature_dim) float32), meta (m, 7) with drift. With health=True a third item: health (m, n_channels) uint8, the FLAG_HEALTH_* bits per window and channel (0 = healthy). A window with any health bit set has FLAG_SENSOR_FAULT in flags (FLAG_FINITE as its samples were), score and contrib NaN, and was not folded into the alarm, drift monitors or adaptive threshold (like a non-finite window).
        """
    def push_into(self, chunk: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], scale: typing.SupportsFloat | typing.SupportsIndex, meta: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], contrib: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], health: typing.Any = None) -> typing.Any:
        """
        Like push, into caller-owned arrays (no allocation): meta (capacity, 3 or 7) float64, contrib (capacity, feature_dim) float32, health (capacity, n_channels) uint8 or None. Returns the number of windows written (rows 0..m-1). ValueError, with nothing accepted, when the chunk can complete more windows than capacity.
        """
class OmpCoder:
    """
    Batch-OMP coder over a fixed unit-norm dictionary (n_features, n_atoms), columns = atoms. See edgefault.sparse.OmpCoder.
    """
    def __init__(self, dictionary: typing.Any, max_k: typing.SupportsInt | typing.SupportsIndex, allow_duplicates: bool = False) -> None:
        ...
    def encode(self, X: typing.Any, k: typing.SupportsInt | typing.SupportsIndex | None = None, tol: typing.SupportsFloat | typing.SupportsIndex | None = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.int32]]:
        """
        X (n, n_features) -> (codes (n, n_atoms), squared residual norms (n,), atoms used (n,)). Stops at k atoms (default max_k) or when the squared residual <= tol.
        """
    @property
    def gram(self) -> numpy.typing.NDArray[numpy.float32]:
        ...
    @property
    def kernel(self) -> str:
        ...
    @property
    def max_k(self) -> int:
        ...
    @property
    def n_atoms(self) -> int:
        ...
    @property
    def n_features(self) -> int:
        ...
class IndexTreeNorm:
    """
    Tree-structured group norm sum_g w_g ||v_g||_2; groups = atoms of each node's subtree.
    """
    def __init__(self, parent: typing.Any, atom_node: typing.Any, weights: typing.Any) -> None:
        ...
    def prox(self, v: typing.Any, lam: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
        """
        Row-wise prox of lam * Omega on v (n, n_atoms).
        """
    def value(self, v: typing.Any) -> numpy.typing.NDArray[numpy.float64]:
        """
        Row-wise Omega(v) for v (n, n_atoms).
        """
    @property
    def n_atoms(self) -> int:
        ...
    @property
    def n_nodes(self) -> int:
        ...
    @property
    def perm(self) -> list[int]:
        ...
class TreeLassoCoder:
    """
    Tree-structured group-lasso coder (FISTA + exact tree prox). See edgefault.sparse.TreeLassoCoder.
    """
    def __init__(self, dictionary: typing.Any, tree: IndexTreeNorm) -> None:
        ...
    def encode(self, X: typing.Any, lam: typing.SupportsFloat | typing.SupportsIndex, max_iter: typing.SupportsInt | typing.SupportsIndex, tol: typing.SupportsFloat | typing.SupportsIndex, init: typing.Any = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.int32]]:
        """
        X (n, n_features) -> (codes (n, n_atoms), iterations (n,)).
        """
    @property
    def kernel(self) -> str:
        ...
    @property
    def lipschitz(self) -> float:
        ...
    @property
    def n_atoms(self) -> int:
        ...
    @property
    def n_features(self) -> int:
        ...
class DriftMonitor:
    """
    Score-level CUSUM (on the winsorised robust-standardised log-score), latent MEWMA and adaptive threshold, stepped per window together with an AlarmState. Each part is enabled by its parameters: score_h (score CUSUM), latent_mean + latent_projection + latent_limit (MEWMA), adaptive_alpha (+ threshold, clear_threshold; its log-score centre is adaptive_center, default log_center) (adaptive threshold).
    """
    def __init__(self, *, log_center: typing.SupportsFloat | typing.SupportsIndex = 0.0, log_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, clip: typing.SupportsFloat | typing.SupportsIndex = 4.0, floor: typing.SupportsFloat | typing.SupportsIndex = 1.0000000031710769e-30, score_k: typing.SupportsFloat | typing.SupportsIndex = 0.5, score_h: typing.SupportsFloat | typing.SupportsIndex | None = None, latent_mean: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, latent_projection: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, latent_lambda: typing.SupportsFloat | typing.SupportsIndex = 0.05000000074505806, latent_limit: typing.SupportsFloat | typing.SupportsIndex | None = None, threshold: typing.SupportsFloat | typing.SupportsIndex | None = None, clear_threshold: typing.SupportsFloat | typing.SupportsIndex | None = None, adaptive_alpha: typing.SupportsFloat | typing.SupportsIndex | None = None, adaptive_lo: typing.SupportsFloat | typing.SupportsIndex = 0.5, adaptive_hi: typing.SupportsFloat | typing.SupportsIndex = 2.0, adaptive_center: typing.SupportsFloat | typing.SupportsIndex | None = None, retrain_after: typing.SupportsInt | typing.SupportsIndex = 100, clear_ratio: typing.SupportsFloat | typing.SupportsIndex = 0.5) -> None:
        ...
    def get_state(self) -> tuple[int, int, float, numpy.typing.NDArray[numpy.float64], float]:
        """
        (monitors, persist, score CUSUM, MEWMA vector (q,), adaptive level)
        """
    def reset(self) -> None:
        ...
    def set_state(self, monitors: typing.SupportsInt | typing.SupportsIndex, persist: typing.SupportsInt | typing.SupportsIndex, cusum: typing.SupportsFloat | typing.SupportsIndex, ewma: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], level: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    def step(self, alarm: AlarmState, scores: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], valid: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], latent: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> tuple[numpy.typing.NDArray[numpy.uint8], numpy.typing.NDArray[numpy.float64]]:
        """
        Step alarm + monitors over a batch of windows. Returns (flags (m,) uint8: anomaly / alarm / alarm-changed / drift / drift-changed / retrain bits, stats (m, 4) float64: threshold used, score CUSUM, latent MEWMA, signalling monitors (DRIFT_SCORE | DRIFT_LATENT)).
        """
    @property
    def adaptive_threshold(self) -> float | None:
        ...
    @property
    def drift(self) -> bool:
        ...
    @property
    def has_adaptive(self) -> bool:
        ...
    @property
    def has_latent(self) -> bool:
        ...
    @property
    def has_score(self) -> bool:
        ...
    @property
    def latent_dim(self) -> int:
        ...
    @property
    def latent_limit(self) -> float | None:
        ...
    @property
    def latent_q(self) -> int:
        ...
    @property
    def latent_stat(self) -> float:
        ...
    @property
    def monitors(self) -> int:
        ...
    @property
    def retrain_after(self) -> int:
        ...
    @property
    def score_limit(self) -> float | None:
        ...
    @property
    def score_stat(self) -> float:
        ...
def band_edges(fs: typing.SupportsFloat | typing.SupportsIndex, window: typing.SupportsInt | typing.SupportsIndex, n_bands: typing.SupportsInt | typing.SupportsIndex = 16, fmin: typing.SupportsFloat | typing.SupportsIndex = 0.0, fmax: typing.SupportsFloat | typing.SupportsIndex = 0.0, spacing: str = 'log') -> numpy.typing.NDArray[numpy.float64]:
    """
    Band edges in Hz (n_bands + 1 values), as used by band_energies.
    """
def band_energies(windows: typing.Any, fs: typing.SupportsFloat | typing.SupportsIndex, n_bands: typing.SupportsInt | typing.SupportsIndex = 16, fmin: typing.SupportsFloat | typing.SupportsIndex = 0.0, fmax: typing.SupportsFloat | typing.SupportsIndex = 0.0, spacing: str = 'log', log: bool = True, taper: str = 'hann') -> numpy.typing.NDArray[numpy.float32]:
    """
    Sum of one-sided power P_k over each band; 10 log10(E + LOG_EPS) if log.
    """
def bearing_frequencies(n_elements: typing.SupportsFloat | typing.SupportsIndex, ball_diameter: typing.SupportsFloat | typing.SupportsIndex, pitch_diameter: typing.SupportsFloat | typing.SupportsIndex, contact_angle_deg: typing.SupportsFloat | typing.SupportsIndex, shaft_hz: typing.SupportsFloat | typing.SupportsIndex) -> dict:
    """
    Bearing defect frequencies in Hz: dict with bpfo, bpfi, bsf, ftf.
    """
def envelope(windows: typing.Any, fs: typing.SupportsFloat | typing.SupportsIndex, band_lo: typing.SupportsFloat | typing.SupportsIndex = 0.0, band_hi: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> numpy.typing.NDArray[numpy.float32]:
    """
    |analytic signal| of each (optionally band-passed) window, (m, n) -> (m, n).
    """
def envelope_spectrum(windows: typing.Any, fs: typing.SupportsFloat | typing.SupportsIndex, band_lo: typing.SupportsFloat | typing.SupportsIndex = 0.0, band_hi: typing.SupportsFloat | typing.SupportsIndex = 0.0, taper: str = 'hann') -> numpy.typing.NDArray[numpy.float32]:
    """
    |rfft(w (e - mean e))| of the envelope e, (m, n) -> (m, n/2+1).
    """
def fft(x: typing.Any) -> numpy.ndarray[typing.Any, numpy.dtype[typing.Any]]:
    """
    Complex FFT over the last axis: complex64 (..., n) -> complex64 (..., n), unnormalised.
    """
def fft_size_supported(n: typing.SupportsInt | typing.SupportsIndex) -> bool:
    """
    True if n is a supported FFT length (n >= 1 and 2^a 3^b 5^c).
    """
def ifft(x: typing.Any) -> numpy.ndarray[typing.Any, numpy.dtype[typing.Any]]:
    """
    Inverse complex FFT over the last axis, scaled by 1/n (numpy.fft.ifft).
    """
def irfft(X: typing.Any, n: typing.Any = None) -> numpy.ndarray[typing.Any, numpy.dtype[typing.Any]]:
    """
    Inverse real FFT over the last axis: complex64 (..., n//2+1) -> float32 (..., n), scaled by 1/n (numpy.fft.irfft). n defaults to 2*(X.shape[-1]-1). Imaginary parts of the DC and Nyquist bins are ignored.
    """
def log_power_spectrum(windows: typing.Any, taper: str = 'hann') -> numpy.typing.NDArray[numpy.float32]:
    """
    10 log10(P_k + LOG_EPS), (m, n) -> (m, n/2+1).
    """
def magnitude_spectrum(windows: typing.Any, taper: str = 'hann') -> numpy.typing.NDArray[numpy.float32]:
    """
    |rfft(w x)| (unnormalised), (m, n) -> (m, n/2+1).
    """
def next_fast_len(n: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Smallest supported FFT length (2^a 3^b 5^c) >= n.
    """
def power_spectrum(windows: typing.Any, taper: str = 'hann') -> numpy.typing.NDArray[numpy.float32]:
    """
    One-sided power per bin P_k = c_k |X_k|^2 / (n sum w^2), (m, n) -> (m, n/2+1).
    """
def rfft(x: typing.Any) -> numpy.ndarray[typing.Any, numpy.dtype[typing.Any]]:
    """
    Real FFT over the last axis: float32 (..., n) -> complex64 (..., n//2+1), unnormalised (numpy.fft.rfft convention). n must be 2^a 3^b 5^c. Other real dtypes are cast to float32; complex input raises ValueError.
    """
def sparse_allow_simd(allow: bool) -> None:
    """
    Sparse coders constructed from now on use the AVX2+FMA kernels when the CPU has them (True, default) or the portable kernels (False). Process-wide; for tests and benchmarks.
    """
def sparse_simd_active() -> bool:
    """
    Whether a sparse coder constructed now uses the AVX2+FMA kernels.
    """
def spectral_shape(windows: typing.Any, fs: typing.SupportsFloat | typing.SupportsIndex, taper: str = 'hann') -> numpy.typing.NDArray[numpy.float32]:
    """
    (m, n) -> (m, 4): centroid (Hz), spread (Hz), flatness, spectral kurtosis.
    """
def spectral_shape_names() -> list[str]:
    """
    Names of the spectral_shape outputs: centroid, spread, flatness, spectral_kurtosis.
    """
def time_stat_names() -> list[str]:
    """
    The 16 time-domain statistics in canonical order.
    """
def time_stats(windows: typing.Any) -> numpy.typing.NDArray[numpy.float32]:
    """
    (m, n) float32 -> (m, 16) time-domain statistics (see time_stat_names()).
    """
DRIFT_LATENT: int = 2
DRIFT_SCORE: int = 1
FLAG_ALARM: int = 4
FLAG_ALARM_CHANGED: int = 8
FLAG_ANOMALY: int = 2
FLAG_DRIFT: int = 16
FLAG_DRIFT_CHANGED: int = 32
FLAG_FINITE: int = 1
FLAG_HEALTH_CLIP: int = 2
FLAG_HEALTH_DC_JUMP: int = 8
FLAG_HEALTH_DROPOUT: int = 4
FLAG_HEALTH_FLAT: int = 1
FLAG_RETRAIN: int = 64
FLAG_SENSOR_FAULT: int = 128
LOG_EPS: float = 1e-12
__version__: str = '0.1.0'
