// Sensor-health checks on synthetic signals: a clean signal never flags; each fault flags its
// channel with its check only; the rules' guards (quantisation, ramps, amplitude bursts) hold.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "edgefault/health.hpp"
#include "edgefault/pipeline.hpp"
#include "harness.hpp"

using edgefault::ExtractorConfig;
using edgefault::FeatureBlock;
using edgefault::HealthChecker;
using edgefault::HealthConfig;
using edgefault::Pipeline;
using edgefault::PipelineOutput;

namespace {

constexpr std::size_t kWindow = 512, kHop = 256, kChannels = 3;
constexpr double kFs = 8000.0, kPi = 3.14159265358979323846;

// Broadband noise plus a tone per channel, interleaved (frame f, channel c at f * 3 + c).
std::vector<float> clean_signal(std::size_t frames, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.3f);
  std::vector<float> x(frames * kChannels);
  for (std::size_t f = 0; f < frames; ++f)
    for (std::size_t c = 0; c < kChannels; ++c)
      x[f * kChannels + c] =
          g(rng) + static_cast<float>(std::sin(2.0 * kPi * (97.0 + 41.0 * static_cast<double>(c)) *
                                               static_cast<double>(f) / kFs));
  return x;
}

float channel_std(const std::vector<float>& x, std::size_t c) {
  const std::size_t n = x.size() / kChannels;
  double s = 0, s2 = 0;
  for (std::size_t f = 0; f < n; ++f) {
    s += x[f * kChannels + c];
    s2 += static_cast<double>(x[f * kChannels + c]) * x[f * kChannels + c];
  }
  const double nd = static_cast<double>(n);
  return static_cast<float>(std::sqrt(s2 / nd - (s / nd) * (s / nd)));
}

ExtractorConfig config() {
  ExtractorConfig cfg;
  cfg.fs = kFs;
  cfg.window = kWindow;
  FeatureBlock b;
  b.kind = FeatureBlock::Kind::TimeStats;
  b.stats = {"rms"};
  cfg.blocks = {b};
  return cfg;
}

// Health bytes (m x kChannels) of every window of x through a fresh pipeline.
std::vector<std::uint8_t> health_of(const std::vector<float>& x, const HealthConfig& h = {}) {
  Pipeline p(kChannels, kHop, config(), h);
  const std::size_t frames = x.size() / kChannels;
  const std::size_t m = p.max_windows_for(frames);
  std::vector<std::uint64_t> end(m);
  std::vector<std::uint8_t> finite(m), health(m * kChannels, 0xff);
  PipelineOutput out;
  out.end_frame = end.data();
  out.finite = finite.data();
  out.health = health.data();
  out.max_windows = m;
  CHECK(p.push(x.data(), frames, 1.0f, out) == m);
  return health;
}

// Which (channel, bit) pairs appear, and in how many windows.
struct Seen {
  std::size_t windows = 0;     // windows with any bit set
  std::uint8_t bits[kChannels] = {0, 0, 0};
};
Seen seen(const std::vector<std::uint8_t>& h) {
  Seen s;
  for (std::size_t i = 0; i < h.size() / kChannels; ++i) {
    bool any = false;
    for (std::size_t c = 0; c < kChannels; ++c) {
      s.bits[c] = static_cast<std::uint8_t>(s.bits[c] | h[i * kChannels + c]);
      any = any || h[i * kChannels + c] != 0;
    }
    s.windows += any;
  }
  return s;
}

constexpr std::size_t kFrames = 40 * kHop;
constexpr std::size_t kFaultStart = 16 * kHop + 77, kFaultEnd = 26 * kHop;

}  // namespace

TEST_CASE("a clean multi-channel signal never flags") {
  for (unsigned seed = 1; seed <= 5; ++seed) {
    const auto s = seen(health_of(clean_signal(kFrames, seed)));
    CHECK(s.windows == 0);
  }
}

