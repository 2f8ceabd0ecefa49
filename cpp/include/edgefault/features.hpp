// Low-level per-window feature kernels for one channel: time-domain statistics, tapers, the
// one-sided power spectrum, band energies, spectral shape, the envelope (analytic-signal)
// spectrum and bearing defect frequencies. docs/features.md gives the exact formulas.
//
// Conventions: input float32, accumulation in double where precision matters. Objects own
// their scratch, so compute() calls never allocate; one object must not be used from two
// threads at once. Non-finite input never crashes: it propagates into NaN/Inf features.
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "edgefault/extractor.hpp"
#include "edgefault/fft.hpp"

namespace edgefault {

// Added to power before taking 10 log10 (log-power spectrum, log band energies) and used as the
// floor in spectral flatness: 1e-12 (a -120 dB floor in the units of the signal squared).
inline constexpr double kLogEps = 1e-12;

// ---------------------------------------------------------------- time-domain statistics
inline constexpr std::size_t kTimeStatCount = 16;
// Canonical order: mean, rms, smr, mean_abs, var, std, max, min, p2p, skewness, kurtosis,
// shape_factor, crest_factor, impulse_factor, margin_factor, kurtosis_factor.
const std::array<const char*, kTimeStatCount>& time_stat_names() noexcept;
// Index of a statistic in the canonical order, or -1 if the name is unknown.
int time_stat_index(const std::string& name) noexcept;
// Parts of the computation a statistic needs (bit mask for time_stats' `parts`): max, min and
// p2p are always computed; the others need central moments and/or sums of |x| and sqrt|x|.
inline constexpr unsigned kTimeStatsMoments = 1u;  // mean, rms, var, std, skewness, kurtosis, crest, kurtosis_factor
inline constexpr unsigned kTimeStatsAbs = 2u;      // smr, mean_abs, impulse, margin (shape needs both)
inline constexpr unsigned kTimeStatsAll = kTimeStatsMoments | kTimeStatsAbs;
unsigned time_stat_parts(int index) noexcept;
// The 16 statistics of x[0..n) in canonical order (n == 0 writes zeros). Only the `parts`
// requested are computed; the other entries are written as 0. Ratios whose denominator is
// exactly zero are 0 (so a constant or all-zero window gives no NaN/Inf); a NaN anywhere in the
// window makes all 16 outputs NaN. Moments are taken about the mean (scaled by max |x - mean|),
// so large offsets and large magnitudes lose no precision and do not overflow.
void time_stats(const float* x, std::size_t n, double* out, unsigned parts = kTimeStatsAll) noexcept;

// ---------------------------------------------------------------- tapers
// Parses "rect" (alias "boxcar", "rectangular"), "hann", "hamming", "blackman"; throws
// std::invalid_argument naming `field` otherwise.
Taper parse_taper(const std::string& name, const char* field = "taper");
const char* taper_name(Taper t) noexcept;
// Periodic (DFT-even) taper of length n, equal to scipy.signal.get_window(name, n, fftbins=True).
std::vector<float> make_taper(Taper t, std::size_t n);

// ---------------------------------------------------------------- spectrum
// Number of one-sided bins for an n-point real FFT: n/2 + 1.
inline constexpr std::size_t n_bins(std::size_t n) noexcept { return n / 2 + 1; }

// One FFT of the tapered window, shared by every spectral feature. After compute(x):
//   bins()[k]  = X_k = sum_j w_j x_j exp(-2 pi i j k / n),       k = 0..n/2
//   power()[k] = P_k = c_k |X_k|^2 / (n * sum_j w_j^2),  c_k = 1 at DC and (even n) Nyquist, else 2
// so sum_k P_k = mean((w x)^2) / mean(w^2): the mean square of the signal (exactly, for a rect
// taper; in expectation for a stationary signal under any taper).
class Spectrum {
 public:
  // Throws std::invalid_argument if n is not an FFT-supported size (2^a 3^b 5^c) or n < 2.
  Spectrum(std::size_t n, Taper taper);
  std::size_t size() const noexcept { return n_; }
  std::size_t n_bins() const noexcept { return n_ / 2 + 1; }
  const std::vector<float>& taper() const noexcept { return w_; }
  void compute(const float* x) noexcept;
  const cfloat* bins() const noexcept { return X_.data(); }
  const float* power() const noexcept { return P_.data(); }
  // |X_k| (unnormalised, = numpy.abs(numpy.fft.rfft(w * x))), n_bins() values.
  void magnitude(float* out) const noexcept;
  // 10 log10(P_k + kLogEps), n_bins() values.
  void log_power(float* out) const noexcept;

