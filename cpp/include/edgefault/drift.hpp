// Drift monitors and a per-machine adaptive threshold, stepped once per scored window.
//
// Design (signal-processing view):
//  * Score level: one-sided (upward) CUSUM on u = clip((log max(score, floor) - center) / scale,
//    -clip, +clip), where center / scale are the median and 1.4826 * MAD of the healthy
//    calibration log-scores. Log makes the score's heavy right tail roughly symmetric; the robust
//    standardisation makes the reference value k (in robust sigmas) mean the same for every model;
//    winsorising bounds what one window can add (clip - k), so a burst of isolated anomalies (the
//    alarm's business) does not also read as drift. S_t = max(0, S_{t-1} + u_t - k).
//  * Latent distribution: MEWMA on y = W (x - mean), x the model's latent mean (VAE) or the
//    feature vector (Gaussian; W then is a whitened projection on the leading principal axes).
//    E_t = (1 - lambda) E_{t-1} + lambda y_t, statistic T2 = (2 - lambda) / lambda * |E_t|^2
//    (asymptotic EWMA variance; in control E[T2] ~ q when y is white with unit covariance).
//  * Each monitor signals when its statistic exceeds its limit; the signal latches until the
//    statistic falls to clear_ratio * limit, and the monitor then restarts from its initial
//    state (renewal: the in-control onset rate is 1 / ARL0 of the zero-state run length the
//    limits were calibrated for, by simulation, at training time).
//  * Adaptive threshold: an EWMA of the winsorised log-score on healthy windows (alarm off and no
//    drift) moves the threshold by exp(level - center), bounded to [lo, hi] times the calibrated
//    one; frozen while the alarm or drift is on, so a fault cannot teach itself into normal.
// No allocation per window; windows with a non-finite score leave every state untouched.
// Thread safety (lock.hpp): DriftMonitor locks its mutex, then the AlarmState's, in step(); its
// state accessors lock too. ScoreCusum / Mewma / AdaptiveThreshold are parts of one monitor and
// have no lock of their own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "edgefault/lock.hpp"
#include "edgefault/scoring.hpp"

namespace edgefault {

// Flag bits beyond WindowFlag (stream.hpp uses 1, 2, 4, 8).
enum DriftFlag : std::uint8_t {
  kDrift = 16,         // a drift monitor is signalling after this window
  kDriftChanged = 32,  // drift state changed on this window
  kRetrain = 64,       // drift has persisted for retrain_after valid windows: retraining recommended
};
// Bits of DriftStep::monitors.
enum DriftMonitorBit : std::uint8_t { kScoreDrift = 1, kLatentDrift = 2 };

class ScoreCusum {
 public:
  // center, scale: robust location / spread of healthy log-scores (scale > 0); clip > 0 winsorises
  // the standardised value; k >= 0 reference value; h > 0 decision interval; floor > 0 smallest
  // score taken into the log. Throws std::invalid_argument naming the parameter.
  ScoreCusum(float center, float scale, float clip, float k, float h, float floor);
  float transform(float score) const noexcept;
  float update(float score) noexcept;  // score must be finite; returns S after
  float stat() const noexcept { return static_cast<float>(s_); }
  float limit() const noexcept { return h_; }
  void restore(float s);
  void reset() noexcept { s_ = 0.0; }

 private:
  float center_, inv_scale_, clip_, k_, h_, floor_;
  double s_ = 0.0;
};

class Mewma {
 public:
  // mean: dim values; projection: q x dim row-major (q >= 1); 0 < lambda <= 1; limit > 0.
  Mewma(std::vector<float> mean, std::vector<float> projection, float lambda, float limit);
  std::size_t dim() const noexcept { return mean_.size(); }
  std::size_t q() const noexcept { return e_.size(); }
  float update(const float* x) noexcept;  // x: dim finite values; returns T2 after
  float stat() const noexcept { return stat_; }
  float limit() const noexcept { return limit_; }
  float lambda() const noexcept { return lambda_; }
  const std::vector<double>& ewma() const noexcept { return e_; }
  void restore(const double* e, std::size_t n);
  void reset() noexcept;

 private:
  std::vector<float> mean_, w_;
  float lambda_, limit_;
  double norm_;
  std::vector<double> e_;
  float stat_ = 0.0f;
};

class AdaptiveThreshold {
 public:
  // threshold, clear_threshold: calibrated values (0 < clear <= threshold); center / scale / clip /
  // floor: the same log-score transform as ScoreCusum; alpha in (0, 1]: EWMA rate (time constant
  // 1 / alpha windows); 0 < lo <= 1 <= hi: bounds on threshold / calibrated threshold.
  AdaptiveThreshold(float threshold, float clear_threshold, float center, float scale, float clip, float floor,
                    float alpha, float lo, float hi);
  void update(float score) noexcept;  // score must be finite
  float threshold() const noexcept { return threshold_; }
  float clear_threshold() const noexcept { return clear_; }
  float base_threshold() const noexcept { return base_; }
  float level() const noexcept { return static_cast<float>(level_); }  // standardised baseline, 0 at calibration
  void restore(float level);
  void reset() noexcept;