TEST_CASE("a flat-lined channel flags FLAT on that channel only") {
  auto x = clean_signal(kFrames);
  for (std::size_t f = kFaultStart; f < kFaultEnd; ++f) x[f * kChannels + 1] = 0.37f;  // stuck at a value
  const auto s = seen(health_of(x));
  CHECK(s.windows > 0);
  CHECK(s.bits[0] == 0 && s.bits[1] == edgefault::kHealthFlat && s.bits[2] == 0);
  // relative rule: 1 % of the healthy std is "flat" with healthy_std, not without
  auto y = clean_signal(kFrames);
  const float sd = channel_std(y, 2);
  for (std::size_t f = kFaultStart; f < kFaultEnd; ++f) y[f * kChannels + 2] = 0.01f * y[f * kChannels + 2];
  CHECK(seen(health_of(y)).windows == 0);
  HealthConfig h;
  h.healthy_std = {channel_std(y, 0), channel_std(y, 1), sd};
  const auto r = seen(health_of(y, h));
  CHECK(r.windows > 0 && r.bits[2] == edgefault::kHealthFlat && r.bits[0] == 0 && r.bits[1] == 0);
}

TEST_CASE("a clipped channel flags CLIP; a coarsely quantised tone does not") {
  auto x = clean_signal(kFrames);
  const float lim = 1.2f * channel_std(x, 2);
  for (std::size_t f = kFaultStart; f < kFaultEnd; ++f) {
    float& v = x[f * kChannels + 2];
    v = std::min(std::max(v, -lim), lim);
  }
  const auto s = seen(health_of(x));
  CHECK(s.windows > 0);
  CHECK(s.bits[0] == 0 && s.bits[1] == 0 && s.bits[2] == edgefault::kHealthClip);
  // a pure tone quantised to 100 levels of amplitude: many samples share the top level, but the
  // levels below are as full (no point mass), so no clipping
  std::vector<float> q(kFrames * kChannels);
  for (std::size_t f = 0; f < kFrames; ++f)
    for (std::size_t c = 0; c < kChannels; ++c)
      q[f * kChannels + c] =
          std::round(100.0f * static_cast<float>(std::sin(2.0 * kPi * 50.0 * static_cast<double>(f) / kFs))) / 100.0f;
  CHECK(seen(health_of(q)).windows == 0);
}

TEST_CASE("samples at configured rails flag CLIP") {
  auto x = clean_signal(kFrames);
  HealthConfig h;
  h.rails = true;
  h.rail_lo = -4.0f;
  h.rail_hi = 4.0f;
  CHECK(seen(health_of(x, h)).windows == 0);
  for (std::size_t f = kFaultStart; f < kFaultEnd; ++f) {
    float& v = x[f * kChannels + 0];
    v = std::min(std::max(3.0f * v, -4.0f), 4.0f);  // a gain error driving the ADC into its rails
  }
  const auto s = seen(health_of(x, h));
  CHECK(s.windows > 0 && s.bits[0] == edgefault::kHealthClip && s.bits[1] == 0 && s.bits[2] == 0);
}

TEST_CASE("runs of exact zeros or NaN flag DROPOUT") {
  auto x = clean_signal(kFrames);
  for (std::size_t f = kFaultStart; f < kFaultStart + 40; ++f) x[f * kChannels + 1] = 0.0f;  // 40 >= 32
  auto s = seen(health_of(x));
  CHECK(s.windows >= 1 && s.windows <= 2);  // the windows holding the run
  CHECK(s.bits[0] == 0 && s.bits[1] == edgefault::kHealthDropout && s.bits[2] == 0);
  auto y = clean_signal(kFrames);
  for (std::size_t f = kFaultStart; f < kFaultStart + 20; ++f) y[f * kChannels + 1] = 0.0f;  // shorter: no
  CHECK(seen(health_of(y)).windows == 0);
  auto z = clean_signal(kFrames);
  for (std::size_t f = kFaultStart; f < kFaultStart + 40; ++f) z[f * kChannels + 0] = std::numeric_limits<float>::quiet_NaN();
  s = seen(health_of(z));
  CHECK(s.windows >= 1 && s.bits[0] == edgefault::kHealthDropout && s.bits[1] == 0 && s.bits[2] == 0);
}

