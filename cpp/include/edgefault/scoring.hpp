// Scoring and alarm state on the hot path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgefault {

// Squared Mahalanobis distance in a standardised feature space:
//   z = (x - mean) / scale,  score = z^T P z,  contribution_i = z_i (P z)_i  (sums to score).
class GaussianScorer {
 public:
  // precision: dim x dim, row-major, symmetric positive definite. Throws std::invalid_argument on
  // non-finite or non-positive scale, non-symmetric precision, or a dimension mismatch.
  GaussianScorer(std::vector<float> mean, std::vector<float> scale, std::vector<float> precision);
  std::size_t dim() const noexcept { return mean_.size(); }
  // x: n x dim. scores: n. contrib: n x dim or null. Rows with a non-finite x give NaN.
  // Uses an internal scratch row: one scorer must not be used from two threads at once.
  void score(const float* x, std::size_t n, float* scores, float* contrib) noexcept;
  const std::vector<float>& mean() const noexcept { return mean_; }

 private:
  std::vector<float> mean_, inv_scale_, precision_, z_;
};

// Debounced alarm with hysteresis. A window is "anomalous" when score > threshold. The alarm
// turns on when at least k of the last n valid windows were anomalous, and turns off when fewer
// than k of the last n valid windows scored above clear_threshold (<= threshold). Windows marked
// invalid (non-finite input) leave the state untouched.
class AlarmState {
 public:
  AlarmState(float threshold, float clear_threshold, unsigned k, unsigned n);
  struct Step {
    bool anomaly;  // this window's score > threshold
    bool alarm;    // debounced state after this window
    bool changed;  // alarm state changed on this window
  };
  Step update(float score, bool valid) noexcept;
  bool alarm() const noexcept { return alarm_; }
  float threshold() const noexcept { return threshold_; }
  float clear_threshold() const noexcept { return clear_threshold_; }
  unsigned k() const noexcept { return k_; }
  unsigned n() const noexcept { return n_; }
  void set_threshold(float threshold, float clear_threshold);
  void reset() noexcept;
  // State: bit histories (bit 0 = newest) and count of valid windows seen.
  std::uint64_t above_bits() const noexcept { return above_; }
  std::uint64_t above_clear_bits() const noexcept { return above_clear_; }
  std::uint64_t n_valid() const noexcept { return n_valid_; }
  void restore(std::uint64_t above, std::uint64_t above_clear, std::uint64_t n_valid, bool alarm) noexcept;

 private:
  float threshold_, clear_threshold_;
  unsigned k_, n_;
  std::uint64_t mask_;
  std::uint64_t above_ = 0, above_clear_ = 0, n_valid_ = 0;
  bool alarm_ = false;
};

}  // namespace edgefault
