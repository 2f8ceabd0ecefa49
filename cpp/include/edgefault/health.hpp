// Per-channel sensor-health checks, run on every window the Pipeline cuts, so a flat-lined,
// clipped, disconnected or DC-jumped sensor is reported as a sensor fault instead of reading as a
// machine fault. Rules, parameters and defaults: docs/features.md ("Sensor health").
//
// Per channel and window x_0..x_{n-1} (float32, after the input scale):
//   pass 1 (always, vectorised): mean, std (shifted by x_0, so a constant window has std exactly 0),
//          min, max, number of exact zeros; pass 2 (clip / rail checks, vectorised): the samples
//          within clip_eps of the extremes / rails; a scalar run scan only when the zero count
//          alone could make a dropout.
//   FLAT     std <= flat_abs, or std < flat_rel * healthy_std[c] (when healthy_std is given)
//   CLIP     a plateau at the window's max (or min): at least max(3, ceil(clip_fraction n))
//            samples within clip_eps (max - min) of it, at least clip_ratio times the mean count of
//            the next 3 distinct value levels inside it, and the window resolved into at least
//            clip_levels steps (range / smallest gap between those levels), so a coarsely
//            quantised signal's top level does not read as clipping; or, with rails, at least
//            max(1, ceil(rail_fraction n)) samples within clip_eps (hi - lo) of a rail (or beyond)
//   DROPOUT  a run of at least min(dropout_run, n) consecutive samples that are exactly 0 or NaN
//   DC_JUMP  |mean - mean_r| > dc_k * ref and > dc_own * (lag hop / n) * std, where r is the window
//            lag = min(ceil(n / hop) + 1, 128) windows back: it ends at least one hop before this
//            one starts, so a step lies between two windows clean of it; ref = healthy_std[c] when
//            given, else r's std. A linear trend moves the mean by at most sqrt(12) (lag hop / n)
//            of this window's std, so dc_own > sqrt(12) keeps ramps (degradation) out. Not checked
//            while r does not exist (the first lag windows after construction / reset / state
//            import) or was non-finite.
// A channel holding NaN/Inf gets only the DROPOUT check (the window is already non-finite).
// No allocation per window; not synchronised itself (the Pipeline that owns it holds its lock).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgefault {

// Bits of one channel's health byte (Pipeline / ScoredStream output, Python FLAG_HEALTH_*).
enum HealthFlag : std::uint8_t {
  kHealthFlat = 1,
  kHealthClip = 2,
  kHealthDropout = 4,
  kHealthDcJump = 8,
};
constexpr std::uint8_t kHealthAll = kHealthFlat | kHealthClip | kHealthDropout | kHealthDcJump;

// Defaults are conservative: they never fire on the CWRU recordings (docs/features.md has the
// margins), so bundles without a health section score exactly as before.
struct HealthConfig {
  std::uint8_t checks = kHealthAll;  // HealthFlag bits of the checks that run (0: none, no cost)
  float flat_abs = 1e-7f;            // FLAT: absolute std floor, in input units after the scale
  float flat_rel = 0.05f;            // FLAT: fraction of healthy_std[c] (only with healthy_std)
  float clip_eps = 1e-4f;            // CLIP: closeness to an extreme / rail, relative to the range
  float clip_fraction = 0.02f;       // CLIP: fraction of the window at one extreme
  float clip_ratio = 8.0f;           // CLIP: plateau count / mean count of the next 3 levels
  float clip_levels = 16.0f;         // CLIP: least range / level gap for the plateau rule
  bool rails = false;                // CLIP: rail_lo / rail_hi configured
  float rail_lo = 0.0f, rail_hi = 0.0f;
  float rail_fraction = 0.01f;       // CLIP: fraction of the window at the rails
  std::size_t dropout_run = 32;      // DROPOUT: run length of exact zeros / NaN, in samples
  float dc_k = 5.0f;                 // DC_JUMP: mean step in reference stds
  float dc_own = 4.0f;               // DC_JUMP: and in this window's stds x lag hop / n (ramp: <= sqrt 12)
  std::vector<float> healthy_std;    // per channel (empty: none): std of healthy training windows
};

class HealthChecker {
 public:
  // Validates config for n_channels channels of `window` samples cut every `hop` samples; throws
  // std::invalid_argument naming the parameter ("health.<name>: ...").
  HealthChecker(std::size_t n_channels, std::size_t window, std::size_t hop, HealthConfig config);
  static constexpr std::size_t kMaxLag = 128;
  std::size_t dc_lag() const noexcept { return lag_; }
  const HealthConfig& config() const noexcept { return cfg_; }
  bool enabled() const noexcept { return cfg_.checks != 0; }
  std::size_t n_channels() const noexcept { return nc_; }

  // One window: ch[c] points at `window` samples of channel c. Writes n_channels HealthFlag
  // bytes to out and returns their OR (0 = every channel healthy). Updates the DC history.
  std::uint8_t check(const float* const* ch, std::uint8_t* out) noexcept;
  // Forget the previous windows (the DC_JUMP history).
  void reset() noexcept;

  struct Stats {
    double mean = 0.0, std = 0.0;
    float min = 0.0f, max = 0.0f;
    std::size_t zeros = 0;
    bool finite = true;
  };
  // Pass 1 on one channel's window (exposed for tests).
  static Stats stats(const float* x, std::size_t n) noexcept;

 private:
  std::uint8_t check_channel(std::size_t c, const float* x) noexcept;
  HealthConfig cfg_;
  std::size_t nc_, n_, lag_, run_, clip_count_, rail_count_;
  double own_scale_ = 1.0;  // dc_own * lag * hop / n
  // The last lag_ windows' mean / std per channel (ring, slot = window index % lag_), for DC_JUMP.
  std::vector<double> hist_mean_, hist_std_;
  std::vector<std::uint8_t> hist_ok_;  // 1: that window was finite
  std::uint64_t windows_ = 0;          // windows checked since construction / reset
};

}  // namespace edgefault
