// Per-window feature kernels. Formulas: docs/features.md.
#include "edgefault/features.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "vec4.hpp"

namespace edgefault {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kLn2 = 0.69314718055994530942;

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

bool finite(double v) { return std::isfinite(v); }

// One-sided power scaling shared by Spectrum and Envelope: c_k / (n * sum w^2).
void power_scales(const std::vector<float>& w, float& dc, float& mid, float& nyq) {
  double sw2 = 0.0;
  for (float v : w) sw2 += static_cast<double>(v) * v;
  const double n = static_cast<double>(w.size());
  const double base = sw2 > 0.0 ? 1.0 / (n * sw2) : 0.0;
  dc = static_cast<float>(base);
  mid = static_cast<float>(2.0 * base);
  nyq = static_cast<float>(w.size() % 2 == 0 ? base : 2.0 * base);
}

void power_from_bins(const cfloat* X, std::size_t n, float dc, float mid, float nyq,
                     float* P) noexcept {
  const std::size_t nb = n / 2 + 1;
  const float* xs = reinterpret_cast<const float*>(X);
  for (std::size_t k = 0; k < nb; ++k) {
    const float re = xs[2 * k], im = xs[2 * k + 1];
    P[k] = mid * (re * re + im * im);
  }
  P[0] = dc * std::norm(X[0]);
  if (n % 2 == 0) P[nb - 1] = nyq * std::norm(X[nb - 1]);
}

void check_fft_size(std::size_t n, const char* what) {
  if (n < 2 || !fft_size_supported(n)) {
    bad(std::string(what) + ": expected an FFT size 2^a 3^b 5^c >= 2, got " + std::to_string(n) +
        (n >= 2 ? " (nearest larger supported size: " + std::to_string(next_fast_fft_size(n)) + ")"
                : std::string()));
  }
}

}  // namespace

// ------------------------------------------------------------------ time-domain statistics

const std::array<const char*, kTimeStatCount>& time_stat_names() noexcept {
  static const std::array<const char*, kTimeStatCount> names = {
      "mean",     "rms",          "smr",          "mean_abs",       "var",
      "std",      "max",          "min",          "p2p",            "skewness",
      "kurtosis", "shape_factor", "crest_factor", "impulse_factor", "margin_factor",
      "kurtosis_factor"};
  return names;
}

int time_stat_index(const std::string& name) noexcept {
  const auto& names = time_stat_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return static_cast<int>(i);
  return -1;
}

unsigned time_stat_parts(int index) noexcept {
  // mean rms smr mean_abs var std max min p2p skew kurt shape crest impulse margin kfactor
  static const unsigned parts[kTimeStatCount] = {
      kTimeStatsMoments, kTimeStatsMoments, kTimeStatsAbs, kTimeStatsAbs,
      kTimeStatsMoments, kTimeStatsMoments, 0u, 0u, 0u, kTimeStatsMoments, kTimeStatsMoments,
      kTimeStatsMoments | kTimeStatsAbs, kTimeStatsMoments, kTimeStatsAbs, kTimeStatsAbs,
      kTimeStatsMoments};
  if (index < 0 || index >= static_cast<int>(kTimeStatCount)) return 0u;
  return parts[index];
}

using namespace detail;  // vf4 helpers (vec4.hpp)

