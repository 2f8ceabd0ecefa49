#include "edgefault/drift.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <stdexcept>
#include <string>

namespace edgefault {

namespace {
void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}
bool finite_pos(float v) { return std::isfinite(v) && v > 0.0f; }

float log_transform(float score, float floor, float center, float inv_scale, float clip) noexcept {
  const float u = (std::log(std::max(score, floor)) - center) * inv_scale;
  return std::min(std::max(u, -clip), clip);
}
}  // namespace

ScoreCusum::ScoreCusum(float center, float scale, float clip, float k, float h, float floor)
    : center_(center), inv_scale_(0.0f), clip_(clip), k_(k), h_(h), floor_(floor) {
  require(std::isfinite(center), "score drift: center must be finite");
  require(finite_pos(scale), "score drift: scale must be finite and > 0");
  require(finite_pos(clip), "score drift: clip must be finite and > 0");
  require(std::isfinite(k) && k >= 0.0f, "score drift: k must be finite and >= 0");
  require(finite_pos(h), "score drift: h (decision interval) must be finite and > 0");
  require(finite_pos(floor), "score drift: floor must be finite and > 0");
  inv_scale_ = 1.0f / scale;
}

float ScoreCusum::transform(float score) const noexcept {
  return log_transform(score, floor_, center_, inv_scale_, clip_);
}

float ScoreCusum::update(float score) noexcept {
  s_ = std::max(0.0, s_ + static_cast<double>(transform(score) - k_));
  return static_cast<float>(s_);
}

void ScoreCusum::restore(float s) {
  require(std::isfinite(s) && s >= 0.0f, "drift state: score CUSUM must be finite and >= 0");
  s_ = s;
}

Mewma::Mewma(std::vector<float> mean, std::vector<float> projection, float lambda, float limit)
    : mean_(std::move(mean)), w_(std::move(projection)), lambda_(lambda), limit_(limit), norm_(0.0) {
  const std::size_t d = mean_.size();
  require(d > 0, "latent drift: mean is empty");
  require(!w_.empty() && w_.size() % d == 0,
          "latent drift: projection must have q x dim values (dim = mean length), q >= 1");
  for (float v : mean_) require(std::isfinite(v), "latent drift: mean must be finite");
  for (float v : w_) require(std::isfinite(v), "latent drift: projection must be finite");
  require(std::isfinite(lambda) && lambda > 0.0f && lambda <= 1.0f, "latent drift: lambda must be in (0, 1]");
  require(finite_pos(limit), "latent drift: limit must be finite and > 0");
  e_.assign(w_.size() / d, 0.0);
  norm_ = (2.0 - static_cast<double>(lambda)) / static_cast<double>(lambda);
}

float Mewma::update(const float* x) noexcept {
  const std::size_t d = mean_.size(), q = e_.size();
  const double lam = lambda_, keep = 1.0 - lam;
  double t2 = 0.0;
  for (std::size_t r = 0; r < q; ++r) {
    const float* w = &w_[r * d];
    float y = 0.0f;
    for (std::size_t j = 0; j < d; ++j) y += w[j] * (x[j] - mean_[j]);
    e_[r] = keep * e_[r] + lam * static_cast<double>(y);
    t2 += e_[r] * e_[r];
  }
  stat_ = static_cast<float>(norm_ * t2);
  return stat_;
}

void Mewma::restore(const double* e, std::size_t n) {
  if (n != e_.size())
    throw std::invalid_argument("drift state: MEWMA vector has " + std::to_string(n) + " values, expected " +
                                std::to_string(e_.size()));
  double t2 = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    require(std::isfinite(e[i]), "drift state: MEWMA vector must be finite");
    t2 += e[i] * e[i];
  }
  std::copy(e, e + n, e_.begin());
  stat_ = static_cast<float>(norm_ * t2);
}

void Mewma::reset() noexcept {
  std::fill(e_.begin(), e_.end(), 0.0);
  stat_ = 0.0f;
}

