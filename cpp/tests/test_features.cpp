// Hand-computable checks of the feature kernels and the FeatureExtractor.
#include <cmath>
#include <string>
#include <vector>

#include "edgefault/extractor.hpp"
#include "edgefault/features.hpp"
#include "harness.hpp"

using namespace edgefault;

namespace {
constexpr double kPi = 3.14159265358979323846;

std::vector<float> sine(std::size_t n, double amp, double cycles, double phase = 0.0) {
  std::vector<float> x(n);
  for (std::size_t j = 0; j < n; ++j)
    x[j] = static_cast<float>(amp * std::sin(2.0 * kPi * cycles * static_cast<double>(j) / static_cast<double>(n) + phase));
  return x;
}

double stat(const double* s, const char* name) { return s[time_stat_index(name)]; }

bool all_finite(const std::vector<float>& v) {
  for (float f : v)
    if (!std::isfinite(f)) return false;
  return true;
}
}  // namespace

TEST_CASE("time stats of a whole-cycle sine") {
  const auto x = sine(1024, 3.0, 8.0);
  double s[kTimeStatCount];
  time_stats(x.data(), x.size(), s);
  CHECK_CLOSE(stat(s, "mean"), 0.0, 1e-6);
  CHECK_CLOSE(stat(s, "rms"), 3.0 / std::sqrt(2.0), 1e-6);
  CHECK_CLOSE(stat(s, "var"), 4.5, 1e-5);
  CHECK_CLOSE(stat(s, "std"), 3.0 / std::sqrt(2.0), 1e-6);
  CHECK_CLOSE(stat(s, "max"), 3.0, 1e-6);
  CHECK_CLOSE(stat(s, "min"), -3.0, 1e-6);
  CHECK_CLOSE(stat(s, "p2p"), 6.0, 1e-6);
  // sampled mean |sin| (128 samples per cycle) is within 3e-4 of its continuous value 2A/pi
  CHECK_CLOSE(stat(s, "mean_abs"), 6.0 / kPi, 1e-3);
  CHECK_CLOSE(stat(s, "crest_factor"), std::sqrt(2.0), 1e-6);
  CHECK_CLOSE(stat(s, "kurtosis"), 1.5, 1e-6);
  CHECK_CLOSE(stat(s, "kurtosis_factor"), 1.5, 1e-6);
  CHECK_CLOSE(stat(s, "skewness"), 0.0, 1e-6);
  CHECK_CLOSE(stat(s, "shape_factor"), stat(s, "rms") / stat(s, "mean_abs"), 1e-12);
  CHECK_CLOSE(stat(s, "shape_factor"), kPi / (2.0 * std::sqrt(2.0)), 1e-3);
  CHECK_CLOSE(stat(s, "impulse_factor"), kPi / 2.0, 1e-3);
}

TEST_CASE("time stat names are canonical and indexable") {
  CHECK(std::string(time_stat_names()[0]) == "mean");
  CHECK(std::string(time_stat_names()[15]) == "kurtosis_factor");
  CHECK(time_stat_index("crest_factor") == 12);
  CHECK(time_stat_index("nope") == -1);
}

TEST_CASE("constant and zero windows give finite documented values") {
  std::vector<float> z(64, 0.f), c(64, -2.5f);
  double s[kTimeStatCount];
  time_stats(z.data(), z.size(), s);
  for (double v : s) CHECK(v == 0.0);
  time_stats(c.data(), c.size(), s);
  CHECK(stat(s, "mean") == -2.5);
  CHECK(stat(s, "var") == 0.0);
  CHECK(stat(s, "skewness") == 0.0);
  CHECK(stat(s, "kurtosis") == 0.0);
  CHECK_CLOSE(stat(s, "crest_factor"), 1.0, 1e-12);
  CHECK_CLOSE(stat(s, "margin_factor"), 1.0, 1e-6);  // sqrt taken in float32
  CHECK_CLOSE(stat(s, "smr"), 2.5, 1e-6);
}

TEST_CASE("NaN in a window makes every time stat NaN") {
  auto x = sine(32, 1.0, 1.0);
  x[5] = std::nanf("");
  double s[kTimeStatCount];
  time_stats(x.data(), x.size(), s);
  for (double v : s) CHECK(std::isnan(v));
}

