// Bindings for the streaming path: Framer-backed Pipeline (with the sensor-health checks),
// GaussianScorer, AlarmState and the fused ScoredStream. Every object's mutable state is read and
// written under its own lock (edgefault/lock.hpp), taken without waiting while holding the GIL
// (pyutil.hpp), so concurrent calls from Python threads serialise.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "edgefault/drift.hpp"
#include "edgefault/health.hpp"
#include "edgefault/pipeline.hpp"
#include "edgefault/scoring.hpp"
#include "edgefault/stream.hpp"
#include "pyutil.hpp"

namespace py = pybind11;
using edgefault::AlarmState;
using edgefault::FeatureExtractor;
using edgefault::GaussianScorer;
using edgefault::HealthConfig;
using edgefault::Lock;
using edgefault::Pipeline;
using edgefault::PipelineOutput;
using efpy::lock_with_gil;

namespace {

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Frames view of a (n,) or (n, c) array, checked against the pipeline's channel count.
std::size_t checked_frames(const py::array& a, std::size_t n_channels) {
  if (a.ndim() == 1) {
    if (n_channels != 1)
      throw py::value_error("chunk has shape (" + std::to_string(a.shape(0)) + ",) but the pipeline expects " +
                            std::to_string(n_channels) + " channels: pass shape (n_samples, " +
                            std::to_string(n_channels) + ")");
    return static_cast<std::size_t>(a.shape(0));
  }
  if (a.ndim() == 2) {
    if (static_cast<std::size_t>(a.shape(1)) != n_channels)
      throw py::value_error("chunk has " + std::to_string(a.shape(1)) + " channels (shape (" +
                            std::to_string(a.shape(0)) + ", " + std::to_string(a.shape(1)) +
                            ")), expected " + std::to_string(n_channels));
    return static_cast<std::size_t>(a.shape(0));
  }
  throw py::value_error("chunk must be 1-D (n_samples,) or 2-D (n_samples, n_channels), got " +
                        std::to_string(a.ndim()) + "-D");
}

bool aligned_for(const void* p, std::size_t align) { return reinterpret_cast<std::uintptr_t>(p) % align == 0; }

// The chunk as an aligned C-contiguous native array: borrowed when it already is one (the common
// case, and cheaper than ensure()), converted otherwise. numpy allows misaligned arrays (a view
// at an odd byte offset of a buffer) and ensure() keeps them misaligned; those are copied, since
// the kernels load whole T values.
template <class T>
carray<T> as_carray(const py::array& chunk) {
  if (carray<T>::check_(chunk) && aligned_for(chunk.data(), alignof(T)))
    return py::reinterpret_borrow<carray<T>>(chunk);
  carray<T> a = carray<T>::ensure(chunk);
  if (!a || aligned_for(a.data(), alignof(T))) return a;
  carray<T> copy(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  std::memcpy(copy.mutable_data(), a.data(), static_cast<std::size_t>(a.nbytes()));
  return copy;
}

// Calls fn(carray<T>) for the chunk's sample type; float32, float64, int16 and int32 only.
template <class Fn>
py::object with_samples(const py::array& chunk, Fn&& fn) {
  // Compare kind and size, not dtype identity: equal dtypes from pickles or other byte orders
  // are distinct objects (ensure() converts byte order).
  const auto dt = chunk.dtype();
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return fn(as_carray<float>(chunk));
  if (kind == 'f' && size == 8) return fn(as_carray<double>(chunk));
  if (kind == 'i' && size == 2) return fn(as_carray<std::int16_t>(chunk));
  if (kind == 'i' && size == 4) return fn(as_carray<std::int32_t>(chunk));
  throw py::type_error("chunk dtype " + std::string(py::str(dt)) +
                       " is not supported: use float32, float64, int16 or int32");
}

// ------------------------------------------------------------------ health section <-> HealthConfig

constexpr const char* kCheckNames[4] = {"flat", "clip", "dropout", "dc_jump"};
constexpr std::uint8_t kCheckBits[4] = {edgefault::kHealthFlat, edgefault::kHealthClip, edgefault::kHealthDropout,
                                        edgefault::kHealthDcJump};

// The shortest decimal that reads back as the same float32, so 0.05f shows as 0.05.
double short_float(float v) {
  char buf[40];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}

// The "health" section of a feature spec (schema: docs/features.md); None = the defaults. Types
// and keys are checked here, ranges by the core (std::invalid_argument -> ValueError).
HealthConfig health_from_python(const py::handle& h) {
  using namespace efpy;
  HealthConfig c;
  if (!h || h.is_none()) return c;
  if (!py::isinstance<py::dict>(h))
    throw py::value_error("health: expected a dict of sensor-health settings, got " + pyrepr(h));
  auto d = py::reinterpret_borrow<py::dict>(h);
  check_keys(d,
             {"checks", "flat_abs", "flat_rel", "healthy_std", "clip_eps", "clip_fraction", "clip_ratio", "clip_levels",
              "rails", "rail_fraction", "dropout_run", "dc_k", "dc_own"},
             "health");
  if (auto v = opt(d, "checks")) {
    if (!(py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)))
      throw py::value_error("health.checks: expected a list of check names (flat, clip, dropout, dc_jump), got " +
                            pyrepr(v));
    c.checks = 0;
    std::size_t i = 0;
    for (auto item : v) {
      const std::string where = "health.checks[" + std::to_string(i++) + "]";
      const std::string name = get_str(item, where);
      std::uint8_t bit = 0;
      for (int k = 0; k < 4; ++k)
        if (name == kCheckNames[k]) bit = kCheckBits[k];
      if (bit == 0) throw py::value_error(where + ": unknown check '" + name + "'; expected flat, clip, dropout or dc_jump");
      if (c.checks & bit) throw py::value_error(where + ": check '" + name + "' listed twice");
      c.checks = static_cast<std::uint8_t>(c.checks | bit);
    }
  }
  auto number = [&](const char* key, float& field) {
    if (auto v = opt(d, key)) field = static_cast<float>(get_number(v, std::string("health.") + key));
  };
  number("flat_abs", c.flat_abs);
  number("flat_rel", c.flat_rel);
  number("clip_eps", c.clip_eps);
  number("clip_fraction", c.clip_fraction);
  number("clip_ratio", c.clip_ratio);
  number("clip_levels", c.clip_levels);
  number("rail_fraction", c.rail_fraction);
  number("dc_k", c.dc_k);
  number("dc_own", c.dc_own);
  if (auto v = opt(d, "dropout_run")) c.dropout_run = get_count(v, "health.dropout_run", 1);
  if (auto v = opt(d, "rails")) {
    if (!(py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) || py::len(v) != 2)
      throw py::value_error("health.rails: expected [lo, hi] in input units after the scale, got " + pyrepr(v));
    auto seq = py::reinterpret_borrow<py::sequence>(v);
    c.rails = true;
    c.rail_lo = static_cast<float>(get_number(seq[0], "health.rails[0]"));
    c.rail_hi = static_cast<float>(get_number(seq[1], "health.rails[1]"));
  }
  if (auto v = opt(d, "healthy_std")) {
    if (!(py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)))
      throw py::value_error("health.healthy_std: expected a list with one std per channel, got " + pyrepr(v));
    std::size_t i = 0;
    for (auto item : v)
      c.healthy_std.push_back(static_cast<float>(get_number(item, "health.healthy_std[" + std::to_string(i++) + "]")));
  }
  return c;
}

