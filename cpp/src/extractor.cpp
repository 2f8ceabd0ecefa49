// FeatureExtractor: validates a spec once, precomputes taper, FFTs, band and line bin ranges,
// then computes every block of one window from one shared FFT of the tapered window (plus one
// envelope per distinct envelope band, only when an envelope block is present).
#include "edgefault/extractor.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "edgefault/features.hpp"

namespace edgefault {

namespace {

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

// Compact edge label for names: integers as is, otherwise up to 1 decimal ("11.7").
std::string edge_label(double f) {
  char buf[64];
  const double r = std::round(f);
  if (std::fabs(f - r) < 0.05 || f >= 1000.0) {
    std::snprintf(buf, sizeof buf, "%.0f", f);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", f);
  }
  return buf;
}

std::string zpad(std::size_t i, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*zu", width, i);
  return buf;
}

const char* kind_name(FeatureBlock::Kind k) {
  switch (k) {
    case FeatureBlock::Kind::TimeStats: return "time_stats";
    case FeatureBlock::Kind::BandEnergy: return "band_energy";
    case FeatureBlock::Kind::SpectralShape: return "spectral_shape";
    case FeatureBlock::Kind::MagnitudeSpectrum: return "magnitude_spectrum";
    case FeatureBlock::Kind::LogPowerSpectrum: return "log_power_spectrum";
    case FeatureBlock::Kind::EnvelopeSpectrum: return "envelope_spectrum";
    case FeatureBlock::Kind::BearingEnvelope: return "bearing_envelope";
  }
  return "unknown";
}

bool is_spectral(FeatureBlock::Kind k) { return k != FeatureBlock::Kind::TimeStats; }
bool uses_envelope(FeatureBlock::Kind k) {
  return k == FeatureBlock::Kind::EnvelopeSpectrum || k == FeatureBlock::Kind::BearingEnvelope;
}

}  // namespace

struct FeatureExtractor::Impl {
  struct Plan {
    FeatureBlock::Kind kind;
    std::size_t offset = 0, count = 0;
    std::vector<int> stat_index;  // TimeStats
    BandLayout bands;             // BandEnergy
    bool log_values = true;
    std::size_t env = 0;          // index into envelopes
    BearingLines lines;           // BearingEnvelope
  };

  ExtractorConfig cfg;
  std::vector<std::string> names;
  std::vector<Plan> plans;
  std::optional<Spectrum> spectrum;
  bool need_spectrum = false;
  bool need_stats = false;
  unsigned stat_parts = 0;
  std::vector<Envelope> envelopes;
  double df = 0.0;
  mutable std::mutex mu;  // guards the scratch of spectrum / envelopes
};

FeatureExtractor::FeatureExtractor(const ExtractorConfig& config) : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  I.cfg = config;
  const double fs = config.fs;
  const std::size_t n = config.window;
  if (!(std::isfinite(fs) && fs > 0.0))
    throw std::invalid_argument("fs: expected a finite sample rate > 0 Hz, got " + fmt(fs));
  if (n < 16) throw std::invalid_argument("window: expected >= 16 samples, got " + std::to_string(n));
  if (config.blocks.empty())
    throw std::invalid_argument("blocks: expected at least one feature block");
  const std::size_t nb = n / 2 + 1;
  I.df = fs / static_cast<double>(n);
  const double nyq = fs / 2.0;

  bool any_spectral = false;
  for (const auto& b : config.blocks) any_spectral = any_spectral || is_spectral(b.kind);
  if (any_spectral && !fft_size_supported(n)) {
    throw std::invalid_argument(
        "window: spectral blocks need an FFT size 2^a 3^b 5^c, got " + std::to_string(n) +
        " (nearest larger supported size: " + std::to_string(next_fast_fft_size(n)) + ")");
  }

