#include "edgefault/scoring.hpp"

#include <bitset>
#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace edgefault {

GaussianScorer::GaussianScorer(std::vector<float> mean, std::vector<float> scale, std::vector<float> precision)
    : mean_(std::move(mean)), precision_(std::move(precision)) {
  const std::size_t d = mean_.size();
  if (d == 0) throw std::invalid_argument("gaussian model: mean is empty");
  if (scale.size() != d)
    throw std::invalid_argument("gaussian model: scale has " + std::to_string(scale.size()) +
                                " values, expected " + std::to_string(d));
  if (precision_.size() != d * d)
    throw std::invalid_argument("gaussian model: precision has " + std::to_string(precision_.size()) +
                                " values, expected " + std::to_string(d) + "x" + std::to_string(d));
  inv_scale_.resize(d);
  z_.resize(d);
  for (std::size_t i = 0; i < d; ++i) {
    if (!std::isfinite(mean_[i])) throw std::invalid_argument("gaussian model: mean[" + std::to_string(i) + "] is not finite");
    if (!(scale[i] > 0.0f) || !std::isfinite(scale[i]))
      throw std::invalid_argument("gaussian model: scale[" + std::to_string(i) + "] must be finite and > 0");
    inv_scale_[i] = 1.0f / scale[i];
  }
  for (std::size_t i = 0; i < d; ++i) {
    if (!(precision_[i * d + i] > 0.0f))
      throw std::invalid_argument("gaussian model: precision diagonal must be > 0 (row " + std::to_string(i) + ")");
    for (std::size_t j = 0; j < d; ++j) {
      const float a = precision_[i * d + j], b = precision_[j * d + i];
      if (!std::isfinite(a)) throw std::invalid_argument("gaussian model: precision is not finite");
      if (std::fabs(a - b) > 1e-4f * (std::fabs(a) + std::fabs(b)) + 1e-12f)
        throw std::invalid_argument("gaussian model: precision is not symmetric");
    }
  }
}

void GaussianScorer::score(const float* x, std::size_t n, float* scores, float* contrib) {
  const Lock held(mu_);
  score(held, x, n, scores, contrib);
}

void GaussianScorer::score(const Lock& held, const float* x, std::size_t n, float* scores, float* contrib) noexcept {
  assert(holds(held, mu_));
  (void)held;
  const std::size_t d = mean_.size();
  float* z = z_.data();
  for (std::size_t r = 0; r < n; ++r) {
    const float* xr = x + r * d;
    bool ok = true;
    for (std::size_t i = 0; i < d; ++i) {
      z[i] = (xr[i] - mean_[i]) * inv_scale_[i];
      ok = ok && std::isfinite(z[i]);
    }
    if (!ok) {
      scores[r] = std::numeric_limits<float>::quiet_NaN();
      if (contrib) for (std::size_t i = 0; i < d; ++i) contrib[r * d + i] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    double total = 0.0;
    for (std::size_t i = 0; i < d; ++i) {
      const float* p = &precision_[i * d];
      float acc = 0.0f;
      for (std::size_t j = 0; j < d; ++j) acc += p[j] * z[j];
      const float ci = z[i] * acc;
      total += ci;
      if (contrib) contrib[r * d + i] = ci;
    }
    scores[r] = static_cast<float>(total);
  }
}

AlarmState::AlarmState(float threshold, float clear_threshold, unsigned k, unsigned n)
    : threshold_(threshold), clear_threshold_(clear_threshold), k_(k), n_(n) {
  if (n == 0 || n > 64) throw std::invalid_argument("alarm: n must be in [1, 64], got " + std::to_string(n));
  if (k == 0 || k > n)
    throw std::invalid_argument("alarm: k must be in [1, n=" + std::to_string(n) + "], got " + std::to_string(k));
  mask_ = n == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << n) - 1);
  set_threshold(threshold, clear_threshold);
}

void AlarmState::set_threshold(float threshold, float clear_threshold) {
  const Lock held(mu_);
  set_threshold(held, threshold, clear_threshold);
}

void AlarmState::set_threshold(const Lock& held, float threshold, float clear_threshold) {
  assert(holds(held, mu_));
  (void)held;
  if (!std::isfinite(threshold)) throw std::invalid_argument("alarm: threshold must be finite");
  if (!std::isfinite(clear_threshold) || clear_threshold > threshold)
    throw std::invalid_argument("alarm: clear_threshold must be finite and <= threshold");
  threshold_ = threshold;
  clear_threshold_ = clear_threshold;
}

static unsigned popcount64(std::uint64_t v) noexcept {
  return static_cast<unsigned>(std::bitset<64>(v).count());
}

AlarmState::Step AlarmState::update(float score, bool valid) {
  const Lock held(mu_);
  return update(held, score, valid);
}

void AlarmState::update(const float* scores, const bool* valid, std::size_t n, Step* steps) {
  const Lock held(mu_);
  for (std::size_t i = 0; i < n; ++i) steps[i] = update(held, scores[i], valid[i]);
}

AlarmState::Step AlarmState::update(const Lock& held, float score, bool valid) noexcept {
  assert(holds(held, mu_));
  (void)held;
  if (!valid || !std::isfinite(score)) return {false, alarm_, false};
  const bool anomaly = score > threshold_;
  above_ = ((above_ << 1) | (anomaly ? 1u : 0u)) & mask_;
  above_clear_ = ((above_clear_ << 1) | (score > clear_threshold_ ? 1u : 0u)) & mask_;
  ++n_valid_;
  const bool before = alarm_;
  if (!alarm_) {
    alarm_ = popcount64(above_) >= k_;
  } else {
    alarm_ = popcount64(above_clear_) >= k_;
  }
  return {anomaly, alarm_, alarm_ != before};
}

bool AlarmState::alarm() const {
  const Lock held(mu_);
  return alarm_;
}

float AlarmState::threshold() const {
  const Lock held(mu_);
  return threshold_;
}

float AlarmState::threshold(const Lock& held) const noexcept {
  assert(holds(held, mu_));
  (void)held;
  return threshold_;
}

float AlarmState::clear_threshold() const {
  const Lock held(mu_);
  return clear_threshold_;
}

AlarmState::State AlarmState::state() const {
  const Lock held(mu_);
  return state(held);
}

AlarmState::State AlarmState::state(const Lock& held) const noexcept {
  assert(holds(held, mu_));
  (void)held;
  return State{above_, above_clear_, n_valid_, alarm_, threshold_, clear_threshold_};
}

void AlarmState::reset() {
  const Lock held(mu_);
  reset(held);
}

void AlarmState::reset(const Lock& held) noexcept {
  assert(holds(held, mu_));
  (void)held;
  above_ = above_clear_ = n_valid_ = 0;
  alarm_ = false;
}

void AlarmState::restore(std::uint64_t above, std::uint64_t above_clear, std::uint64_t n_valid, bool alarm) {
  const Lock held(mu_);
  restore(held, above, above_clear, n_valid, alarm);
}

void AlarmState::restore(const Lock& held, std::uint64_t above, std::uint64_t above_clear, std::uint64_t n_valid,
                         bool alarm) noexcept {
  assert(holds(held, mu_));
  (void)held;
  above_ = above & mask_;
  above_clear_ = above_clear & mask_;
  n_valid_ = n_valid;
  alarm_ = alarm;
}

}  // namespace edgefault