py::dict health_to_dict(const HealthConfig& c) {
  py::dict d;
  py::list checks;
  for (int k = 0; k < 4; ++k)
    if (c.checks & kCheckBits[k]) checks.append(kCheckNames[k]);
  d["checks"] = checks;
  d["flat_abs"] = short_float(c.flat_abs);
  d["flat_rel"] = short_float(c.flat_rel);
  if (c.healthy_std.empty()) {
    d["healthy_std"] = py::none();
  } else {
    py::list hs;
    for (float v : c.healthy_std) hs.append(short_float(v));
    d["healthy_std"] = hs;
  }
  d["clip_eps"] = short_float(c.clip_eps);
  d["clip_fraction"] = short_float(c.clip_fraction);
  d["clip_ratio"] = short_float(c.clip_ratio);
  d["clip_levels"] = short_float(c.clip_levels);
  if (c.rails) {
    py::list rails;
    rails.append(short_float(c.rail_lo));
    rails.append(short_float(c.rail_hi));
    d["rails"] = rails;
  } else {
    d["rails"] = py::none();
  }
  d["rail_fraction"] = short_float(c.rail_fraction);
  d["dropout_run"] = c.dropout_run;
  d["dc_k"] = short_float(c.dc_k);
  d["dc_own"] = short_float(c.dc_own);
  return d;
}