AdaptiveThreshold::AdaptiveThreshold(float threshold, float clear_threshold, float center, float scale, float clip,
                                     float floor, float alpha, float lo, float hi)
    : base_(threshold), clear_ratio_(0.0f), center_(center), inv_scale_(0.0f), scale_(scale), clip_(clip),
      floor_(floor), alpha_(alpha), log_lo_(0.0f), log_hi_(0.0f), threshold_(threshold), clear_(clear_threshold) {
  require(finite_pos(threshold), "adaptive threshold: threshold must be finite and > 0");
  require(finite_pos(clear_threshold) && clear_threshold <= threshold,
          "adaptive threshold: clear_threshold must be finite, > 0 and <= threshold");
  require(std::isfinite(center), "adaptive threshold: center must be finite");
  require(finite_pos(scale), "adaptive threshold: scale must be finite and > 0");
  require(finite_pos(clip), "adaptive threshold: clip must be finite and > 0");
  require(finite_pos(floor), "adaptive threshold: floor must be finite and > 0");
  require(std::isfinite(alpha) && alpha > 0.0f && alpha <= 1.0f, "adaptive threshold: alpha must be in (0, 1]");
  require(finite_pos(lo) && lo <= 1.0f, "adaptive threshold: lo must be in (0, 1]");
  require(std::isfinite(hi) && hi >= 1.0f, "adaptive threshold: hi must be finite and >= 1");
  inv_scale_ = 1.0f / scale;
  clear_ratio_ = clear_threshold / threshold;
  log_lo_ = std::log(lo);
  log_hi_ = std::log(hi);
}

void AdaptiveThreshold::apply() noexcept {
  const double shift = std::min(std::max(level_ * static_cast<double>(scale_), static_cast<double>(log_lo_)),
                                static_cast<double>(log_hi_));
  threshold_ = static_cast<float>(static_cast<double>(base_) * std::exp(shift));
  clear_ = threshold_ * clear_ratio_;
  if (clear_ > threshold_) clear_ = threshold_;
}

void AdaptiveThreshold::update(float score) noexcept {
  const double u = log_transform(score, floor_, center_, inv_scale_, clip_);
  level_ += static_cast<double>(alpha_) * (u - level_);
  apply();
}

void AdaptiveThreshold::restore(float level) {
  require(std::isfinite(level) && std::fabs(level) <= clip_, "drift state: adaptive level must be finite, |level| <= clip");
  level_ = level;
  apply();
}

void AdaptiveThreshold::reset() noexcept {
  level_ = 0.0;
  apply();
}

DriftMonitor::DriftMonitor(std::optional<ScoreCusum> score, std::optional<Mewma> latent,
                           std::optional<AdaptiveThreshold> adaptive, std::uint32_t retrain_after, float clear_ratio)
    : score_(std::move(score)), latent_(std::move(latent)), adaptive_(std::move(adaptive)),
      retrain_after_(retrain_after), clear_ratio_(clear_ratio) {
  require(retrain_after >= 1, "drift: retrain_after must be >= 1 window");
  require(std::isfinite(clear_ratio) && clear_ratio > 0.0f && clear_ratio < 1.0f, "drift: clear_ratio must be in (0, 1)");
}

DriftMonitor::Step DriftMonitor::step(AlarmState& alarm, float score, const float* vec, bool valid) {
  const Lock held(mu_);
  const Lock alarm_held = alarm.lock();
  return step(held, alarm, alarm_held, score, vec, valid);
}

void DriftMonitor::step(AlarmState& alarm, const float* scores, const float* vec, const bool* valid, std::size_t n,
                        Step* out) {
  const Lock held(mu_);
  const Lock alarm_held = alarm.lock();
  const std::size_t ld = latent_dim();
  for (std::size_t i = 0; i < n; ++i)
    out[i] = step(held, alarm, alarm_held, scores[i], vec != nullptr ? vec + i * ld : nullptr, valid[i]);
}

DriftMonitor::Status DriftMonitor::status() const {
  const Lock held(mu_);
  return status(held);
}

