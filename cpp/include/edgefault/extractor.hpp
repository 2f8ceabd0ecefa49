// Per-window feature extraction configured by a spec, so training and device compute the
// same numbers. One FeatureExtractor handles one channel's window; it owns all its buffers, so
// compute() never allocates. compute() uses those buffers, so it locks the extractor's mutex
// (lock.hpp); the configuration and names are fixed at construction and read without a lock.
#pragma once
#include <cstddef>
#include <mutex>
#include <string>
#include <memory>
#include <vector>

#include "edgefault/lock.hpp"

namespace edgefault {

enum class Taper { Rect, Hann, Hamming, Blackman };

struct BearingGeometry {
  double n_elements = 0;      // rolling elements
  double ball_diameter = 0;   // same unit as pitch_diameter
  double pitch_diameter = 0;
  double contact_angle_deg = 0;
};

struct FeatureBlock {
  enum class Kind {
    TimeStats,          // the 16 time-domain statistics (or a subset, see `stats`)
    BandEnergy,         // energies in n_bands bands between fmin and fmax (linear or log spaced)
    SpectralShape,      // centroid, spread, flatness, spectral kurtosis
    MagnitudeSpectrum,  // |X_k| (unnormalised rfft of the tapered window), k = 0..n/2
    LogPowerSpectrum,   // 10 log10(P_k + 1e-12), P_k the one-sided power (features.hpp), k = 0..n/2
    EnvelopeSpectrum,   // |FFT(taper * (envelope - mean))| bins up to fmax
    BearingEnvelope,    // envelope-spectrum energy at BPFO, BPFI, BSF, FTF x harmonics
  };
  Kind kind = Kind::TimeStats;
  std::vector<std::string> stats;  // TimeStats: names to keep; empty = all 16 in canonical order
  std::size_t n_bands = 16;
  bool log_spacing = true;         // BandEnergy
  bool log_values = true;          // BandEnergy: 10 log10(energy + eps) instead of energy
  double fmin = 0.0, fmax = 0.0;   // Hz; fmax = 0 means fs / 2
  double band_lo = 0.0, band_hi = 0.0;  // envelope band-pass in Hz; both 0 = none
  BearingGeometry geometry;        // BearingEnvelope
  double shaft_hz = 0.0;           // BearingEnvelope
  std::size_t harmonics = 3;       // BearingEnvelope
  double tolerance_hz = 0.0;       // BearingEnvelope: half-width around each line; 0 = 2 bins
  // Exact formulas and the Python block-dict schema: docs/features.md.
};

struct ExtractorConfig {
  double fs = 0.0;
  std::size_t window = 0;
  Taper taper = Taper::Hann;
  std::vector<FeatureBlock> blocks;
};

class FeatureExtractor {
 public:
  // Validates the config; throws std::invalid_argument naming the bad field.
  explicit FeatureExtractor(const ExtractorConfig& config);
  ~FeatureExtractor();
  FeatureExtractor(FeatureExtractor&&) noexcept;
  FeatureExtractor& operator=(FeatureExtractor&&) noexcept;

  const ExtractorConfig& config() const noexcept;
  std::size_t window() const noexcept;
  std::size_t n_features() const noexcept;
  // Stable, self-explaining names, e.g. "rms", "band03_1200_1500Hz", "bpfo_h1".
  const std::vector<std::string>& feature_names() const noexcept;
  // x: `window` samples of one channel; out: n_features() values. No allocation. Locks mutex().
  void compute(const float* x, float* out);
  // The same with mutex() already held by the caller (lock()), e.g. across a batch of windows.
  void compute(const Lock& held, const float* x, float* out);
  // The lock of the scratch buffers (not valid on a moved-from extractor).
  std::mutex& mutex() const noexcept;
  Lock lock() const { return Lock(mutex()); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefault
