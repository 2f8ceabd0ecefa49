// Scoring and alarm state on the hot path. Both objects lock their mutex in every public member
// that touches mutable state (lock.hpp); the `const Lock&` overloads expect it held.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "edgefault/lock.hpp"

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
  // Uses an internal scratch row, under mutex() (locked here; held by the caller in the overload).
  void score(const float* x, std::size_t n, float* scores, float* contrib);
  void score(const Lock& held, const float* x, std::size_t n, float* scores, float* contrib) noexcept;
  const std::vector<float>& mean() const noexcept { return mean_; }
  std::mutex& mutex() const noexcept { return mu_; }
  Lock lock() const { return Lock(mu_); }

 private:
  std::vector<float> mean_, inv_scale_, precision_, z_;
  mutable std::mutex mu_;
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
  Step update(float score, bool valid);
  Step update(const Lock& held, float score, bool valid) noexcept;
  // A batch in one critical section: steps[i] for (scores[i], valid[i]), i < n.
  void update(const float* scores, const bool* valid, std::size_t n, Step* steps);
  unsigned k() const noexcept { return k_; }  // fixed at construction
  unsigned n() const noexcept { return n_; }
  bool alarm() const;
  float threshold() const;
  float clear_threshold() const;
  float threshold(const Lock& held) const noexcept;
  void set_threshold(float threshold, float clear_threshold);
  void set_threshold(const Lock& held, float threshold, float clear_threshold);
  void reset();
  void reset(const Lock& held) noexcept;
  // State: bit histories (bit 0 = newest), count of valid windows seen, alarm, thresholds; read
  // in one critical section.
  struct State {
    std::uint64_t above = 0, above_clear = 0, n_valid = 0;
    bool alarm = false;
    float threshold = 0.0f, clear_threshold = 0.0f;
  };
  State state() const;
  State state(const Lock& held) const noexcept;
  std::uint64_t n_valid() const { return state().n_valid; }
  void restore(std::uint64_t above, std::uint64_t above_clear, std::uint64_t n_valid, bool alarm);
  void restore(const Lock& held, std::uint64_t above, std::uint64_t above_clear, std::uint64_t n_valid,
               bool alarm) noexcept;
  std::mutex& mutex() const noexcept { return mu_; }
  Lock lock() const { return Lock(mu_); }

 private:
  float threshold_, clear_threshold_;
  unsigned k_, n_;
  std::uint64_t mask_;
  std::uint64_t above_ = 0, above_clear_ = 0, n_valid_ = 0;
  bool alarm_ = false;
  mutable std::mutex mu_;
};

}  // namespace edgefault