TEST_CASE("hann taper is periodic") {
  const auto w = make_taper(Taper::Hann, 8);
  CHECK_CLOSE(w[0], 0.0, 1e-7);
  CHECK_CLOSE(w[4], 1.0, 1e-7);
  CHECK_CLOSE(w[2], 0.5, 1e-7);
  CHECK_THROWS(parse_taper("kaiser"));
  CHECK(parse_taper("boxcar") == Taper::Rect);
}

TEST_CASE("power spectrum sums to the mean square (rect) and finds a sine") {
  const std::size_t n = 256;
  const auto x = sine(n, 2.0, 10.0);
  Spectrum sp(n, Taper::Rect);
  sp.compute(x.data());
  double total = 0.0;
  for (std::size_t k = 0; k < sp.n_bins(); ++k) total += sp.power()[k];
  CHECK_CLOSE(total, 2.0, 1e-4);              // A^2 / 2
  CHECK_CLOSE(sp.power()[10], 2.0, 1e-4);     // all in bin 10
  std::vector<float> mag(sp.n_bins());
  sp.magnitude(mag.data());
  CHECK_CLOSE(mag[10], 2.0 * n / 2.0, 1e-2);  // |X_k| = A n / 2
  CHECK_THROWS(Spectrum(7 * 11, Taper::Hann));
}

TEST_CASE("band layout: linear bands partition the bins, sine lands in its band") {
  const double fs = 1000.0;
  const std::size_t n = 100;  // df = 10 Hz, bins 0..50
  const auto L = make_band_layout(fs, n, 5, 0.0, 0.0, false);
  CHECK(L.n_bands() == 5);
  CHECK(L.first[0] == 0 && L.last[0] == 10);   // 0..90 Hz in [0, 100)
  CHECK(L.first[4] == 40 && L.last[4] == 51);  // last band closed: includes 500 Hz
  for (std::size_t b = 1; b < 5; ++b) CHECK(L.first[b] == L.last[b - 1]);
  const auto x = sine(n, 1.0, 23.0);  // 230 Hz -> band 2 [200, 300)
  Spectrum sp(n, Taper::Hann);
  sp.compute(x.data());
  float e[5];
  band_energies(sp.power(), L, false, e);
  int arg = 0;
  for (int b = 1; b < 5; ++b)
    if (e[b] > e[arg]) arg = b;
  CHECK(arg == 2);
  double total = 0.0;
  for (float v : e) total += v;
  CHECK_CLOSE(total, 0.5, 1e-3);  // whole-cycle sine: mean((w x)^2)/mean(w^2) = A^2/2
}

TEST_CASE("band layout rejects empty bands and bad ranges") {
  CHECK_THROWS(make_band_layout(1000.0, 64, 64, 0.0, 0.0, true));  // log bands too narrow
  CHECK_THROWS(make_band_layout(1000.0, 64, 4, 400.0, 300.0, false));
  CHECK_THROWS(make_band_layout(1000.0, 64, 4, 0.0, 600.0, false));
  CHECK_THROWS(make_band_layout(1000.0, 64, 0, 0.0, 0.0, false));
  CHECK_THROWS(make_band_layout(-1.0, 64, 4, 0.0, 0.0, false));
  const auto L = make_band_layout(12000.0, 1024, 16, 0.0, 0.0, true);
  CHECK_CLOSE(L.edges[0], 12000.0 / 1024.0, 1e-9);
  CHECK_CLOSE(L.edges[16], 6000.0, 1e-9);
}

TEST_CASE("spectral shape of a pure bin-centred sine (rect)") {
  const std::size_t n = 128;
  const auto x = sine(n, 1.0, 16.0);
  Spectrum sp(n, Taper::Rect);
  sp.compute(x.data());
  float s[4];
  spectral_shape(sp.power(), sp.n_bins(), 100.0, s);
  CHECK_CLOSE(s[0], 1600.0, 1e-2);  // centroid at bin 16
  CHECK(s[1] < 1e-2);               // (almost) no spread
  CHECK(s[2] < 1e-3);               // tonal: flatness ~ 0
  std::vector<float> zero(65, 0.f);
  spectral_shape(zero.data(), zero.size(), 1.0, s);
  CHECK(s[0] == 0.f && s[1] == 0.f && s[3] == 0.f);
  CHECK_CLOSE(s[2], 1.0, 1e-6);
}