 private:
  void apply() noexcept;
  float base_, clear_ratio_, center_, inv_scale_, scale_, clip_, floor_, alpha_, log_lo_, log_hi_;
  double level_ = 0.0;
  float threshold_, clear_;
};

class DriftMonitor {
 public:
  // Any of the three parts may be absent. retrain_after >= 1; 0 < clear_ratio < 1.
  DriftMonitor(std::optional<ScoreCusum> score, std::optional<Mewma> latent, std::optional<AdaptiveThreshold> adaptive,
               std::uint32_t retrain_after, float clear_ratio);
  struct Step {
    std::uint8_t bits;      // WindowFlag kAnomaly/kAlarm/kAlarmChanged + DriftFlag bits
    std::uint8_t monitors;  // DriftMonitorBit of the monitors signalling
    float threshold;        // threshold this window was judged against
    float score_stat, latent_stat;
  };
  // Updates alarm (with the current threshold), the monitors and the adaptive threshold for one
  // window. vec: latent_dim() values (skipped when null or non-finite); invalid windows
  // (valid false or non-finite score) change nothing. Locks mutex(), then alarm.mutex().
  Step step(AlarmState& alarm, float score, const float* vec, bool valid);
  // The same with both locks held by the caller.
  Step step(const Lock& held, AlarmState& alarm, const Lock& alarm_held, float score, const float* vec,
            bool valid) noexcept;
  // A batch in one critical section: out[i] for (scores[i], vec + i * latent_dim() (vec may be
  // null), valid[i]), i < n.
  void step(AlarmState& alarm, const float* scores, const float* vec, const bool* valid, std::size_t n, Step* out);
  // Fixed at construction (no lock): which parts exist, their dimensions and limits. The parts'
  // live statistics are read through status() (under the lock).
  std::size_t latent_dim() const noexcept { return latent_ ? latent_->dim() : 0; }
  std::size_t latent_q() const noexcept { return latent_ ? latent_->q() : 0; }
  bool has_score() const noexcept { return score_.has_value(); }
  bool has_latent() const noexcept { return latent_.has_value(); }
  bool has_adaptive() const noexcept { return adaptive_.has_value(); }
  float score_limit() const noexcept { return score_ ? score_->limit() : 0.0f; }
  float latent_limit() const noexcept { return latent_ ? latent_->limit() : 0.0f; }
  std::uint32_t retrain_after() const noexcept { return retrain_after_; }
  float clear_ratio() const noexcept { return clear_ratio_; }
  // Live state, read in one critical section.
  struct Status {
    std::uint8_t monitors = 0;  // DriftMonitorBit of the monitors signalling
    std::uint64_t persist = 0;  // valid windows the drift has persisted
    float score_stat = 0.0f, latent_stat = 0.0f;       // 0 for absent parts
    float adaptive_threshold = 0.0f, adaptive_level = 0.0f;  // 0 without the adaptive part
    std::vector<double> ewma;   // MEWMA vector (latent_q() values)
  };
  Status status() const;
  Status status(const Lock& held) const;
  std::uint8_t monitors() const { return status().monitors; }
  bool drift() const { return monitors() != 0; }
  std::uint64_t persist() const { return status().persist; }
  // Plain state: monitors bits, persistence count, CUSUM S, MEWMA vector (q values), adaptive level.
  // Throws std::invalid_argument on a non-finite / negative value or a wrong MEWMA length.
  void restore(std::uint8_t monitors, std::uint64_t persist, float cusum, const double* ewma, std::size_t n_ewma,
               float level);
  void restore(const Lock& held, std::uint8_t monitors, std::uint64_t persist, float cusum, const double* ewma,
               std::size_t n_ewma, float level);
  void reset();
  void reset(const Lock& held) noexcept;
  std::mutex& mutex() const noexcept { return mu_; }
  Lock lock() const { return Lock(mu_); }

 private:
  // Latch `bit` when `stat` crosses the monitor's limit; release it (and restart the monitor) once
  // the statistic falls to clear_ratio x limit.
  template <class Monitor>
  void latch(Monitor& monitor, float stat, std::uint8_t bit) noexcept {
    if (!(active_ & bit) && stat > monitor.limit()) {
      active_ = static_cast<std::uint8_t>(active_ | bit);
    } else if ((active_ & bit) && stat <= clear_ratio_ * monitor.limit()) {
      active_ = static_cast<std::uint8_t>(active_ & ~bit);
      monitor.reset();
    }
  }

  std::optional<ScoreCusum> score_;
  std::optional<Mewma> latent_;
  std::optional<AdaptiveThreshold> adaptive_;
  std::uint32_t retrain_after_;
  float clear_ratio_;
  std::uint8_t active_ = 0;
  std::uint64_t persist_ = 0;
  mutable std::mutex mu_;
};

}  // namespace edgefault
