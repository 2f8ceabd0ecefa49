// Bindings for the feature kernels and FeatureExtractor. No algorithm here: shape checks, the
// strict dict <-> ExtractorConfig conversion of the block schema (docs/features.md), and loops
// over windows with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "edgefault/extractor.hpp"
#include "edgefault/features.hpp"
#include "pyutil.hpp"

namespace py = pybind11;
namespace ef = edgefault;

namespace {

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

using namespace efpy;  // schema helpers (pyutil.hpp)

const std::set<std::string> kKinds = {"time_stats",         "band_energy",        "spectral_shape",
                                      "magnitude_spectrum", "log_power_spectrum", "envelope_spectrum",
                                      "bearing_envelope"};

ef::BearingGeometry geometry_from_dict(const py::handle& h, const std::string& where) {
  if (!py::isinstance<py::dict>(h))
    throw py::value_error(where + ": expected a dict with n_elements, ball_diameter, pitch_diameter, "
                                  "contact_angle_deg, got " + pyrepr(h));
  auto d = py::reinterpret_borrow<py::dict>(h);
  check_keys(d, {"n_elements", "ball_diameter", "pitch_diameter", "contact_angle_deg"}, where);
  for (const char* req : {"n_elements", "ball_diameter", "pitch_diameter"})
    if (!d.contains(req)) throw py::value_error(where + ": missing key '" + req + "'");
  ef::BearingGeometry g;
  g.n_elements = static_cast<double>(get_count(d["n_elements"], where + ".n_elements", 1));
  g.ball_diameter = get_number(d["ball_diameter"], where + ".ball_diameter");
  g.pitch_diameter = get_number(d["pitch_diameter"], where + ".pitch_diameter");
  if (auto a = opt(d, "contact_angle_deg")) g.contact_angle_deg = get_number(a, where + ".contact_angle_deg");
  return g;
}

// Converts one block dict of the schema in docs/features.md; strict about keys and types.
ef::FeatureBlock block_from_dict(const py::handle& h, std::size_t index) {
  using K = ef::FeatureBlock::Kind;
  const std::string where = "blocks[" + std::to_string(index) + "]";
  if (!py::isinstance<py::dict>(h)) throw py::value_error(where + ": expected a dict, got " + pyrepr(h));
  auto d = py::reinterpret_borrow<py::dict>(h);
  if (!d.contains("kind")) throw py::value_error(where + ": missing key 'kind'; expected one of " + join(kKinds));
  const std::string kind = get_str(d["kind"], where + ".kind");
  ef::FeatureBlock b;
  if (kind == "time_stats") {
    check_keys(d, {"kind", "stats"}, where);
    b.kind = K::TimeStats;
    if (auto s = opt(d, "stats")) {
      if (!(py::isinstance<py::list>(s) || py::isinstance<py::tuple>(s)))
        throw py::value_error(where + ".stats: expected a list of statistic names, got " + pyrepr(s));
      std::size_t i = 0;
      for (auto item : s) b.stats.push_back(get_str(item, where + ".stats[" + std::to_string(i++) + "]"));
      if (b.stats.empty()) throw py::value_error(where + ".stats: expected at least one name (omit the key for all 16)");
    }
  } else if (kind == "band_energy") {
    check_keys(d, {"kind", "n_bands", "spacing", "fmin", "fmax", "log"}, where);
    b.kind = K::BandEnergy;
    if (auto v = opt(d, "n_bands")) b.n_bands = get_count(v, where + ".n_bands", 1);
    if (auto v = opt(d, "spacing")) {
      const auto s = get_str(v, where + ".spacing");
      if (s != "log" && s != "linear")
        throw py::value_error(where + ".spacing: expected 'log' or 'linear', got '" + s + "'");
      b.log_spacing = s == "log";
    }
    if (auto v = opt(d, "fmin")) b.fmin = get_number(v, where + ".fmin");
    if (auto v = opt(d, "fmax")) b.fmax = get_number(v, where + ".fmax");
    if (auto v = opt(d, "log")) b.log_values = get_bool(v, where + ".log");
  } else if (kind == "spectral_shape" || kind == "magnitude_spectrum" || kind == "log_power_spectrum") {
    check_keys(d, {"kind"}, where);
    b.kind = kind == "spectral_shape" ? K::SpectralShape
             : kind == "magnitude_spectrum" ? K::MagnitudeSpectrum : K::LogPowerSpectrum;
  } else if (kind == "envelope_spectrum") {
    check_keys(d, {"kind", "band", "fmax"}, where);
    b.kind = K::EnvelopeSpectrum;
    get_band(opt(d, "band"), where + ".band", b.band_lo, b.band_hi);
    if (auto v = opt(d, "fmax")) b.fmax = get_number(v, where + ".fmax");
  } else if (kind == "bearing_envelope") {
    check_keys(d, {"kind", "geometry", "shaft_hz", "harmonics", "tolerance_hz", "band"}, where);
    b.kind = K::BearingEnvelope;
    if (!d.contains("geometry")) throw py::value_error(where + ": missing key 'geometry'");
    if (!d.contains("shaft_hz")) throw py::value_error(where + ": missing key 'shaft_hz'");
    b.geometry = geometry_from_dict(d["geometry"], where + ".geometry");
    b.shaft_hz = get_number(d["shaft_hz"], where + ".shaft_hz");
    if (auto v = opt(d, "harmonics")) b.harmonics = get_count(v, where + ".harmonics", 1);
    if (auto v = opt(d, "tolerance_hz")) b.tolerance_hz = get_number(v, where + ".tolerance_hz");
    get_band(opt(d, "band"), where + ".band", b.band_lo, b.band_hi);
  } else {
    throw py::value_error(where + ".kind: unknown kind '" + kind + "'; expected one of " + join(kKinds));
  }
  return b;
}

}  // namespace