DriftMonitor::Status DriftMonitor::status(const Lock& held) const {
  assert(holds(held, mu_));
  (void)held;
  Status s;
  s.monitors = active_;
  s.persist = persist_;
  if (score_) s.score_stat = score_->stat();
  if (latent_) {
    s.latent_stat = latent_->stat();
    s.ewma = latent_->ewma();
  }
  if (adaptive_) {
    s.adaptive_threshold = adaptive_->threshold();
    s.adaptive_level = adaptive_->level();
  }
  return s;
}

DriftMonitor::Step DriftMonitor::step(const Lock& held, AlarmState& alarm, const Lock& alarm_held, float score,
                                      const float* vec, bool valid) noexcept {
  assert(holds(held, mu_) && holds(alarm_held, alarm.mutex()));
  (void)held;
  Step st{0, active_, alarm.threshold(alarm_held), score_ ? score_->stat() : 0.0f, latent_ ? latent_->stat() : 0.0f};
  const auto a = alarm.update(alarm_held, score, valid);
  const std::uint8_t before = active_;
  if (valid && std::isfinite(score)) {
    if (score_) {
      const float s = score_->update(score);
      latch(*score_, s, kScoreDrift);
      st.score_stat = s;
    }
    if (latent_ && vec != nullptr) {
      bool ok = true;
      for (std::size_t j = 0; j < latent_->dim(); ++j) ok = ok && std::isfinite(vec[j]);
      if (ok) {
        const float t = latent_->update(vec);
        latch(*latent_, t, kLatentDrift);
        st.latent_stat = t;
      }
    }
    persist_ = active_ ? persist_ + 1 : 0;
    if (adaptive_ && !a.alarm && !active_) {
      adaptive_->update(score);
      alarm.set_threshold(alarm_held, adaptive_->threshold(), adaptive_->clear_threshold());  // valid by construction
    }
  }
  st.monitors = active_;
  st.bits = static_cast<std::uint8_t>((a.anomaly ? 2 : 0) | (a.alarm ? 4 : 0) | (a.changed ? 8 : 0) |
                                      (active_ ? kDrift : 0) | ((active_ != 0) != (before != 0) ? kDriftChanged : 0) |
                                      (active_ && persist_ >= retrain_after_ ? kRetrain : 0));
  return st;
}

void DriftMonitor::restore(std::uint8_t monitors, std::uint64_t persist, float cusum, const double* ewma,
                           std::size_t n_ewma, float level) {
  const Lock held(mu_);
  restore(held, monitors, persist, cusum, ewma, n_ewma, level);
}

void DriftMonitor::restore(const Lock& held, std::uint8_t monitors, std::uint64_t persist, float cusum,
                           const double* ewma, std::size_t n_ewma, float level) {
  assert(holds(held, mu_));
  (void)held;
  require((monitors & ~(kScoreDrift | kLatentDrift)) == 0, "drift state: monitors must be a 2-bit mask");
  require(score_ || !(monitors & kScoreDrift), "drift state: score drift flagged but no score monitor");
  require(latent_ || !(monitors & kLatentDrift), "drift state: latent drift flagged but no latent monitor");
  require(monitors != 0 || persist == 0, "drift state: persistence count without drift");
  // Check everything before changing anything, so a corrupt state leaves the monitor as it was.
  require(std::isfinite(cusum) && cusum >= 0.0f, "drift state: score CUSUM must be finite and >= 0");
  require(n_ewma == (latent_ ? latent_->q() : 0), "drift state: MEWMA vector has the wrong length");
  for (std::size_t i = 0; i < n_ewma; ++i) require(std::isfinite(ewma[i]), "drift state: MEWMA vector must be finite");
  require(std::isfinite(level), "drift state: adaptive level must be finite");
  if (adaptive_) adaptive_->restore(level);
  if (score_) score_->restore(cusum);
  if (latent_) latent_->restore(ewma, n_ewma);
  active_ = monitors;
  persist_ = persist;
}

void DriftMonitor::reset() {
  const Lock held(mu_);
  reset(held);
}

void DriftMonitor::reset(const Lock& held) noexcept {
  assert(holds(held, mu_));
  (void)held;
  if (score_) score_->reset();
  if (latent_) latent_->reset();
  if (adaptive_) adaptive_->reset();
  active_ = 0;
  persist_ = 0;
}

}  // namespace edgefault
