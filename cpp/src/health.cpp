// Sensor-health checks per channel and window. Rules: health.hpp and docs/features.md.
#include "edgefault/health.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "vec4.hpp"

namespace edgefault {

using namespace detail;  // vf4 / vi4 helpers (vec4.hpp)

namespace {

std::string num(double v) {
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

void require(bool ok, const char* name, const std::string& expected, double got) {
  if (!ok) throw std::invalid_argument(std::string("health.") + name + ": expected " + expected + ", got " + num(got));
}

// Longest run of samples that are exactly zero (either sign) or NaN.
std::size_t longest_dropout_run(const float* x, std::size_t n) noexcept {
  std::size_t best = 0, run = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (v == 0.0f || v != v) {
      if (++run > best) best = run;
    } else {
      run = 0;
    }
  }
  return best;
}

struct ExtremeCounts {
  std::size_t hi = 0, lo = 0, rails = 0;
};

// Samples with |x - mid| >= half: those at either extreme (one compare per sample instead of two).
std::size_t count_outer(const float* x, std::size_t n, float mid, float half) noexcept {
  const std::size_t n8 = n / 8 * 8;
  const vf4 vm = splat(mid), vh = splat(half);
  vi4 c = isplat(0);
  for (std::size_t i = 0; i < n8; i += 8) {
    c -= cmp_ge(vabs(load4(x + i) - vm), vh);
    c -= cmp_ge(vabs(load4(x + i + 4) - vm), vh);
  }
  std::size_t k = static_cast<std::size_t>(hsumi(c));
  for (std::size_t i = n8; i < n; ++i) k += std::fabs(x[i] - mid) >= half;
  return k;
}

// Samples >= hi_t, <= lo_t and (with Rails) >= rail_hi_t or <= rail_lo_t.
template <bool Rails>
ExtremeCounts count_extremes(const float* x, std::size_t n, float hi_t, float lo_t, float rail_hi_t,
                             float rail_lo_t) noexcept {
  const std::size_t n8 = n / 8 * 8;
  const vf4 vh = splat(hi_t), vl = splat(lo_t), rh = splat(rail_hi_t), rl = splat(rail_lo_t);
  vi4 ch = isplat(0), cl = ch, cr = ch;
  for (std::size_t i = 0; i < n8; i += 8) {
    const vf4 v0 = load4(x + i), v1 = load4(x + i + 4);
    ch -= cmp_ge(v0, vh);
    ch -= cmp_ge(v1, vh);
    cl -= cmp_le(v0, vl);
    cl -= cmp_le(v1, vl);
    if (Rails) {
      cr -= cmp_ge(v0, rh);
      cr -= cmp_ge(v1, rh);
      cr -= cmp_le(v0, rl);
      cr -= cmp_le(v1, rl);
    }
  }
  ExtremeCounts c;
  c.hi = static_cast<std::size_t>(hsumi(ch));
  c.lo = static_cast<std::size_t>(hsumi(cl));
  c.rails = static_cast<std::size_t>(hsumi(cr));
  for (std::size_t i = n8; i < n; ++i) {
    const float v = x[i];
    c.hi += v >= hi_t;
    c.lo += v <= lo_t;
    if (Rails) c.rails += (v >= rail_hi_t) + (v <= rail_lo_t);
  }
  return c;
}

// Whether the plateau of n_plateau samples at the window's max (sign = 1) or min (sign = -1)
// stands out as clipping: in v = sign * x, the plateau is v >= t (t = extreme - tol, rounded as
// in count_extremes); up to three distinct levels below it are each found (largest v below the
// current bound) and counted within tol. Scalar, run only when the plateau is large enough.
bool plateau_is_clip(const float* x, std::size_t n, float sign, double extreme, float t, double tol,
                     std::size_t n_plateau, double range, float ratio, float min_levels) noexcept {
  std::size_t total = 0;
  int levels = 0;
  double prev = extreme, min_gap = std::numeric_limits<double>::infinity();
  for (; levels < 3; ++levels) {
    float top = -std::numeric_limits<float>::infinity();
    bool found = false;
    for (std::size_t i = 0; i < n; ++i) {
      const float v = sign * x[i];
      if (v < t && (!found || v > top)) {
        top = v;
        found = true;
      }
    }
    if (!found) break;
    const float lo = static_cast<float>(static_cast<double>(top) - tol);
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float v = sign * x[i];
      count += v >= lo && v < t;
    }
    total += count;
    min_gap = std::min(min_gap, prev - static_cast<double>(top));
    prev = top;
    t = lo;
  }
  if (levels == 0 || !(min_gap > 0.0)) return false;
  const double mean_level = static_cast<double>(total) / levels;
  return static_cast<double>(n_plateau) >= ratio * mean_level && range >= min_levels * min_gap;
}

}  // namespace