  for (std::size_t bi = 0; bi < config.blocks.size(); ++bi) {
    const FeatureBlock& B = config.blocks[bi];
    const std::string where = "blocks[" + std::to_string(bi) + "] (" + kind_name(B.kind) + ")";
    Impl::Plan p;
    p.kind = B.kind;
    p.offset = I.names.size();
    try {
      switch (B.kind) {
        case FeatureBlock::Kind::TimeStats: {
          I.need_stats = true;
          if (B.stats.empty()) {
            for (std::size_t s = 0; s < kTimeStatCount; ++s) p.stat_index.push_back(static_cast<int>(s));
          } else {
            std::set<int> seen;
            for (const auto& s : B.stats) {
              const int idx = time_stat_index(s);
              if (idx < 0) {
                std::string all;
                for (const char* nm : time_stat_names()) all += (all.empty() ? "" : ", ") + std::string(nm);
                throw std::invalid_argument("stats: unknown statistic '" + s + "'; expected one of " + all);
              }
              if (!seen.insert(idx).second)
                throw std::invalid_argument("stats: statistic '" + s + "' listed twice");
              p.stat_index.push_back(idx);
            }
          }
          for (int idx : p.stat_index) {
            I.names.emplace_back(time_stat_names()[static_cast<std::size_t>(idx)]);
            I.stat_parts |= time_stat_parts(idx);
          }
          break;
        }
        case FeatureBlock::Kind::BandEnergy: {
          p.bands = make_band_layout(fs, n, B.n_bands, B.fmin, B.fmax, B.log_spacing);
          p.log_values = B.log_values;
          const std::size_t nbands = p.bands.n_bands();
          const int width = nbands > 100 ? 3 : 2;
          for (std::size_t b = 0; b < nbands; ++b) {
            I.names.push_back("band" + zpad(b, width) + "_" + edge_label(p.bands.edges[b]) + "_" +
                              edge_label(p.bands.edges[b + 1]) + "Hz" + (B.log_values ? "_dB" : ""));
          }
          break;
        }
        case FeatureBlock::Kind::SpectralShape:
          for (const char* nm : spectral_shape_names()) I.names.emplace_back(nm);
          break;
        case FeatureBlock::Kind::MagnitudeSpectrum:
          for (std::size_t k = 0; k < nb; ++k) I.names.push_back("mag_" + zpad(k, 4));
          break;
        case FeatureBlock::Kind::LogPowerSpectrum:
          for (std::size_t k = 0; k < nb; ++k) I.names.push_back("lps_" + zpad(k, 4));
          break;
        case FeatureBlock::Kind::EnvelopeSpectrum:
        case FeatureBlock::Kind::BearingEnvelope: {
          // One envelope per distinct band, shared between blocks.
          std::size_t e = 0;
          for (; e < I.envelopes.size(); ++e)
            if (I.envelopes[e].band_lo() == B.band_lo && I.envelopes[e].band_hi() == B.band_hi) break;
          if (e == I.envelopes.size()) I.envelopes.emplace_back(fs, n, config.taper, B.band_lo, B.band_hi);
          p.env = e;
          if (B.kind == FeatureBlock::Kind::EnvelopeSpectrum) {
            const double fmax = B.fmax == 0.0 ? nyq : B.fmax;
            if (!(std::isfinite(B.fmax) && fmax > 0.0 && fmax <= nyq))
              throw std::invalid_argument("fmax: expected 0 (= fs/2) or 0 < fmax <= fs/2 = " + fmt(nyq) +
                                          " Hz, got " + fmt(B.fmax));
            std::size_t count = 0;
            while (count < nb && static_cast<double>(count) * fs / static_cast<double>(n) <= fmax) ++count;
            for (std::size_t k = 0; k < count; ++k) I.names.push_back("env_" + zpad(k, 4));
          } else {
            p.lines = make_bearing_lines(B.geometry, B.shaft_hz, B.harmonics, B.tolerance_hz, fs, n);
            for (const auto& nm : p.lines.names) I.names.push_back(nm);
          }
          break;
        }
        default:
          throw std::invalid_argument("kind: unknown block kind");
      }
    } catch (const std::invalid_argument& ex) {
      throw std::invalid_argument(where + "." + ex.what());
    }
    p.count = I.names.size() - p.offset;
    if (is_spectral(B.kind) && !uses_envelope(B.kind)) I.need_spectrum = true;
    I.plans.push_back(std::move(p));
  }

  std::set<std::string> seen;
  for (const auto& nm : I.names) {
    if (!seen.insert(nm).second)
      throw std::invalid_argument("blocks: feature name '" + nm +
                                  "' is produced twice; expected each block to be listed once");
  }
  if (I.need_spectrum) I.spectrum.emplace(n, config.taper);
}

FeatureExtractor::~FeatureExtractor() = default;
FeatureExtractor::FeatureExtractor(FeatureExtractor&&) noexcept = default;
FeatureExtractor& FeatureExtractor::operator=(FeatureExtractor&&) noexcept = default;

const ExtractorConfig& FeatureExtractor::config() const noexcept { return impl_->cfg; }
std::size_t FeatureExtractor::window() const noexcept { return impl_->cfg.window; }
std::size_t FeatureExtractor::n_features() const noexcept { return impl_->names.size(); }
const std::vector<std::string>& FeatureExtractor::feature_names() const noexcept { return impl_->names; }

std::mutex& FeatureExtractor::mutex() const noexcept { return impl_->mu; }

void FeatureExtractor::compute(const float* x, float* out) {
  const Lock held(impl_->mu);
  compute(held, x, out);
}

void FeatureExtractor::compute(const Lock& held, const float* x, float* out) {
  Impl& I = *impl_;
  assert(holds(held, I.mu));
  (void)held;
  const std::size_t n = I.cfg.window;
  double stats[kTimeStatCount];
  if (I.need_stats) time_stats(x, n, stats, I.stat_parts);
  if (I.need_spectrum) I.spectrum->compute(x);
  for (auto& e : I.envelopes) e.compute(x);
  const std::size_t nb = n / 2 + 1;
  for (const auto& p : I.plans) {
    float* o = out + p.offset;
    switch (p.kind) {
      case FeatureBlock::Kind::TimeStats:
        for (std::size_t i = 0; i < p.stat_index.size(); ++i)
          o[i] = static_cast<float>(stats[static_cast<std::size_t>(p.stat_index[i])]);
        break;
      case FeatureBlock::Kind::BandEnergy:
        band_energies(I.spectrum->power(), p.bands, p.log_values, o);
        break;
      case FeatureBlock::Kind::SpectralShape:
        spectral_shape(I.spectrum->power(), nb, I.df, o);
        break;
      case FeatureBlock::Kind::MagnitudeSpectrum:
        I.spectrum->magnitude(o);
        break;
      case FeatureBlock::Kind::LogPowerSpectrum:
        I.spectrum->log_power(o);
        break;
      case FeatureBlock::Kind::EnvelopeSpectrum:
        std::copy(I.envelopes[p.env].magnitude(), I.envelopes[p.env].magnitude() + p.count, o);
        break;
      case FeatureBlock::Kind::BearingEnvelope:
        bearing_energy_fractions(I.envelopes[p.env].power(), nb, p.lines, o);
        break;
    }
  }
}

}  // namespace edgefault