void time_stats(const float* x, std::size_t n, double* out, unsigned parts) noexcept {
  std::fill(out, out + kTimeStatCount, 0.0);
  if (n == 0) return;
  const std::size_t nblk = n / kBlock * kBlock;
  const double nd = static_cast<double>(n);

  // Pass 1: max, min and an approximate mean (refined exactly in pass 2).
  vf4 mx0 = splat(x[0]), mx1 = mx0, mn0 = mx0, mn1 = mx0;
  double S1 = 0.0;
  for (std::size_t i0 = 0; i0 < nblk; i0 += kBlock) {
    vf4 a0 = splat(0.f), a1 = a0;
    for (std::size_t i = i0; i < i0 + kBlock; i += 8) {
      const vf4 v0 = load4(x + i), v1 = load4(x + i + 4);
      a0 += v0;
      a1 += v1;
      mx0 = vmax(v0, mx0);
      mx1 = vmax(v1, mx1);
      mn0 = vmin(v0, mn0);
      mn1 = vmin(v1, mn1);
    }
    S1 += hsum(a0) + hsum(a1);
  }
  float vmaxf = std::max(hmax(mx0), hmax(mx1)), vminf = std::min(hmin(mn0), hmin(mn1));
  for (std::size_t i = nblk; i < n; ++i) {
    const float v = x[i];
    S1 += v;
    vmaxf = v > vmaxf ? v : vmaxf;
    vminf = v < vminf ? v : vminf;
  }
  if (std::isnan(S1)) {
    std::fill(out, out + kTimeStatCount, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  const double vmax = vmaxf, vmin = vminf;
  const double peak = std::max(std::fabs(vmax), std::fabs(vmin));
  auto ratio = [](double a, double b) { return b == 0.0 ? 0.0 : a / b; };
  out[6] = vmax;
  out[7] = vmin;
  out[8] = vmax - vmin;

  double mean = S1 / nd, m2 = 0.0, m3 = 0.0, m4 = 0.0, ms = 0.0;
  if (parts & kTimeStatsMoments) {
    // Pass 2: moments of u = (x - mf) / s, with mf the float-rounded approximate mean and
    // s = max |x - mf|, so every power of u is <= ~1 (no overflow, no cancellation).
    const float mf = static_cast<float>(mean);
    const double s = std::max(vmax - static_cast<double>(mf), static_cast<double>(mf) - vmin);
    if (s > 0.0 && std::isfinite(s)) {
      const double inv_d = 1.0 / s;
      const float inv = std::isfinite(static_cast<float>(inv_d)) ? static_cast<float>(inv_d) : 1.0f;
      const double sc = inv == 1.0f ? 1.0 : s;  // u = (x - mf) / sc exactly as scaled below
      double U1 = 0.0, U2 = 0.0, U3 = 0.0, U4 = 0.0;
      const vf4 vmf = splat(mf), vinv = splat(inv);
      for (std::size_t i0 = 0; i0 < nblk; i0 += kBlock) {
        vf4 b1 = splat(0.f), b2 = b1, b3 = b1, b4 = b1;
        for (std::size_t i = i0; i < i0 + kBlock; i += 8) {
          const vf4 u0 = (load4(x + i) - vmf) * vinv, u1 = (load4(x + i + 4) - vmf) * vinv;
          const vf4 q0 = u0 * u0, q1 = u1 * u1;
          b1 += u0 + u1;
          b2 += q0 + q1;
          b3 += q0 * u0 + q1 * u1;
          b4 += q0 * q0 + q1 * q1;
        }
        U1 += hsum(b1);
        U2 += hsum(b2);
        U3 += hsum(b3);
        U4 += hsum(b4);
      }
      for (std::size_t i = nblk; i < n; ++i) {
        const double u = static_cast<double>((x[i] - mf) * inv);
        U1 += u;
        U2 += u * u;
        U3 += u * u * u;
        U4 += u * u * u * u;
      }
      const double e = U1 / nd, q2 = U2 / nd, q3 = U3 / nd, q4 = U4 / nd;
      // central moments in u units (e = offset of the true mean from mf, tiny)
      const double c2 = std::max(0.0, q2 - e * e);
      const double c3 = q3 - 3.0 * e * q2 + 2.0 * e * e * e;
      const double c4 = std::max(0.0, q4 - 4.0 * e * q3 + 6.0 * e * e * q2 - 3.0 * e * e * e * e);
      mean = static_cast<double>(mf) + e * sc;
      m2 = c2 * sc * sc;
      m3 = c3 * sc * sc * sc;
      m4 = c4 * sc * sc * sc * sc;
      out[9] = ratio(c3, c2 * std::sqrt(c2));
      out[10] = ratio(c4, c2 * c2);
    } else if (!std::isfinite(s)) {
      m2 = m3 = m4 = std::numeric_limits<double>::infinity();
      out[9] = out[10] = std::numeric_limits<double>::quiet_NaN();
    }
    ms = mean * mean + m2;  // mean(x^2) = mean^2 + var
    const double rms = std::sqrt(ms);
    const double mu2 = mean * mean;
    const double ex4 = mu2 * mu2 + 6.0 * mu2 * m2 + 4.0 * mean * m3 + m4;  // mean(x^4)
    out[0] = mean;
    out[1] = rms;
    out[4] = m2;
    out[5] = std::sqrt(m2);
    out[12] = ratio(peak, rms);
    out[15] = ratio(std::max(0.0, ex4), ms * ms);
  }

  if (parts & kTimeStatsAbs) {
    double Sa = 0.0, Sr = 0.0;
    for (std::size_t i0 = 0; i0 < nblk; i0 += kBlock) {
      vf4 ba = splat(0.f), br = ba;
      for (std::size_t i = i0; i < i0 + kBlock; i += 8) {
        const vf4 a0 = vabs(load4(x + i)), a1 = vabs(load4(x + i + 4));
        ba += a0 + a1;
        br += vsqrt(a0) + vsqrt(a1);
      }
      Sa += hsum(ba);
      Sr += hsum(br);
    }
    for (std::size_t i = nblk; i < n; ++i) {
      const float a = std::fabs(x[i]);
      Sa += a;
      Sr += std::sqrt(a);
    }
    const double mean_abs = Sa / nd;
    const double msr = Sr / nd;
    const double smr = msr * msr;
    out[2] = smr;
    out[3] = mean_abs;
    out[13] = ratio(peak, mean_abs);
    out[14] = ratio(peak, smr);
    if (parts & kTimeStatsMoments) out[11] = ratio(out[1], mean_abs);
  }
  if (!(parts & kTimeStatsMoments)) out[0] = mean;
}

// ------------------------------------------------------------------ tapers

Taper parse_taper(const std::string& name, const char* field) {
  if (name == "rect" || name == "boxcar" || name == "rectangular") return Taper::Rect;
  if (name == "hann") return Taper::Hann;
  if (name == "hamming") return Taper::Hamming;
  if (name == "blackman") return Taper::Blackman;
  bad(std::string(field) + ": unknown taper '" + name +
      "'; expected one of rect, hann, hamming, blackman");
}

const char* taper_name(Taper t) noexcept {
  switch (t) {
    case Taper::Rect: return "rect";
    case Taper::Hann: return "hann";
    case Taper::Hamming: return "hamming";
    case Taper::Blackman: return "blackman";
  }
  return "unknown";
}

std::vector<float> make_taper(Taper t, std::size_t n) {
  std::vector<float> w(n, 1.0f);
  const double N = static_cast<double>(n);
  for (std::size_t j = 0; j < n; ++j) {
    const double ph = 2.0 * kPi * static_cast<double>(j) / N;
    double v = 1.0;
    switch (t) {
      case Taper::Rect: v = 1.0; break;
      case Taper::Hann: v = 0.5 - 0.5 * std::cos(ph); break;
      case Taper::Hamming: v = 0.54 - 0.46 * std::cos(ph); break;
      case Taper::Blackman: v = 0.42 - 0.5 * std::cos(ph) + 0.08 * std::cos(2.0 * ph); break;
    }
    w[j] = static_cast<float>(v);
  }
  return w;
}

// ------------------------------------------------------------------ spectrum

namespace {
std::size_t checked_fft_size(std::size_t n, const char* what) {
  check_fft_size(n, what);
  return n;
}
}  // namespace

Spectrum::Spectrum(std::size_t n, Taper taper)
    : n_(checked_fft_size(n, "window")),
      w_(make_taper(taper, n)),
      xw_(n),
      P_(n / 2 + 1),
      X_(n / 2 + 1),
      fft_(n) {
  power_scales(w_, scale_dc_, scale_mid_, scale_nyq_);
}

void Spectrum::compute(const float* x) noexcept {
  const float* w = w_.data();
  float* y = xw_.data();
  for (std::size_t j = 0; j < n_; ++j) y[j] = w[j] * x[j];
  fft_.forward(y, X_.data());
  power_from_bins(X_.data(), n_, scale_dc_, scale_mid_, scale_nyq_, P_.data());
}

void Spectrum::magnitude(float* out) const noexcept {
  const std::size_t nb = n_bins();
  for (std::size_t k = 0; k < nb; ++k) out[k] = std::abs(X_[k]);
}

void Spectrum::log_power(float* out) const noexcept {
  const std::size_t nb = n_bins();
  for (std::size_t k = 0; k < nb; ++k)
    out[k] = static_cast<float>(10.0 * std::log10(static_cast<double>(P_[k]) + kLogEps));
}

// ------------------------------------------------------------------ band energies

BandLayout make_band_layout(double fs, std::size_t n, std::size_t n_bands, double fmin,
                            double fmax, bool log_spacing) {
  if (!(finite(fs) && fs > 0.0)) bad("fs: expected a finite sample rate > 0 Hz, got " + fmt(fs));
  if (n < 2) bad("window: expected >= 2 samples, got " + std::to_string(n));
  if (n_bands < 1) bad("n_bands: expected >= 1, got " + std::to_string(n_bands));
  const double nyq = fs / 2.0;
  if (!finite(fmax) || fmax < 0.0) bad("fmax: expected 0 (= fs/2) or a frequency in (fmin, fs/2] Hz, got " + fmt(fmax));
  if (fmax == 0.0) fmax = nyq;
  if (fmax > nyq) bad("fmax: expected <= fs/2 = " + fmt(nyq) + " Hz, got " + fmt(fmax));
  if (!finite(fmin) || fmin < 0.0) bad("fmin: expected a frequency >= 0 Hz, got " + fmt(fmin));
  const double df = fs / static_cast<double>(n);
  if (log_spacing && fmin == 0.0) fmin = df;
  if (!(fmin < fmax))
    bad("fmin: expected fmin < fmax, got fmin = " + fmt(fmin) + " Hz, fmax = " + fmt(fmax) + " Hz");

  BandLayout L;
  L.edges.resize(n_bands + 1);
  const double B = static_cast<double>(n_bands);
  for (std::size_t b = 0; b <= n_bands; ++b) {
    const double t = static_cast<double>(b) / B;
    L.edges[b] = log_spacing ? fmin * std::pow(fmax / fmin, t) : fmin + (fmax - fmin) * t;
  }
  L.edges[0] = fmin;
  L.edges[n_bands] = fmax;
  L.first.assign(n_bands, 0);
  L.last.assign(n_bands, 0);
  const std::size_t nb = n / 2 + 1;
  std::size_t b = 0;
  for (std::size_t k = 0; k < nb; ++k) {
    const double f = static_cast<double>(k) * fs / static_cast<double>(n);
    if (f < fmin || f > fmax) continue;
    while (b + 1 < n_bands && f >= L.edges[b + 1]) ++b;
    if (L.last[b] == 0) L.first[b] = k;
    L.last[b] = k + 1;
  }
  for (std::size_t j = 0; j < n_bands; ++j) {
    if (L.last[j] <= L.first[j]) {
      bad("n_bands: band " + std::to_string(j) + " [" + fmt(L.edges[j]) + ", " +
          fmt(L.edges[j + 1]) + ") Hz holds no FFT bin (bin spacing fs/window = " + fmt(df) +
          " Hz); expected every band to hold >= 1 bin: use fewer bands, a larger fmin or a longer window");
    }
  }
  return L;
}

void band_energies(const float* power, const BandLayout& layout, bool log_values,
                   float* out) noexcept {
  const std::size_t nbands = layout.n_bands();
  for (std::size_t b = 0; b < nbands; ++b) {
    double e0 = 0.0, e1 = 0.0;
    std::size_t k = layout.first[b];
    const std::size_t end = layout.last[b];
    for (; k + 2 <= end; k += 2) {
      e0 += power[k];
      e1 += power[k + 1];
    }
    if (k < end) e0 += power[k];
    const double e = e0 + e1;
    out[b] = static_cast<float>(log_values ? 10.0 * std::log10(e + kLogEps) : e);
  }
}

// ------------------------------------------------------------------ spectral shape

const std::array<const char*, kSpectralShapeCount>& spectral_shape_names() noexcept {
  static const std::array<const char*, kSpectralShapeCount> names = {
      "centroid", "spread", "flatness", "spectral_kurtosis"};
  return names;
}

void spectral_shape(const float* power, std::size_t nb, double df, float* out) noexcept {
  if (nb == 0) {
    out[0] = out[1] = out[3] = 0.f;
    out[2] = 1.f;
    return;
  }
  double s0 = 0.0, s1 = 0.0;
  // Geometric mean via products of 8 values (each in [1e-12, ~3.4e38]) renormalised by frexp:
  // one log per 8 bins instead of one per bin.
  double logsum = 0.0, arith = 0.0;
  std::size_t k = 0;
  while (k < nb) {
    double prod = 1.0;
    const std::size_t end = std::min(nb, k + 8);
    for (; k < end; ++k) {
      const double p = power[k];
      s0 += p;
      s1 += static_cast<double>(k) * p;
      prod *= p + kLogEps;
      arith += p + kLogEps;
    }
    int e = 0;
    const double m = std::frexp(prod, &e);
    logsum += std::log(m) + static_cast<double>(e) * kLn2;
  }
  const double nbd = static_cast<double>(nb);
  const double flatness = std::exp(logsum / nbd) / (arith / nbd);
  if (!(s0 > 0.0)) {
    const bool nan = std::isnan(s0);
    const float z = nan ? std::numeric_limits<float>::quiet_NaN() : 0.f;
    out[0] = out[1] = out[3] = z;
    out[2] = nan ? z : static_cast<float>(flatness);
    return;
  }
  const double c_bins = s1 / s0;  // centroid in bins
  double m2 = 0.0, m4 = 0.0;
  for (k = 0; k < nb; ++k) {
    const double d = static_cast<double>(k) - c_bins;
    const double d2 = d * d;
    const double p = power[k];
    m2 += d2 * p;
    m4 += d2 * d2 * p;
  }
  m2 /= s0;
  m4 /= s0;
  out[0] = static_cast<float>(c_bins * df);
  out[1] = static_cast<float>(std::sqrt(m2) * df);
  out[2] = static_cast<float>(flatness);
  out[3] = static_cast<float>(m2 > 0.0 ? m4 / (m2 * m2) : 0.0);
}

// ------------------------------------------------------------------ envelope

Envelope::Envelope(double fs, std::size_t n, Taper taper, double band_lo, double band_hi)
    : n_(checked_fft_size(n, "window")),
      band_lo_(band_lo),
      band_hi_(band_hi),
      w_(make_taper(taper, n)),
      env_(n),
      y_(n),
      mag_(n / 2 + 1),
      P_(n / 2 + 1),
      R_(n / 2 + 1),
      Z_(n),
      E_(n / 2 + 1),
      rfft_(n),
      cfft_(n) {
  if (!(finite(fs) && fs > 0.0)) bad("fs: expected a finite sample rate > 0 Hz, got " + fmt(fs));
  const std::size_t nb = n / 2 + 1;
  const double nyq = fs / 2.0;
  if (band_lo == 0.0 && band_hi == 0.0) {
    k_lo_ = 0;
    k_hi_ = nb - 1;
  } else {
    if (!(finite(band_lo) && finite(band_hi) && band_lo >= 0.0 && band_lo < band_hi &&
          band_hi <= nyq)) {
      bad("band: expected 0 <= lo < hi <= fs/2 = " + fmt(nyq) + " Hz (or both 0 for no band-pass), got [" +
          fmt(band_lo) + ", " + fmt(band_hi) + "]");
    }
    std::size_t lo = nb, hi = 0;
    for (std::size_t k = 0; k < nb; ++k) {
      const double f = static_cast<double>(k) * fs / static_cast<double>(n);
      if (f >= band_lo && f <= band_hi) {
        lo = std::min(lo, k);
        hi = std::max(hi, k);
      }
    }
    if (lo > hi)
      bad("band: [" + fmt(band_lo) + ", " + fmt(band_hi) + "] Hz holds no FFT bin (bin spacing " +
          fmt(fs / static_cast<double>(n)) + " Hz); expected a wider band");
    k_lo_ = lo;
    k_hi_ = hi;
  }
  power_scales(w_, scale_dc_, scale_mid_, scale_nyq_);
}

void Envelope::compute(const float* x) noexcept {
  const std::size_t nb = n_ / 2 + 1;
  rfft_.forward(x, R_.data());
  // Analytic spectrum: h_0 = 1, h_k = 2 for 0 < k < n/2, h_{n/2} = 1 (even n), 0 above; band mask.
  std::fill(Z_.begin(), Z_.end(), cfloat(0.f, 0.f));
  const bool even = n_ % 2 == 0;
  for (std::size_t k = k_lo_; k <= k_hi_; ++k) {
    const bool single = k == 0 || (even && k == nb - 1);
    Z_[k] = single ? R_[k] : 2.0f * R_[k];
  }
  cfft_.inverse(Z_.data(), Z_.data());
  double s = 0.0;
  for (std::size_t j = 0; j < n_; ++j) {
    const float re = Z_[j].real(), im = Z_[j].imag();
    env_[j] = std::sqrt(re * re + im * im);
    s += env_[j];
  }
  const float mean = static_cast<float>(s / static_cast<double>(n_));
  for (std::size_t j = 0; j < n_; ++j) y_[j] = w_[j] * (env_[j] - mean);
  rfft_.forward(y_.data(), E_.data());
  for (std::size_t k = 0; k < nb; ++k) mag_[k] = std::abs(E_[k]);
  power_from_bins(E_.data(), n_, scale_dc_, scale_mid_, scale_nyq_, P_.data());
}

// ------------------------------------------------------------------ bearings

const std::array<const char*, kBearingLineCount>& bearing_line_names() noexcept {
  static const std::array<const char*, kBearingLineCount> names = {"bpfo", "bpfi", "bsf", "ftf"};
  return names;
}

BearingFrequencies bearing_frequencies(const BearingGeometry& g, double shaft_hz) {
  if (!(finite(g.n_elements) && g.n_elements >= 1.0))
    bad("geometry.n_elements: expected >= 1 rolling elements, got " + fmt(g.n_elements));
  if (!(finite(g.ball_diameter) && g.ball_diameter > 0.0))
    bad("geometry.ball_diameter: expected > 0, got " + fmt(g.ball_diameter));
  if (!(finite(g.pitch_diameter) && g.pitch_diameter > g.ball_diameter))
    bad("geometry.pitch_diameter: expected > ball_diameter = " + fmt(g.ball_diameter) + ", got " +
        fmt(g.pitch_diameter));
  if (!(finite(g.contact_angle_deg) && g.contact_angle_deg >= 0.0 && g.contact_angle_deg < 90.0))
    bad("geometry.contact_angle_deg: expected 0 <= angle < 90 degrees, got " +
        fmt(g.contact_angle_deg));
  if (!(finite(shaft_hz) && shaft_hz > 0.0))
    bad("shaft_hz: expected a shaft speed > 0 Hz, got " + fmt(shaft_hz));
  const double r = g.ball_diameter / g.pitch_diameter * std::cos(g.contact_angle_deg * kPi / 180.0);
  BearingFrequencies f;
  f.bpfo = g.n_elements / 2.0 * shaft_hz * (1.0 - r);
  f.bpfi = g.n_elements / 2.0 * shaft_hz * (1.0 + r);
  f.bsf = g.pitch_diameter / (2.0 * g.ball_diameter) * shaft_hz * (1.0 - r * r);
  f.ftf = shaft_hz / 2.0 * (1.0 - r);
  return f;
}

BearingLines make_bearing_lines(const BearingGeometry& g, double shaft_hz, std::size_t harmonics,
                                double tolerance_hz, double fs, std::size_t n) {
  if (!(finite(fs) && fs > 0.0)) bad("fs: expected a finite sample rate > 0 Hz, got " + fmt(fs));
  if (n < 2) bad("window: expected >= 2 samples, got " + std::to_string(n));
  if (harmonics < 1 || harmonics > 1000)
    bad("harmonics: expected 1..1000, got " + std::to_string(harmonics));
  if (!(finite(tolerance_hz) && tolerance_hz >= 0.0))
    bad("tolerance_hz: expected >= 0 Hz (0 = 2 bins), got " + fmt(tolerance_hz));
  const BearingFrequencies bf = bearing_frequencies(g, shaft_hz);
  const double lines[kBearingLineCount] = {bf.bpfo, bf.bpfi, bf.bsf, bf.ftf};
  const double df = fs / static_cast<double>(n);
  const double tol = tolerance_hz > 0.0 ? tolerance_hz : 2.0 * df;
  const std::size_t nb = n / 2 + 1;
  BearingLines out;
  for (std::size_t i = 0; i < kBearingLineCount; ++i) {
    for (std::size_t h = 1; h <= harmonics; ++h) {
      const double c = static_cast<double>(h) * lines[i];
      std::size_t first = 0, last = 0;
      bool any = false;
      for (std::size_t k = 0; k < nb; ++k) {
        const double f = static_cast<double>(k) * fs / static_cast<double>(n);
        if (std::fabs(f - c) <= tol) {
          if (!any) first = k;
          any = true;
          last = k + 1;
        }
      }
      out.first.push_back(first);
      out.last.push_back(last);
      out.names.push_back(std::string(bearing_line_names()[i]) + "_h" + std::to_string(h));
    }
  }
  return out;
}

void bearing_energy_fractions(const float* power, std::size_t nb, const BearingLines& lines,
                              float* out) noexcept {
  double total = 0.0;
  for (std::size_t k = 0; k < nb; ++k) total += power[k];
  for (std::size_t i = 0; i < lines.size(); ++i) {
    double e = 0.0;
    for (std::size_t k = lines.first[i]; k < lines.last[i]; ++k) e += power[k];
    out[i] = static_cast<float>(total == 0.0 ? 0.0 : e / total);
  }
}

}  // namespace edgefault