TEST_CASE("a DC step flags DC_JUMP once; a ramp and an amplitude burst do not") {
  auto x = clean_signal(kFrames);
  const float sd = channel_std(x, 0);
  for (std::size_t f = kFaultStart; f < kFrames; ++f) x[f * kChannels + 0] += 10.0f * sd;
  const auto h = health_of(x);
  const auto s = seen(h);
  CHECK(s.windows == 1);
  CHECK(s.bits[0] == edgefault::kHealthDcJump && s.bits[1] == 0 && s.bits[2] == 0);
  // the flagged window is the first one that starts after the step
  for (std::size_t i = 0; i < h.size() / kChannels; ++i)
    if (h[i * kChannels]) CHECK(i * kHop >= kFaultStart && (i - 1) * kHop < kFaultStart);
  // a steep linear trend (degradation) moves the mean by many stds, but it is a ramp
  auto r = clean_signal(kFrames);
  for (std::size_t f = 0; f < kFrames; ++f) r[f * kChannels + 1] += 0.02f * static_cast<float>(f);
  CHECK(seen(health_of(r)).windows == 0);
  // a 30x amplitude burst (a machine fault) is not a sensor fault
  auto b = clean_signal(kFrames);
  for (std::size_t f = kFaultStart; f < kFaultEnd; ++f) b[f * kChannels + 2] *= 30.0f;
  CHECK(seen(health_of(b)).windows == 0);
}

TEST_CASE("disabled checks cost nothing and report nothing; bad settings throw") {
  auto x = clean_signal(kFrames);
  for (std::size_t f = kFaultStart; f < kFaultEnd; ++f) x[f * kChannels + 1] = 0.0f;
  HealthConfig off;
  off.checks = 0;
  CHECK(seen(health_of(x, off)).windows == 0);
  HealthConfig only_dropout;
  only_dropout.checks = edgefault::kHealthDropout;
  CHECK(seen(health_of(x, only_dropout)).bits[1] == edgefault::kHealthDropout);
  auto bad = [](auto set) {
    HealthConfig h;
    set(h);
    return HealthChecker(kChannels, kWindow, kHop, h);
  };
  CHECK_THROWS(bad([](HealthConfig& h) { h.flat_abs = -1.0f; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.flat_rel = 1.0f; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.clip_eps = 0.5f; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.clip_fraction = 0.0f; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.clip_ratio = 0.5f; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.rails = true; h.rail_lo = 1.0f; h.rail_hi = 1.0f; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.dropout_run = 0; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.dc_k = 0.0f; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.dc_own = std::numeric_limits<float>::quiet_NaN(); }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.healthy_std = {1.0f}; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.healthy_std = {1.0f, 0.0f, 1.0f}; }));
  CHECK_THROWS(bad([](HealthConfig& h) { h.checks = 16; }));
}

TEST_CASE("window statistics: a constant window has std exactly 0, a DC offset costs no precision") {
  std::vector<float> c(1000, 123.456f);
  auto s = HealthChecker::stats(c.data(), c.size());
  CHECK(s.finite && s.std == 0.0 && s.min == s.max);
  CHECK_CLOSE(s.mean, 123.456, 1e-4);
  std::vector<float> d(1000);
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = 1000.0f + ((i % 2) ? 0.5f : -0.5f);
  s = HealthChecker::stats(d.data(), d.size());
  CHECK_CLOSE(s.std, 0.5, 1e-6);
  CHECK_CLOSE(s.mean, 1000.0, 1e-6);
  d[500] = std::numeric_limits<float>::infinity();
  CHECK(!HealthChecker::stats(d.data(), d.size()).finite);
  std::vector<float> z(130, 1.0f);
  for (std::size_t i = 3; i < 100; i += 3) z[i] = 0.0f;
  CHECK(HealthChecker::stats(z.data(), z.size()).zeros == 33);
}

TEST_CASE("reset and state import restart the DC history") {
  auto x = clean_signal(kFrames);
  const float sd = channel_std(x, 0);
  Pipeline p(kChannels, kHop, config());
  const std::size_t half = kFrames / 2;
  std::vector<std::uint64_t> end(64);
  std::vector<std::uint8_t> finite(64), health(64 * kChannels);
  PipelineOutput out;
  out.end_frame = end.data();
  out.finite = finite.data();
  out.health = health.data();
  out.max_windows = 64;
  p.push(x.data(), half, 1.0f, out);
  // after a reset, a level far from the old one is not compared with the forgotten windows
  p.reset();
  std::vector<float> y(x.begin() + half * kChannels, x.end());
  for (std::size_t f = 0; f < half; ++f) y[f * kChannels] += 20.0f * sd;
  const std::size_t m = p.push(y.data(), half, 1.0f, out);
  bool any = false;
  for (std::size_t i = 0; i < m * kChannels; ++i) any = any || health[i] != 0;
  CHECK(m > 0 && !any);
}

TEST_MAIN()