// Shared by the FeatureExtractor constructor only (kept here: it is pure schema conversion).
ef::ExtractorConfig extractor_config_from_python(double fs, std::size_t window, const py::handle& blocks,
                                                 const std::string& taper) {
  ef::ExtractorConfig cfg;
  cfg.fs = fs;
  cfg.window = window;
  cfg.taper = ef::parse_taper(taper);
  if (!(py::isinstance<py::list>(blocks) || py::isinstance<py::tuple>(blocks)))
    throw py::value_error("blocks: expected a list of dicts, got " + pyrepr(blocks));
  std::size_t i = 0;
  for (auto b : blocks) cfg.blocks.push_back(block_from_dict(b, i++));
  return cfg;
}

namespace {

py::dict block_to_dict(const ef::FeatureBlock& b) {
  using K = ef::FeatureBlock::Kind;
  py::dict d;
  auto band = [&]() {
    if (b.band_lo != 0.0 || b.band_hi != 0.0) d["band"] = py::make_tuple(b.band_lo, b.band_hi);
  };
  switch (b.kind) {
    case K::TimeStats:
      d["kind"] = "time_stats";
      if (!b.stats.empty()) d["stats"] = py::cast(b.stats);
      break;
    case K::BandEnergy:
      d["kind"] = "band_energy";
      d["n_bands"] = b.n_bands;
      d["spacing"] = b.log_spacing ? "log" : "linear";
      d["fmin"] = b.fmin;
      d["fmax"] = b.fmax;
      d["log"] = b.log_values;
      break;
    case K::SpectralShape: d["kind"] = "spectral_shape"; break;
    case K::MagnitudeSpectrum: d["kind"] = "magnitude_spectrum"; break;
    case K::LogPowerSpectrum: d["kind"] = "log_power_spectrum"; break;
    case K::EnvelopeSpectrum:
      d["kind"] = "envelope_spectrum";
      band();
      d["fmax"] = b.fmax;
      break;
    case K::BearingEnvelope: {
      d["kind"] = "bearing_envelope";
      py::dict g;
      g["n_elements"] = static_cast<long long>(b.geometry.n_elements);
      g["ball_diameter"] = b.geometry.ball_diameter;
      g["pitch_diameter"] = b.geometry.pitch_diameter;
      g["contact_angle_deg"] = b.geometry.contact_angle_deg;
      d["geometry"] = g;
      d["shaft_hz"] = b.shaft_hz;
      d["harmonics"] = b.harmonics;
      d["tolerance_hz"] = b.tolerance_hz;
      band();
      break;
    }
  }
  return d;
}

struct Windows {
  carray<float> a;
  std::size_t m = 0, n = 0;
  bool one = false;  // input was 1-D
};

Windows as_windows(const py::handle& obj, const char* name) {
  Windows w;
  w.a = carray<float>::ensure(obj);
  if (!w.a) throw py::value_error(std::string(name) + ": expected a numeric array");
  if (w.a.ndim() == 1) {
    w.one = true;
    w.m = 1;
    w.n = static_cast<std::size_t>(w.a.shape(0));
  } else if (w.a.ndim() == 2) {
    w.m = static_cast<std::size_t>(w.a.shape(0));
    w.n = static_cast<std::size_t>(w.a.shape(1));
  } else {
    throw py::value_error(std::string(name) + ": expected shape (window,) or (n_windows, window), got " +
                          std::to_string(w.a.ndim()) + "-D");
  }
  if (w.n == 0) throw py::value_error(std::string(name) + ": expected windows of >= 1 sample, got 0");
  return w;
}

py::array_t<float> out_array(const Windows& w, std::size_t k) {
  if (w.one) return py::array_t<float>(static_cast<py::ssize_t>(k));
  return py::array_t<float>(std::vector<py::ssize_t>{static_cast<py::ssize_t>(w.m), static_cast<py::ssize_t>(k)});
}

// Runs fn(window_ptr, out_ptr) over all windows with the GIL released.
template <class Fn>
py::array_t<float> per_window(const Windows& w, std::size_t k, Fn&& fn) {
  auto out = out_array(w, k);
  const float* x = w.a.data();
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    for (std::size_t i = 0; i < w.m; ++i) fn(x + i * w.n, o + i * k);
  }
  return out;
}