HealthChecker::HealthChecker(std::size_t n_channels, std::size_t window, std::size_t hop, HealthConfig config)
    : cfg_(std::move(config)), nc_(n_channels), n_(window) {
  if (hop == 0) throw std::invalid_argument("health: hop must be >= 1");
  const HealthConfig& c = cfg_;
  require((c.checks & ~kHealthAll) == 0, "checks", "a subset of flat, clip, dropout, dc_jump", c.checks);
  require(std::isfinite(c.flat_abs) && c.flat_abs >= 0.0f, "flat_abs", "a finite number >= 0", c.flat_abs);
  require(std::isfinite(c.flat_rel) && c.flat_rel >= 0.0f && c.flat_rel < 1.0f, "flat_rel", "0 <= flat_rel < 1",
          c.flat_rel);
  require(std::isfinite(c.clip_eps) && c.clip_eps >= 0.0f && c.clip_eps < 0.5f, "clip_eps", "0 <= clip_eps < 0.5",
          c.clip_eps);
  require(std::isfinite(c.clip_fraction) && c.clip_fraction > 0.0f && c.clip_fraction <= 1.0f, "clip_fraction",
          "0 < clip_fraction <= 1", c.clip_fraction);
  require(std::isfinite(c.clip_ratio) && c.clip_ratio >= 1.0f, "clip_ratio", "a finite number >= 1", c.clip_ratio);
  require(std::isfinite(c.clip_levels) && c.clip_levels >= 0.0f, "clip_levels", "a finite number >= 0", c.clip_levels);
  require(std::isfinite(c.rail_fraction) && c.rail_fraction > 0.0f && c.rail_fraction <= 1.0f, "rail_fraction",
          "0 < rail_fraction <= 1", c.rail_fraction);
  if (c.rails) {
    require(std::isfinite(c.rail_lo), "rails[0]", "a finite number", c.rail_lo);
    require(std::isfinite(c.rail_hi) && c.rail_hi > c.rail_lo, "rails[1]", "a finite number > rails[0]", c.rail_hi);
  }
  require(c.dropout_run >= 1, "dropout_run", "an integer >= 1", static_cast<double>(c.dropout_run));
  require(std::isfinite(c.dc_k) && c.dc_k > 0.0f, "dc_k", "a finite number > 0", c.dc_k);
  require(std::isfinite(c.dc_own) && c.dc_own >= 0.0f, "dc_own", "a finite number >= 0", c.dc_own);
  if (!c.healthy_std.empty()) {
    require(c.healthy_std.size() == n_channels, "healthy_std", "one value per channel (" + std::to_string(n_channels) + ")",
            static_cast<double>(c.healthy_std.size()));
    for (float v : c.healthy_std) require(std::isfinite(v) && v > 0.0f, "healthy_std", "finite values > 0", v);
  }
  const double nd = static_cast<double>(window);
  run_ = std::min(c.dropout_run, window);
  clip_count_ = std::max<std::size_t>(3, static_cast<std::size_t>(std::ceil(static_cast<double>(c.clip_fraction) * nd)));
  rail_count_ = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(static_cast<double>(c.rail_fraction) * nd)));
  lag_ = std::min(kMaxLag, (window + hop - 1) / hop + 1);
  own_scale_ = static_cast<double>(c.dc_own) * static_cast<double>(lag_ * hop) / nd;
  hist_mean_.assign(n_channels * lag_, 0.0);
  hist_std_.assign(n_channels * lag_, 0.0);
  hist_ok_.assign(n_channels * lag_, 0);
}

void HealthChecker::reset() noexcept { windows_ = 0; }

HealthChecker::Stats HealthChecker::stats(const float* x, std::size_t n) noexcept {
  Stats s;
  if (n == 0) return s;
  // Sums of d = x - x_0: a constant window gives exactly 0, and a DC offset costs no precision.
  // One 4-lane accumulator per quantity (two would spill registers on SSE); each block of kBlock
  // samples adds 16 values per lane in float, folded into double.
  const float x0 = x[0];
  const vf4 vx0 = splat(x0), zero = splat(0.0f);
  vf4 mx = vx0, mn = vx0;
  vi4 z = isplat(0);
  double S1 = 0.0, S2 = 0.0;
  const std::size_t nblk = n / kBlock * kBlock;
  for (std::size_t i0 = 0; i0 < nblk; i0 += kBlock) {
    vf4 a = zero, q = zero;
    for (std::size_t i = i0; i < i0 + kBlock; i += 8) {
      const vf4 v0 = load4(x + i), v1 = load4(x + i + 4);
      const vf4 d0 = v0 - vx0, d1 = v1 - vx0;
      a += d0 + d1;
      q += d0 * d0 + d1 * d1;
      mx = vmax(v0, vmax(v1, mx));
      mn = vmin(v0, vmin(v1, mn));
      z -= cmp_eq(v0, zero);
      z -= cmp_eq(v1, zero);
    }
    S1 += hsum(a);
    S2 += hsum(q);
  }
  float vmaxf = hmax(mx), vminf = hmin(mn);
  std::size_t zeros = static_cast<std::size_t>(hsumi(z));
  for (std::size_t i = nblk; i < n; ++i) {
    const float v = x[i], d = v - x0;
    S1 += d;
    S2 += static_cast<double>(d * d);
    vmaxf = v > vmaxf ? v : vmaxf;
    vminf = v < vminf ? v : vminf;
    zeros += v == 0.0f;
  }
  s.zeros = zeros;
  s.min = vminf;
  s.max = vmaxf;
  // NaN / Inf anywhere (or squares beyond float32, |x| >~ 1e19) make the sums non-finite.
  if (!std::isfinite(S1) || !std::isfinite(S2)) {
    s.finite = false;
    return s;
  }
  const double nd = static_cast<double>(n), m1 = S1 / nd;
  s.mean = static_cast<double>(x0) + m1;
  s.std = std::sqrt(std::max(0.0, S2 / nd - m1 * m1));
  return s;
}