TEST_CASE("bearing frequencies of the CWRU 6205 drive-end bearing") {
  BearingGeometry g{9, 0.3126, 1.537, 0};
  const auto f = bearing_frequencies(g, 1.0);
  CHECK_CLOSE(f.bpfi, 5.4152, 1e-4);
  CHECK_CLOSE(f.bpfo, 3.5848, 1e-4);
  CHECK_CLOSE(f.bsf, 2.3567, 1e-4);
  CHECK_CLOSE(f.ftf, 0.3983, 1e-4);
  const auto f30 = bearing_frequencies(g, 29.95);
  CHECK_CLOSE(f30.bpfi, 5.4152 * 29.95, 5e-3);
  CHECK_THROWS(bearing_frequencies(g, 0.0));
  CHECK_THROWS(bearing_frequencies(BearingGeometry{9, 2.0, 1.0, 0}, 10.0));
  CHECK_THROWS(bearing_frequencies(BearingGeometry{0, 0.3, 1.5, 0}, 10.0));
  CHECK_THROWS(bearing_frequencies(BearingGeometry{9, 0.3, 1.5, 90}, 10.0));
}

TEST_CASE("envelope of an AM signal peaks at the modulation frequency") {
  const double fs = 8192.0;
  const std::size_t n = 4096;  // df = 2 Hz
  std::vector<float> x(n);
  for (std::size_t j = 0; j < n; ++j) {
    const double t = static_cast<double>(j) / fs;
    x[j] = static_cast<float>((1.0 + 0.5 * std::cos(2 * kPi * 100.0 * t)) * std::sin(2 * kPi * 2000.0 * t));
  }
  Envelope env(fs, n, Taper::Hann, 1000.0, 3000.0);
  env.compute(x.data());
  // |analytic| = 1 + 0.5 cos(...) exactly for this whole-cycle signal
  CHECK_CLOSE(env.envelope()[0], 1.5, 1e-3);
  std::size_t arg = 1;
  for (std::size_t k = 1; k < env.n_bins(); ++k)
    if (env.magnitude()[k] > env.magnitude()[arg]) arg = k;
  CHECK(arg == 50);  // 100 Hz / 2 Hz
  CHECK_THROWS(Envelope(fs, n, Taper::Hann, 3000.0, 1000.0));
  CHECK_THROWS(Envelope(fs, n, Taper::Hann, 0.0, 5000.0));
}

TEST_CASE("extractor: product figure set, names and values") {
  ExtractorConfig cfg;
  cfg.fs = 12000.0;
  cfg.window = 1024;
  FeatureBlock t;
  t.kind = FeatureBlock::Kind::TimeStats;
  t.stats = {"rms", "kurtosis", "crest_factor"};
  FeatureBlock b;
  b.kind = FeatureBlock::Kind::BandEnergy;
  cfg.blocks = {t, b};
  FeatureExtractor ex(cfg);
  CHECK(ex.n_features() == 19);
  CHECK(ex.feature_names()[0] == "rms");
  CHECK(ex.feature_names()[3].rfind("band00_11.7_", 0) == 0);
  CHECK(ex.feature_names()[18].find("_6000Hz_dB") != std::string::npos);
  const auto x = sine(1024, 1.0, 64.0);  // 750 Hz
  std::vector<float> out(ex.n_features());
  ex.compute(x.data(), out.data());
  CHECK_CLOSE(out[0], 1.0 / std::sqrt(2.0), 1e-6);
  CHECK_CLOSE(out[1], 1.5, 1e-5);
  CHECK_CLOSE(out[2], std::sqrt(2.0), 1e-5);
  CHECK(all_finite(out));
}