// ------------------------------------------------------------------ pushes

// Binding-side handle on the fused stream (the Python Runtime keeps the three objects too, for
// state save / restore).
struct PyScoredStream {
  PyScoredStream(Pipeline& p, GaussianScorer& s, AlarmState& a, edgefault::DriftMonitor* d) : stream(p, s, a, d) {}
  edgefault::ScoredStream stream;
  // Per-window buffers, used under the stream's lock; grow to the largest chunk seen, then reused.
  std::vector<std::uint64_t> end;
  std::vector<std::uint8_t> flags;
  std::vector<float> scores;
  std::vector<float> drift_rows;
};

py::array_t<std::uint8_t> health_array(std::size_t m, std::size_t n_channels) {
  return py::array_t<std::uint8_t>(
      std::vector<py::ssize_t>{static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(n_channels)});
}

// Where a fused push writes its windows: meta rows (cols = 3, or 7 with drift), contrib rows
// (feature_dim) and health rows (n_channels, or null), each with room for `capacity` windows.
struct ScoredTarget {
  double* meta = nullptr;
  float* contrib = nullptr;
  std::uint8_t* health = nullptr;
  std::size_t capacity = 0;
};

// Pushes under the stream's locks (held from the sizing of the output to the end of the push) and
// returns the number of windows written; `target(m)` gives the output for m windows (allocating or
// checking a caller's buffer) while nothing is accepted yet, and may throw.
template <class T, class Target>
std::size_t scored_push_into(PyScoredStream& st, const carray<T>& arr, float scale, Target&& target) {
  edgefault::ScoredStream& s = st.stream;
  Pipeline& p = s.pipeline();
  const std::size_t n = checked_frames(arr, p.n_channels());
  const T* data = arr.data();
  edgefault::ScoredStream::Locks held;
  held.stream = lock_with_gil(s.mutex());
  held.pipeline = lock_with_gil(p.mutex());
  const std::size_t m = p.max_windows_for(held.pipeline, n);
  if (m == 0) {  // just buffering (no window to score): cheaper to keep the GIL than to release it
    p.push(held.pipeline, data, n, scale, PipelineOutput{});
    return 0;
  }
  held.scorer = lock_with_gil(s.scorer().mutex());
  if (s.drift() != nullptr) held.drift = lock_with_gil(s.drift()->mutex());
  held.alarm = lock_with_gil(s.alarm().mutex());
  const bool drift = s.drift() != nullptr;
  const std::size_t cols = drift ? 7 : 3;
  const ScoredTarget t = target(m, cols);
  if (st.end.size() < m) {
    st.end.resize(m);
    st.flags.resize(m);
    st.scores.resize(m);
  }
  if (drift && st.drift_rows.size() < 4 * m) st.drift_rows.resize(4 * m);
  edgefault::ScoredOutput out;
  out.end_frame = st.end.data();
  out.flags = st.flags.data();
  out.scores = st.scores.data();
  out.drift = drift ? st.drift_rows.data() : nullptr;
  out.contrib = t.contrib;
  out.health = t.health;
  out.max_windows = m;
  double* mp = t.meta;
  std::size_t done = 0;
  {
    py::gil_scoped_release release;
    done = s.push(held, data, n, scale, out);
    for (std::size_t i = 0; i < done; ++i) {
      double* r = mp + cols * i;
      r[0] = static_cast<double>(st.end[i]);
      r[1] = st.flags[i];
      r[2] = st.scores[i];
      if (drift) {
        const float* dr = &st.drift_rows[4 * i];
        for (std::size_t j = 0; j < 4; ++j) r[3 + j] = dr[j];
      }
    }
  }
  return done;
}