std::uint8_t HealthChecker::check_channel(std::size_t c, const float* x) noexcept {
  const unsigned on = cfg_.checks;
  const Stats s = stats(x, n_);
  std::uint8_t bits = 0;
  // This window's slot in the DC history holds the reference window r (lag_ windows back).
  const std::size_t slot = c * lag_ + static_cast<std::size_t>(windows_ % lag_);
  const bool have_ref = windows_ >= lag_ && hist_ok_[slot];
  if (!s.finite) {
    hist_ok_[slot] = 0;  // no DC reference across a non-finite window
    if ((on & kHealthDropout) && longest_dropout_run(x, n_) >= run_) bits |= kHealthDropout;
    return bits;
  }
  const double healthy = cfg_.healthy_std.empty() ? 0.0 : static_cast<double>(cfg_.healthy_std[c]);
  if ((on & kHealthFlat) &&
      (s.std <= static_cast<double>(cfg_.flat_abs) || (healthy > 0.0 && s.std < cfg_.flat_rel * healthy)))
    bits |= kHealthFlat;
  if ((on & kHealthDropout) && s.zeros >= run_ && longest_dropout_run(x, n_) >= run_) bits |= kHealthDropout;
  if (on & kHealthClip) {
    const double range = static_cast<double>(s.max) - static_cast<double>(s.min);
    const bool extremes = range > 0.0;
    if (extremes || cfg_.rails) {
      const double tol = static_cast<double>(cfg_.clip_eps) * range;
      const float hi_t = extremes ? static_cast<float>(s.max - tol) : std::numeric_limits<float>::infinity();
      const float lo_t = extremes ? static_cast<float>(s.min + tol) : -std::numeric_limits<float>::infinity();
      ExtremeCounts k;
      if (cfg_.rails) {
        const double rtol = static_cast<double>(cfg_.clip_eps) * (static_cast<double>(cfg_.rail_hi) - cfg_.rail_lo);
        k = count_extremes<true>(x, n_, hi_t, lo_t, static_cast<float>(cfg_.rail_hi - rtol),
                                 static_cast<float>(cfg_.rail_lo + rtol));
      } else {
        // Both plateaus together first, with a margin for float rounding (of the thresholds, of mid
        // and of x - mid: a few ulps of the largest magnitude), so it counts a superset of the
        // per-side counts; per side only when together they could reach clip_count_.
        const double mid = 0.5 * (static_cast<double>(s.max) + s.min), half = 0.5 * range - tol;
        const float mid_f = static_cast<float>(mid);
        const double mag = std::max(std::fabs(static_cast<double>(s.max)), std::fabs(static_cast<double>(s.min)));
        const float half_f = static_cast<float>(half - 1e-6 * (range + mag) - std::fabs(mid - mid_f));
        if (count_outer(x, n_, mid_f, half_f) >= clip_count_) k = count_extremes<false>(x, n_, hi_t, lo_t, 0.0f, 0.0f);
      }
      bool clip = cfg_.rails && k.rails >= rail_count_;
      if (!clip && extremes && k.hi >= clip_count_)
        clip = plateau_is_clip(x, n_, 1.0f, s.max, hi_t, tol, k.hi, range, cfg_.clip_ratio, cfg_.clip_levels);
      if (!clip && extremes && k.lo >= clip_count_)
        clip = plateau_is_clip(x, n_, -1.0f, -static_cast<double>(s.min), -lo_t, tol, k.lo, range, cfg_.clip_ratio,
                               cfg_.clip_levels);
      if (clip) bits |= kHealthClip;
    }
  }
  if ((on & kHealthDcJump) && have_ref) {
    const double step = std::fabs(s.mean - hist_mean_[slot]);
    const double ref = healthy > 0.0 ? healthy : hist_std_[slot];
    if (step > cfg_.dc_k * ref && step > own_scale_ * s.std) bits |= kHealthDcJump;
  }
  hist_mean_[slot] = s.mean;
  hist_std_[slot] = s.std;
  hist_ok_[slot] = 1;
  return bits;
}

std::uint8_t HealthChecker::check(const float* const* ch, std::uint8_t* out) noexcept {
  if (cfg_.checks == 0) {
    std::fill(out, out + nc_, std::uint8_t{0});
    return 0;
  }
  std::uint8_t any = 0;
  for (std::size_t c = 0; c < nc_; ++c) {
    out[c] = check_channel(c, ch[c]);
    any = static_cast<std::uint8_t>(any | out[c]);
  }
  ++windows_;
  return any;
}

}  // namespace edgefault