TEST_CASE("extractor: every block kind, shared envelope, finite on zeros") {
  ExtractorConfig cfg;
  cfg.fs = 12000.0;
  cfg.window = 2048;
  cfg.taper = Taper::Hamming;
  std::vector<FeatureBlock> blocks(7);
  blocks[0].kind = FeatureBlock::Kind::TimeStats;
  blocks[1].kind = FeatureBlock::Kind::BandEnergy;
  blocks[1].log_spacing = false;
  blocks[1].n_bands = 8;
  blocks[2].kind = FeatureBlock::Kind::SpectralShape;
  blocks[3].kind = FeatureBlock::Kind::MagnitudeSpectrum;
  blocks[4].kind = FeatureBlock::Kind::LogPowerSpectrum;
  blocks[5].kind = FeatureBlock::Kind::EnvelopeSpectrum;
  blocks[5].fmax = 500.0;
  blocks[6].kind = FeatureBlock::Kind::BearingEnvelope;
  blocks[6].geometry = BearingGeometry{9, 0.3126, 1.537, 0};
  blocks[6].shaft_hz = 29.95;
  cfg.blocks = blocks;
  FeatureExtractor ex(cfg);
  const std::size_t nb = 1025;
  const std::size_t env_bins = 86;  // k * 5.859375 <= 500 -> k <= 85
  CHECK(ex.n_features() == 16 + 8 + 4 + nb + nb + env_bins + 12);
  CHECK(ex.feature_names()[16] == "band00_0_750Hz_dB");
  CHECK(ex.feature_names().back() == "ftf_h3");
  std::vector<float> zeros(2048, 0.f), out(ex.n_features());
  ex.compute(zeros.data(), out.data());
  CHECK(all_finite(out));
  FeatureExtractor moved(std::move(ex));
  CHECK(moved.n_features() == out.size());
}

TEST_CASE("extractor: config validation throws with the field named") {
  auto throws_with = [](const ExtractorConfig& c, const std::string& needle) {
    try {
      FeatureExtractor ex(c);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
  };
  ExtractorConfig base;
  base.fs = 1000.0;
  base.window = 256;
  FeatureBlock t;
  t.kind = FeatureBlock::Kind::TimeStats;
  FeatureBlock b;
  b.kind = FeatureBlock::Kind::BandEnergy;
  b.n_bands = 4;
  base.blocks = {t};

  auto c = base; c.fs = 0.0; CHECK(throws_with(c, "fs"));
  c = base; c.window = 8; CHECK(throws_with(c, "window"));
  c = base; c.blocks.clear(); CHECK(throws_with(c, "blocks"));
  c = base; c.blocks[0].stats = {"rms", "bogus"}; CHECK(throws_with(c, "bogus"));
  c = base; c.blocks[0].stats = {"rms", "rms"}; CHECK(throws_with(c, "twice"));
  c = base; c.window = 1021; c.blocks = {b}; CHECK(throws_with(c, "window"));
  c = base; c.window = 1021; c.blocks = {t};  // time stats alone: any window >= 16
  { FeatureExtractor ok(c); CHECK(ok.n_features() == 16); }
  c = base; b.fmax = 600.0; c.blocks = {b}; CHECK(throws_with(c, "blocks[0] (band_energy).fmax"));
  b.fmax = 0.0; b.fmin = 100.0; b.n_bands = 200; c.blocks = {b}; CHECK(throws_with(c, "no FFT bin"));
  c = base; c.blocks = {t, t}; CHECK(throws_with(c, "twice"));
  FeatureBlock be;
  be.kind = FeatureBlock::Kind::BearingEnvelope;
  be.geometry = BearingGeometry{9, 0.3126, 1.537, 0};
  c = base; c.blocks = {be}; CHECK(throws_with(c, "shaft_hz"));
  be.shaft_hz = 30.0; be.geometry.pitch_diameter = 0.1; c.blocks = {be};
  CHECK(throws_with(c, "pitch_diameter"));
  be.geometry.pitch_diameter = 1.537; be.band_lo = 400.0; be.band_hi = 100.0; c.blocks = {be};
  CHECK(throws_with(c, "band"));
  be.band_lo = 0; be.band_hi = 0; be.harmonics = 0; c.blocks = {be};
  CHECK(throws_with(c, "harmonics"));
}

TEST_MAIN()