 private:
  std::size_t n_;
  std::vector<float> w_, xw_, P_;
  std::vector<cfloat> X_;
  float scale_dc_ = 0.f, scale_mid_ = 0.f, scale_nyq_ = 0.f;
  RealFFT fft_;
};

// ---------------------------------------------------------------- band energies
struct BandLayout {
  std::vector<double> edges;       // n_bands + 1 edges in Hz, fmin .. fmax
  std::vector<std::size_t> first;  // first bin of band b
  std::vector<std::size_t> last;   // one past the last bin of band b
  std::size_t n_bands() const noexcept { return first.size(); }
};
// Edges: linear, or geometric (log) between fmin and fmax; fmax <= 0 means fs/2; fmin <= 0 with
// log spacing means fs/n (the first non-DC bin). Bin k (centre f_k = k fs/n) belongs to band b
// when edges[b] <= f_k < edges[b+1]; the last band also takes f_k == fmax. Throws
// std::invalid_argument if a parameter is out of range or a band would hold no bin.
BandLayout make_band_layout(double fs, std::size_t n, std::size_t n_bands, double fmin,
                            double fmax, bool log_spacing);
// E_b = sum_{k in band b} P_k (double accumulation); with log_values, 10 log10(E_b + kLogEps).
void band_energies(const float* power, const BandLayout& layout, bool log_values,
                   float* out) noexcept;

// ---------------------------------------------------------------- spectral shape
// out[0..4) = centroid (Hz), spread (Hz), flatness, spectral kurtosis, over bins k = 0..nb-1 at
// f_k = k df with weights P_k. Zero total power gives 0, 0, 1, 0; zero spread gives kurtosis 0.
void spectral_shape(const float* power, std::size_t nb, double df, float* out) noexcept;
inline constexpr std::size_t kSpectralShapeCount = 4;
const std::array<const char*, kSpectralShapeCount>& spectral_shape_names() noexcept;

// ---------------------------------------------------------------- envelope
// Envelope spectrum of one window: analytic signal by FFT of the raw window (negative
// frequencies zeroed, positive doubled, DC and Nyquist kept; with a band, bins whose centre lies
// outside [band_lo, band_hi] are zeroed too), envelope e = |analytic|, mean removed, tapered,
// real FFT. After compute(x): magnitude()[k] = |E_k| (unnormalised), power()[k] uses the same
// one-sided scaling as Spectrum::power().
class Envelope {
 public:
  // band_lo == band_hi == 0: no band-pass. Throws std::invalid_argument for bad sizes/bands.
  Envelope(double fs, std::size_t n, Taper taper, double band_lo, double band_hi);
  std::size_t size() const noexcept { return n_; }
  std::size_t n_bins() const noexcept { return n_ / 2 + 1; }
  double band_lo() const noexcept { return band_lo_; }
  double band_hi() const noexcept { return band_hi_; }
  void compute(const float* x) noexcept;
  const float* envelope() const noexcept { return env_.data(); }  // |analytic|, mean not removed
  const float* magnitude() const noexcept { return mag_.data(); }
  const float* power() const noexcept { return P_.data(); }

 private:
  std::size_t n_;
  double band_lo_, band_hi_;
  std::size_t k_lo_ = 0, k_hi_ = 0;  // kept bins [k_lo_, k_hi_]
  std::vector<float> w_, env_, y_, mag_, P_;
  std::vector<cfloat> R_, Z_, E_;
  float scale_dc_ = 0.f, scale_mid_ = 0.f, scale_nyq_ = 0.f;
  RealFFT rfft_;
  ComplexFFT cfft_;
};

// ---------------------------------------------------------------- bearings
struct BearingFrequencies {
  double bpfo, bpfi, bsf, ftf;  // Hz (or multiples of shaft speed when shaft_hz == 1)
};
// BPFO = n/2 f (1 - r), BPFI = n/2 f (1 + r), BSF = D/(2d) f (1 - r^2), FTF = f/2 (1 - r),
// r = d/D cos(a). Throws std::invalid_argument unless n_elements >= 1, 0 < d < D,
// 0 <= a < 90 degrees and shaft_hz > 0 (all finite).
BearingFrequencies bearing_frequencies(const BearingGeometry& g, double shaft_hz);
inline constexpr std::size_t kBearingLineCount = 4;
const std::array<const char*, kBearingLineCount>& bearing_line_names() noexcept;  // bpfo, bpfi, bsf, ftf

// Bin ranges of the lines h * F (F in BPFO, BPFI, BSF, FTF; h = 1..harmonics) +- tolerance_hz
// (0 = 2 bins) in an n-point spectrum at fs. Feature order: bpfo_h1..bpfo_hH, bpfi_h1.., bsf_.., ftf_..
struct BearingLines {
  std::vector<std::size_t> first, last;  // bins [first, last) of each feature; empty if above fs/2
  std::vector<std::string> names;
  std::size_t size() const noexcept { return first.size(); }
};
BearingLines make_bearing_lines(const BearingGeometry& g, double shaft_hz, std::size_t harmonics,
                                double tolerance_hz, double fs, std::size_t n);
// out[i] = sum_{k in line i} P_k / sum_{all k} P_k (0 if the total is 0).
void bearing_energy_fractions(const float* power, std::size_t nb, const BearingLines& lines,
                              float* out) noexcept;

}  // namespace edgefault