// Returns None when no window completes; else (meta, contrib (m, feature_dim) float32[, health
// (m, n_channels) uint8]), meta float64 (m, 3) = end_frame, flags, score or, with drift monitors,
// (m, 7) = those plus threshold, score drift stat, latent drift stat, signalling monitors (bits).
template <class T>
py::object scored_push_typed(PyScoredStream& st, const carray<T>& arr, float scale, bool want_health) {
  py::array_t<double> meta;
  py::array_t<float> contrib;
  py::array_t<std::uint8_t> health;
  const std::size_t nc = st.stream.pipeline().n_channels();
  const std::size_t dim = st.stream.pipeline().feature_dim();
  const std::size_t m = scored_push_into(st, arr, scale, [&](std::size_t mw, std::size_t cols) {
    const auto mm = static_cast<py::ssize_t>(mw);
    meta = py::array_t<double>(std::vector<py::ssize_t>{mm, static_cast<py::ssize_t>(cols)});
    contrib = py::array_t<float>(std::vector<py::ssize_t>{mm, static_cast<py::ssize_t>(dim)});
    health = health_array(want_health ? mw : 0, nc);
    return ScoredTarget{meta.mutable_data(), contrib.mutable_data(), want_health ? health.mutable_data() : nullptr,
                        mw};
  });
  if (m == 0) return py::none();
  if (static_cast<py::ssize_t>(m) < meta.shape(0)) {  // the core wrote fewer windows than it sized for
    const py::slice rows(0, static_cast<py::ssize_t>(m), 1);
    meta = meta[rows].cast<py::array_t<double>>();
    contrib = contrib[rows].cast<py::array_t<float>>();
    if (want_health) health = health[rows].cast<py::array_t<std::uint8_t>>();
  }
  if (want_health) return py::make_tuple(meta, contrib, health);
  return py::make_tuple(meta, contrib);
}

// A caller's output array: C-contiguous, writable, of dtype T, shape (rows >= 1, cols).
template <class T>
T* out_rows(py::array a, const char* name, std::size_t cols, std::size_t& rows) {
  if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 2 || !(a.flags() & py::array::c_style) ||
      !a.writeable() || static_cast<std::size_t>(a.shape(1)) != cols || !aligned_for(a.data(), alignof(T)))
    throw py::value_error(std::string("push_into: ") + name + " must be a writable, aligned C-contiguous " +
                          py::str(py::dtype::of<T>()).cast<std::string>() + " array of shape (capacity, " +
                          std::to_string(cols) + ")");
  rows = static_cast<std::size_t>(a.shape(0));
  return static_cast<T*>(a.mutable_data());
}

template <class T>
py::tuple push_typed(Pipeline& p, const carray<T>& a, float scale, bool features, bool raw, bool health) {
  const std::size_t n = checked_frames(a, p.n_channels());
  const Lock held = lock_with_gil(p.mutex());  // sizing and push in one critical section
  const std::size_t m = p.max_windows_for(held, n);
  const std::size_t d = p.feature_dim();
  py::array_t<float> feat(std::vector<py::ssize_t>{static_cast<py::ssize_t>(features ? m : 0),
                                                   static_cast<py::ssize_t>(d)});
  py::array_t<float> rawbuf(std::vector<py::ssize_t>{static_cast<py::ssize_t>(raw ? m : 0),
                                                     static_cast<py::ssize_t>(p.n_channels()),
                                                     static_cast<py::ssize_t>(p.window())});
  py::array_t<std::uint64_t> end(static_cast<py::ssize_t>(m));
  py::array_t<bool> finite(static_cast<py::ssize_t>(m));
  py::array_t<std::uint8_t> hbuf = health_array(health ? m : 0, p.n_channels());
  PipelineOutput out;
  out.features = features ? feat.mutable_data() : nullptr;
  out.raw = raw ? rawbuf.mutable_data() : nullptr;
  out.end_frame = end.mutable_data();
  out.finite = reinterpret_cast<std::uint8_t*>(finite.mutable_data());
  out.health = health ? hbuf.mutable_data() : nullptr;
  out.max_windows = m;
  const T* data = a.data();
  if (m == 0) {
    p.push(held, data, n, scale, out);  // just buffering: keep the GIL
  } else {
    py::gil_scoped_release release;
    p.push(held, data, n, scale, out);
  }
  if (health) return py::make_tuple(feat, end, finite, rawbuf, hbuf);
  return py::make_tuple(feat, end, finite, rawbuf);
}

}  // namespace