bool parse_spacing(const std::string& s) {
  if (s == "log") return true;
  if (s == "linear") return false;
  throw py::value_error("spacing: expected 'log' or 'linear', got '" + s + "'");
}

}  // namespace

void register_features(py::module_& m) {
  m.attr("LOG_EPS") = ef::kLogEps;

  m.def("time_stat_names", []() {
    std::vector<std::string> v(ef::time_stat_names().begin(), ef::time_stat_names().end());
    return v;
  }, "The 16 time-domain statistics in canonical order.");

  m.def("spectral_shape_names", []() {
    std::vector<std::string> v(ef::spectral_shape_names().begin(), ef::spectral_shape_names().end());
    return v;
  }, "Names of the spectral_shape outputs: centroid, spread, flatness, spectral_kurtosis.");

  m.def("time_stats", [](const py::handle& windows) {
    auto w = as_windows(windows, "windows");
    return per_window(w, ef::kTimeStatCount, [&](const float* x, float* o) {
      double s[ef::kTimeStatCount];
      ef::time_stats(x, w.n, s);
      for (std::size_t i = 0; i < ef::kTimeStatCount; ++i) o[i] = static_cast<float>(s[i]);
    });
  }, py::arg("windows"), "(m, n) float32 -> (m, 16) time-domain statistics (see time_stat_names()).");

  m.def("power_spectrum", [](const py::handle& windows, const std::string& taper) {
    auto w = as_windows(windows, "windows");
    ef::Spectrum sp(w.n, ef::parse_taper(taper));
    const std::size_t nb = sp.n_bins();
    return per_window(w, nb, [&](const float* x, float* o) {
      sp.compute(x);
      std::copy(sp.power(), sp.power() + nb, o);
    });
  }, py::arg("windows"), py::arg("taper") = "hann",
     "One-sided power per bin P_k = c_k |X_k|^2 / (n sum w^2), (m, n) -> (m, n/2+1).");

  m.def("log_power_spectrum", [](const py::handle& windows, const std::string& taper) {
    auto w = as_windows(windows, "windows");
    ef::Spectrum sp(w.n, ef::parse_taper(taper));
    return per_window(w, sp.n_bins(), [&](const float* x, float* o) {
      sp.compute(x);
      sp.log_power(o);
    });
  }, py::arg("windows"), py::arg("taper") = "hann", "10 log10(P_k + LOG_EPS), (m, n) -> (m, n/2+1).");

  m.def("magnitude_spectrum", [](const py::handle& windows, const std::string& taper) {
    auto w = as_windows(windows, "windows");
    ef::Spectrum sp(w.n, ef::parse_taper(taper));
    return per_window(w, sp.n_bins(), [&](const float* x, float* o) {
      sp.compute(x);
      sp.magnitude(o);
    });
  }, py::arg("windows"), py::arg("taper") = "hann", "|rfft(w x)| (unnormalised), (m, n) -> (m, n/2+1).");

  m.def("band_edges", [](double fs, std::size_t window, std::size_t n_bands, double fmin, double fmax,
                         const std::string& spacing) {
    const auto L = ef::make_band_layout(fs, window, n_bands, fmin, fmax, parse_spacing(spacing));
    return py::array_t<double>(static_cast<py::ssize_t>(L.edges.size()), L.edges.data());
  }, py::arg("fs"), py::arg("window"), py::arg("n_bands") = 16, py::arg("fmin") = 0.0, py::arg("fmax") = 0.0,
     py::arg("spacing") = "log", "Band edges in Hz (n_bands + 1 values), as used by band_energies.");

  m.def("band_energies", [](const py::handle& windows, double fs, std::size_t n_bands, double fmin, double fmax,
                            const std::string& spacing, bool log, const std::string& taper) {
    auto w = as_windows(windows, "windows");
    const auto L = ef::make_band_layout(fs, w.n, n_bands, fmin, fmax, parse_spacing(spacing));
    ef::Spectrum sp(w.n, ef::parse_taper(taper));
    return per_window(w, L.n_bands(), [&](const float* x, float* o) {
      sp.compute(x);
      ef::band_energies(sp.power(), L, log, o);
    });
  }, py::arg("windows"), py::arg("fs"), py::arg("n_bands") = 16, py::arg("fmin") = 0.0, py::arg("fmax") = 0.0,
     py::arg("spacing") = "log", py::arg("log") = true, py::arg("taper") = "hann",
     "Sum of one-sided power P_k over each band; 10 log10(E + LOG_EPS) if log.");

  m.def("spectral_shape", [](const py::handle& windows, double fs, const std::string& taper) {
    auto w = as_windows(windows, "windows");
    if (!(std::isfinite(fs) && fs > 0.0)) throw py::value_error("fs: expected a finite sample rate > 0 Hz");
    ef::Spectrum sp(w.n, ef::parse_taper(taper));
    const double df = fs / static_cast<double>(w.n);
    return per_window(w, ef::kSpectralShapeCount, [&](const float* x, float* o) {
      sp.compute(x);
      ef::spectral_shape(sp.power(), sp.n_bins(), df, o);
    });
  }, py::arg("windows"), py::arg("fs"), py::arg("taper") = "hann",
     "(m, n) -> (m, 4): centroid (Hz), spread (Hz), flatness, spectral kurtosis.");

  m.def("envelope", [](const py::handle& windows, double fs, double band_lo, double band_hi) {
    auto w = as_windows(windows, "windows");
    ef::Envelope env(fs, w.n, ef::Taper::Rect, band_lo, band_hi);
    return per_window(w, w.n, [&](const float* x, float* o) {
      env.compute(x);
      std::copy(env.envelope(), env.envelope() + w.n, o);
    });
  }, py::arg("windows"), py::arg("fs"), py::arg("band_lo") = 0.0, py::arg("band_hi") = 0.0,
     "|analytic signal| of each (optionally band-passed) window, (m, n) -> (m, n).");

  m.def("envelope_spectrum", [](const py::handle& windows, double fs, double band_lo, double band_hi,
                                const std::string& taper) {
    auto w = as_windows(windows, "windows");
    ef::Envelope env(fs, w.n, ef::parse_taper(taper), band_lo, band_hi);
    const std::size_t nb = env.n_bins();
    return per_window(w, nb, [&](const float* x, float* o) {
      env.compute(x);
      std::copy(env.magnitude(), env.magnitude() + nb, o);
    });
  }, py::arg("windows"), py::arg("fs"), py::arg("band_lo") = 0.0, py::arg("band_hi") = 0.0,
     py::arg("taper") = "hann", "|rfft(w (e - mean e))| of the envelope e, (m, n) -> (m, n/2+1).");

  m.def("bearing_frequencies", [](double n_elements, double ball_diameter, double pitch_diameter,
                                  double contact_angle_deg, double shaft_hz) {
    const auto f = ef::bearing_frequencies(
        ef::BearingGeometry{n_elements, ball_diameter, pitch_diameter, contact_angle_deg}, shaft_hz);
    py::dict d;
    d["bpfo"] = f.bpfo;
    d["bpfi"] = f.bpfi;
    d["bsf"] = f.bsf;
    d["ftf"] = f.ftf;
    return d;
  }, py::arg("n_elements"), py::arg("ball_diameter"), py::arg("pitch_diameter"), py::arg("contact_angle_deg"),
     py::arg("shaft_hz"), "Bearing defect frequencies in Hz: dict with bpfo, bpfi, bsf, ftf.");

  py::class_<ef::FeatureExtractor>(m, "FeatureExtractor",
                                   "Per-window features of one channel from a block spec (docs/features.md).")
      .def(py::init([](double fs, std::size_t window, const py::handle& blocks, const std::string& taper) {
             return new ef::FeatureExtractor(extractor_config_from_python(fs, window, blocks, taper));
           }),
           py::arg("fs"), py::arg("window"), py::arg("blocks"), py::arg("taper") = "hann")
      .def_property_readonly("n_features", &ef::FeatureExtractor::n_features)
      .def_property_readonly("feature_names", &ef::FeatureExtractor::feature_names)
      .def_property_readonly("window", &ef::FeatureExtractor::window)
      .def_property_readonly("fs", [](const ef::FeatureExtractor& e) { return e.config().fs; })
      .def_property_readonly("taper", [](const ef::FeatureExtractor& e) { return ef::taper_name(e.config().taper); })
      .def_property_readonly("blocks", [](const ef::FeatureExtractor& e) {
        py::list out;
        for (const auto& b : e.config().blocks) out.append(block_to_dict(b));
        return out;
      }, "The blocks with every default filled in (same schema as the constructor).")
      .def("compute", [](ef::FeatureExtractor& e, const py::handle& windows) {
        auto w = as_windows(windows, "windows");
        if (w.n != e.window())
          throw py::value_error("windows: expected windows of " + std::to_string(e.window()) +
                                " samples (last axis), got " + std::to_string(w.n));
        const std::size_t k = e.n_features();
        auto out = out_array(w, k);
        const float* x = w.a.data();
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;  // then wait for the extractor's lock (its scratch)
          const ef::Lock held = e.lock();
          for (std::size_t i = 0; i < w.m; ++i) e.compute(held, x + i * w.n, o + i * k);
        }
        return out;
      }, py::arg("windows"), "(window,) -> (n_features,) or (m, window) -> (m, n_features), float32.")
      .def("__repr__", [](const ef::FeatureExtractor& e) {
        return "FeatureExtractor(fs=" + py::repr(py::float_(e.config().fs)).cast<std::string>() +
               ", window=" + std::to_string(e.window()) + ", n_features=" + std::to_string(e.n_features()) +
               ", taper='" + ef::taper_name(e.config().taper) + "')";
      });
}