void register_stream(py::module_& m) {
  m.attr("FLAG_HEALTH_FLAT") = static_cast<int>(edgefault::kHealthFlat);
  m.attr("FLAG_HEALTH_CLIP") = static_cast<int>(edgefault::kHealthClip);
  m.attr("FLAG_HEALTH_DROPOUT") = static_cast<int>(edgefault::kHealthDropout);
  m.attr("FLAG_HEALTH_DC_JUMP") = static_cast<int>(edgefault::kHealthDcJump);
  py::class_<Pipeline>(m, "Pipeline",
                       "Streaming framer + feature extractor over n_channels interleaved channels, with per-channel "
                       "sensor-health checks on every window: FLAG_HEALTH_FLAT (window std <= flat_abs, or < "
                       "flat_rel x healthy_std), FLAG_HEALTH_CLIP (a plateau of samples at the window's extreme "
                       "standing out from the levels below it, or samples at the configured rails), "
                       "FLAG_HEALTH_DROPOUT (a run of >= dropout_run exact zeros or NaN), FLAG_HEALTH_DC_JUMP (the "
                       "mean stepped by > dc_k reference stds from a window ending a hop before this one starts, "
                       "and not as a ramp would). Definitions: docs/features.md, 'Sensor health'. Calls from "
                       "several threads serialise on the pipeline's lock.")
      .def(py::init([](std::size_t n_channels, std::size_t hop, const FeatureExtractor& extractor,
                       const py::object& health) {
             return new Pipeline(n_channels, hop, extractor.config(), health_from_python(health));
           }),
           py::arg("n_channels"), py::arg("hop"), py::arg("extractor"), py::arg("health") = py::none(),
           "health: the feature spec's 'health' section, a dict with any of checks (list of 'flat', 'clip', "
           "'dropout', 'dc_jump'; [] = none), flat_abs, flat_rel, healthy_std (one per channel), clip_eps, "
           "clip_fraction, clip_ratio, clip_levels, rails ([lo, hi] after the scale), rail_fraction, dropout_run, "
           "dc_k, dc_own; None or missing keys = the conservative defaults (the .health property lists them). "
           "ValueError naming the key for a bad one.")
      .def_property_readonly("n_channels", &Pipeline::n_channels)
      .def_property_readonly("window", &Pipeline::window)
      .def_property_readonly("hop", &Pipeline::hop)
      .def_property_readonly("feature_dim", &Pipeline::feature_dim)
      .def_property_readonly("health", [](const Pipeline& p) { return health_to_dict(p.health_config()); },
                             "The sensor-health settings with every default filled in (same schema as the "
                             "constructor's health).")
      .def_property_readonly("frames_seen",
                             [](const Pipeline& p) {
                               const Lock held = lock_with_gil(p.mutex());
                               return p.frames_seen(held);
                             })
      .def(
          "max_windows_for",
          [](const Pipeline& p, std::size_t n_frames) {
            const Lock held = lock_with_gil(p.mutex());
            return p.max_windows_for(held, n_frames);
          },
          py::arg("n_frames"))
      .def(
          "push",
          [](Pipeline& p, const py::array& chunk, float scale, bool features, bool raw, bool health) {
            return with_samples(chunk, [&](const auto& a) -> py::object {
              return push_typed(p, a, scale, features, raw, health);
            });
          },
          py::arg("chunk"), py::arg("scale") = 1.0f, py::arg("features") = true, py::arg("raw") = false,
          py::kw_only(), py::arg("health") = false,
          "Push samples (n,) or (n, n_channels), float32/float64/int16/int32, each multiplied by scale. Returns "
          "(features (m, feature_dim) float32, end_frame (m,) uint64, finite (m,) bool, raw (m, n_channels, window) "
          "float32) for the m windows completed; features / raw have 0 rows unless asked for. With health=True a "
          "fifth item: health (m, n_channels) uint8, per window and channel the FLAG_HEALTH_* bits of the checks "
          "that failed (0 = healthy). The checks run on every window either way; this path does not exclude "
          "unhealthy windows from anything (the caller decides).")
      .def("reset",
           [](Pipeline& p) {
             const Lock held = lock_with_gil(p.mutex());
             p.reset(held);
           },
           "Forget buffered samples and the health checks' previous window.")
      .def("get_state",
           [](const Pipeline& p) {
             const Lock held = lock_with_gil(p.mutex());
             py::array_t<float> tail(std::vector<py::ssize_t>{static_cast<py::ssize_t>(p.tail_frames(held)),
                                                              static_cast<py::ssize_t>(p.n_channels())});
             p.export_tail(held, tail.mutable_data());
             return py::make_tuple(tail, p.frames_seen(held));
           })
      .def(
          "set_state",
          [](Pipeline& p, const carray<float>& tail, std::uint64_t frames_seen) {
            if (tail.ndim() != 2 || static_cast<std::size_t>(tail.shape(1)) != p.n_channels())
              throw py::value_error("pipeline state: tail must have shape (n, " + std::to_string(p.n_channels()) + ")");
            const Lock held = lock_with_gil(p.mutex());
            p.set_state(held, tail.data(), static_cast<std::size_t>(tail.shape(0)), frames_seen);
          },
          py::arg("tail"), py::arg("frames_seen"),
          "Restore a get_state() tail; the DC-jump health check restarts (no previous window).");

  m.attr("FLAG_FINITE") = static_cast<int>(edgefault::kFinite);
  m.attr("FLAG_ANOMALY") = static_cast<int>(edgefault::kAnomaly);
  m.attr("FLAG_ALARM") = static_cast<int>(edgefault::kAlarm);
  m.attr("FLAG_ALARM_CHANGED") = static_cast<int>(edgefault::kAlarmChanged);
  m.attr("FLAG_SENSOR_FAULT") = static_cast<int>(edgefault::kSensorFault);
  py::class_<GaussianScorer>(m, "GaussianScorer", "Squared Mahalanobis distance with per-feature contributions.")
      .def(py::init([](const carray<float>& mean, const carray<float>& scale, const carray<float>& precision) {
             if (mean.ndim() != 1 || scale.ndim() != 1 || precision.ndim() != 2)
               throw py::value_error("gaussian model: mean and scale must be 1-D, precision 2-D");
             std::vector<float> mu(mean.data(), mean.data() + mean.size());
             std::vector<float> sc(scale.data(), scale.data() + scale.size());
             std::vector<float> pr(precision.data(), precision.data() + precision.size());
             return new GaussianScorer(std::move(mu), std::move(sc), std::move(pr));
           }),
           py::arg("mean"), py::arg("scale"), py::arg("precision"))
      .def_property_readonly("dim", &GaussianScorer::dim)
      .def(
          "score",
          [](GaussianScorer& s, const carray<float>& x, bool contrib) {
            if (x.ndim() != 2 || static_cast<std::size_t>(x.shape(1)) != s.dim())
              throw py::value_error("features must have shape (n, " + std::to_string(s.dim()) + ")");
            const auto n = x.shape(0);
            py::array_t<float> scores(n);
            py::array_t<float> c(std::vector<py::ssize_t>{contrib ? n : 0, static_cast<py::ssize_t>(s.dim())});
            float* cp = contrib ? c.mutable_data() : nullptr;
            float* sp = scores.mutable_data();
            const float* xp = x.data();
            {
              py::gil_scoped_release release;  // then wait for the scorer's lock (its scratch row)
              s.score(xp, static_cast<std::size_t>(n), sp, cp);
            }
            return py::make_tuple(scores, c);
          },
          py::arg("features"), py::arg("contrib") = true);

  py::class_<AlarmState>(m, "AlarmState", "k-of-n debounced alarm with hysteresis.")
      .def(py::init<float, float, unsigned, unsigned>(), py::arg("threshold"), py::arg("clear_threshold"),
           py::arg("k"), py::arg("n"))
      .def_property_readonly("alarm",
                             [](const AlarmState& a) {
                               const Lock held = lock_with_gil(a.mutex());
                               return a.state(held).alarm;
                             })
      .def_property_readonly("threshold",
                             [](const AlarmState& a) {
                               const Lock held = lock_with_gil(a.mutex());
                               return a.state(held).threshold;
                             })
      .def_property_readonly("clear_threshold",
                             [](const AlarmState& a) {
                               const Lock held = lock_with_gil(a.mutex());
                               return a.state(held).clear_threshold;
                             })
      .def_property_readonly("k", &AlarmState::k)
      .def_property_readonly("n", &AlarmState::n)
      .def(
          "set_threshold",
          [](AlarmState& a, float threshold, float clear_threshold) {
            const Lock held = lock_with_gil(a.mutex());
            a.set_threshold(held, threshold, clear_threshold);
          },
          py::arg("threshold"), py::arg("clear_threshold"))
      .def("reset",
           [](AlarmState& a) {
             const Lock held = lock_with_gil(a.mutex());
             a.reset(held);
           })
      .def(
          "update",
          [](AlarmState& a, const carray<float>& scores, const py::array_t<bool, py::array::c_style | py::array::forcecast>& valid) {
            if (scores.ndim() != 1 || valid.ndim() != 1 || scores.shape(0) != valid.shape(0))
              throw py::value_error("alarm update: scores and valid must be 1-D of equal length");
            const auto n = scores.shape(0);
            py::array_t<bool> anomaly(n), alarm(n), changed(n);
            auto an = anomaly.mutable_unchecked<1>();
            auto al = alarm.mutable_unchecked<1>();
            auto ch = changed.mutable_unchecked<1>();
            auto s = scores.unchecked<1>();
            auto v = valid.unchecked<1>();
            const Lock held = lock_with_gil(a.mutex());  // the whole batch in one critical section
            for (py::ssize_t i = 0; i < n; ++i) {
              const auto st = a.update(held, s(i), v(i));
              an(i) = st.anomaly;
              al(i) = st.alarm;
              ch(i) = st.changed;
            }
            return py::make_tuple(anomaly, alarm, changed);
          },
          py::arg("scores"), py::arg("valid"))
      .def("get_state",
           [](const AlarmState& a) {
             const Lock held = lock_with_gil(a.mutex());
             const auto s = a.state(held);
             return py::make_tuple(s.above, s.above_clear, s.n_valid, s.alarm);
           })
      .def(
          "set_state",
          [](AlarmState& a, std::uint64_t above, std::uint64_t above_clear, std::uint64_t n_valid, bool alarm) {
            const Lock held = lock_with_gil(a.mutex());
            a.restore(held, above, above_clear, n_valid, alarm);
          },
          py::arg("above"), py::arg("above_clear"), py::arg("n_valid"), py::arg("alarm"));

  // After the classes, so the signature names their Python types.
  py::class_<PyScoredStream>(m, "ScoredStream",
                             "Fused push for core-scored models: framing, sensor health, features, score, "
                             "contributions and alarm state (and drift) in one call. Holds references to the objects; "
                             "a push holds the locks of all of them, so concurrent pushes serialise.")
      .def(py::init([](Pipeline& p, GaussianScorer& s, AlarmState& a, const py::object& drift) {
             if (s.dim() != p.feature_dim())
               throw py::value_error("scorer expects " + std::to_string(s.dim()) + " features, pipeline gives " +
                                     std::to_string(p.feature_dim()));
             edgefault::DriftMonitor* dm = drift.is_none() ? nullptr : drift.cast<edgefault::DriftMonitor*>();
             if (dm != nullptr && dm->latent_dim() != 0 && dm->latent_dim() != p.feature_dim())
               throw py::value_error("drift: latent monitor expects " + std::to_string(dm->latent_dim()) +
                                     " values, the pipeline gives " + std::to_string(p.feature_dim()) + " features");
             return new PyScoredStream(p, s, a, dm);
           }),
           py::arg("pipeline"), py::arg("scorer"), py::arg("alarm"), py::arg("drift") = py::none(),
           py::keep_alive<1, 2>(), py::keep_alive<1, 3>(), py::keep_alive<1, 4>(), py::keep_alive<1, 5>(),
           "drift: an optional DriftMonitor; push then returns meta (m, 7) = end_frame, flags, score, "
           "threshold, score drift stat, latent drift stat, signalling monitors")
      .def(
          "push",
          [](PyScoredStream& st, const py::array& chunk, float scale, bool health) {
            return with_samples(chunk, [&](const auto& arr) -> py::object {
              return scored_push_typed(st, arr, scale, health);
            });
          },
          py::arg("chunk"), py::arg("scale") = 1.0f, py::arg("health") = false,
          "None when no window completes, else (meta (m, 3) float64 = end_frame, flags (FLAG_* bits), score; "
          "contrib (m, feature_dim) float32), meta (m, 7) with drift. With health=True a third item: health "
          "(m, n_channels) uint8, the FLAG_HEALTH_* bits per window and channel (0 = healthy). A window with any "
          "health bit set has FLAG_SENSOR_FAULT in flags (FLAG_FINITE as its samples were), score and contrib NaN, "
          "and was not folded into the alarm, drift monitors or adaptive threshold (like a non-finite window).")
      .def(
          "push_into",
          [](PyScoredStream& st, const py::array& chunk, float scale, const py::array& meta, const py::array& contrib,
             const py::object& health) {
            const std::size_t nc = st.stream.pipeline().n_channels();
            const std::size_t dim = st.stream.pipeline().feature_dim();
            const std::size_t cols = st.stream.drift() != nullptr ? 7 : 3;
            std::size_t cap_meta = 0, cap_contrib = 0, cap_health = 0;
            ScoredTarget t;
            t.meta = out_rows<double>(meta, "meta", cols, cap_meta);
            t.contrib = out_rows<float>(contrib, "contrib", dim, cap_contrib);
            t.capacity = std::min(cap_meta, cap_contrib);
            if (!health.is_none()) {
              t.health = out_rows<std::uint8_t>(health.cast<py::array>(), "health", nc, cap_health);
              t.capacity = std::min(t.capacity, cap_health);
            }
            return with_samples(chunk, [&](const auto& arr) -> py::object {
              const std::size_t written = scored_push_into(st, arr, scale, [&](std::size_t mw, std::size_t) {
                if (mw > t.capacity)
                  throw py::value_error("push_into: the chunk completes up to " + std::to_string(mw) +
                                        " windows but the output holds " + std::to_string(t.capacity) +
                                        "; nothing was accepted: push a shorter chunk or use a larger output");
                return t;
              });
              return py::int_(written);
            });
          },
          py::arg("chunk"), py::arg("scale"), py::arg("meta"), py::arg("contrib"), py::arg("health") = py::none(),
          "Like push, into caller-owned arrays (no allocation): meta (capacity, 3 or 7) float64, contrib "
          "(capacity, feature_dim) float32, health (capacity, n_channels) uint8 or None. Returns the number of "
          "windows written (rows 0..m-1). ValueError, with nothing accepted, when the chunk can complete more "
          "windows than capacity.");
}
