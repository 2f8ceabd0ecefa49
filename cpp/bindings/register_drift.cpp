// Bindings for the drift monitors and the adaptive threshold (edgefault/drift.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edgefault/drift.hpp"
#include "pyutil.hpp"

namespace py = pybind11;
using edgefault::AdaptiveThreshold;
using edgefault::AlarmState;
using edgefault::DriftMonitor;
using edgefault::Lock;
using efpy::lock_with_gil;
using edgefault::Mewma;
using edgefault::ScoreCusum;

namespace {
template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

DriftMonitor* make_monitor(float log_center, float log_scale, float clip, float floor, float score_k,
                           std::optional<float> score_h, std::optional<carray<float>> latent_mean,
                           std::optional<carray<float>> latent_projection, float latent_lambda,
                           std::optional<float> latent_limit, std::optional<float> threshold,
                           std::optional<float> clear_threshold, std::optional<float> adaptive_alpha, float adaptive_lo,
                           float adaptive_hi, std::optional<float> adaptive_center, std::uint32_t retrain_after,
                           float clear_ratio) {
  std::optional<ScoreCusum> sc;
  if (score_h) sc.emplace(log_center, log_scale, clip, score_k, *score_h, floor);
  std::optional<Mewma> mw;
  if (latent_limit || latent_mean || latent_projection) {
    if (!latent_limit || !latent_mean || !latent_projection)
      throw py::value_error("drift: latent_mean, latent_projection and latent_limit go together");
    const auto& mean = *latent_mean;
    const auto& proj = *latent_projection;
    if (mean.ndim() != 1) throw py::value_error("drift: latent_mean must be 1-D (dim,)");
    if (proj.ndim() != 2 || proj.shape(1) != mean.shape(0))
      throw py::value_error("drift: latent_projection must have shape (q, " + std::to_string(mean.shape(0)) + ")");
    mw.emplace(std::vector<float>(mean.data(), mean.data() + mean.size()),
               std::vector<float>(proj.data(), proj.data() + proj.size()), latent_lambda, *latent_limit);
  }
  std::optional<AdaptiveThreshold> ad;
  if (adaptive_alpha) {
    if (!threshold || !clear_threshold)
      throw py::value_error("drift: the adaptive threshold needs threshold and clear_threshold");
    ad.emplace(*threshold, *clear_threshold, adaptive_center ? *adaptive_center : log_center, log_scale, clip, floor,
               *adaptive_alpha, adaptive_lo, adaptive_hi);
  }
  return new DriftMonitor(std::move(sc), std::move(mw), std::move(ad), retrain_after, clear_ratio);
}

// The live statistics, read under the monitor's lock.
DriftMonitor::Status status(const DriftMonitor& d) {
  const Lock held = lock_with_gil(d.mutex());
  return d.status(held);
}
}  // namespace

void register_drift(py::module_& m) {
  m.attr("FLAG_DRIFT") = static_cast<int>(edgefault::kDrift);
  m.attr("FLAG_DRIFT_CHANGED") = static_cast<int>(edgefault::kDriftChanged);
  m.attr("FLAG_RETRAIN") = static_cast<int>(edgefault::kRetrain);
  m.attr("DRIFT_SCORE") = static_cast<int>(edgefault::kScoreDrift);
  m.attr("DRIFT_LATENT") = static_cast<int>(edgefault::kLatentDrift);
  py::class_<DriftMonitor>(
      m, "DriftMonitor",
      "Score-level CUSUM (on the winsorised robust-standardised log-score), latent MEWMA and adaptive "
      "threshold, stepped per window together with an AlarmState. Each part is enabled by its parameters: "
      "score_h (score CUSUM), latent_mean + latent_projection + latent_limit (MEWMA), adaptive_alpha "
      "(+ threshold, clear_threshold; its log-score centre is adaptive_center, default log_center) (adaptive "
      "threshold).")
      .def(py::init(&make_monitor), py::kw_only(), py::arg("log_center") = 0.0f, py::arg("log_scale") = 1.0f,
           py::arg("clip") = 4.0f, py::arg("floor") = 1e-30f, py::arg("score_k") = 0.5f,
           py::arg("score_h") = py::none(), py::arg("latent_mean") = py::none(),
           py::arg("latent_projection") = py::none(), py::arg("latent_lambda") = 0.05f,
           py::arg("latent_limit") = py::none(), py::arg("threshold") = py::none(),
           py::arg("clear_threshold") = py::none(), py::arg("adaptive_alpha") = py::none(),
           py::arg("adaptive_lo") = 0.5f, py::arg("adaptive_hi") = 2.0f, py::arg("adaptive_center") = py::none(),
           py::arg("retrain_after") = 100u,
           py::arg("clear_ratio") = 0.5f)
      .def_property_readonly("has_score", &DriftMonitor::has_score)
      .def_property_readonly("has_latent", &DriftMonitor::has_latent)
      .def_property_readonly("has_adaptive", &DriftMonitor::has_adaptive)
      .def_property_readonly("latent_dim", &DriftMonitor::latent_dim)
      .def_property_readonly("latent_q", &DriftMonitor::latent_q)
      .def_property_readonly("score_limit",
                             [](const DriftMonitor& d) -> std::optional<float> {
                               if (d.has_score()) return d.score_limit();
                               return std::nullopt;
                             })
      .def_property_readonly("latent_limit",
                             [](const DriftMonitor& d) -> std::optional<float> {
                               if (d.has_latent()) return d.latent_limit();
                               return std::nullopt;
                             })
      .def_property_readonly("score_stat", [](const DriftMonitor& d) { return status(d).score_stat; })
      .def_property_readonly("latent_stat", [](const DriftMonitor& d) { return status(d).latent_stat; })
      .def_property_readonly("adaptive_threshold",
                             [](const DriftMonitor& d) -> std::optional<float> {
                               if (d.has_adaptive()) return status(d).adaptive_threshold;
                               return std::nullopt;
                             })
      .def_property_readonly("retrain_after", &DriftMonitor::retrain_after)
      .def_property_readonly("drift", [](const DriftMonitor& d) { return status(d).monitors != 0; })
      .def_property_readonly("monitors", [](const DriftMonitor& d) { return status(d).monitors; })
      .def(
          "step",
          [](DriftMonitor& d, AlarmState& alarm, const carray<float>& scores,
             const py::array_t<bool, py::array::c_style | py::array::forcecast>& valid,
             const std::optional<carray<float>>& latent) {
            if (scores.ndim() != 1 || valid.ndim() != 1 || scores.shape(0) != valid.shape(0))
              throw py::value_error("drift step: scores and valid must be 1-D of equal length");
            const auto n = scores.shape(0);
            const float* lp = nullptr;
            const std::size_t ld = d.latent_dim();
            if (latent && ld != 0) {
              if (latent->ndim() != 2 || latent->shape(0) != n || static_cast<std::size_t>(latent->shape(1)) != ld)
                throw py::value_error("drift step: latent must have shape (" + std::to_string(n) + ", " +
                                      std::to_string(ld) + ")");
              lp = latent->data();
            }
            py::array_t<std::uint8_t> flags(n);
            py::array_t<double> stats(std::vector<py::ssize_t>{n, 4});
            auto* fp = flags.mutable_data();
            auto* sp = stats.mutable_data();
            const float* s = scores.data();
            const bool* v = valid.data();
            {
              py::gil_scoped_release release;  // then wait for the monitor's and the alarm's locks
              const Lock held = d.lock();
              const Lock alarm_held = alarm.lock();
              for (py::ssize_t i = 0; i < n; ++i) {
                const auto st = d.step(held, alarm, alarm_held, s[i], lp ? lp + static_cast<std::size_t>(i) * ld : nullptr,
                                       v[i]);
                fp[i] = st.bits;
                sp[4 * i] = st.threshold;
                sp[4 * i + 1] = st.score_stat;
                sp[4 * i + 2] = st.latent_stat;
                sp[4 * i + 3] = st.monitors;
              }
            }
            return py::make_tuple(flags, stats);
          },
          py::arg("alarm"), py::arg("scores"), py::arg("valid"), py::arg("latent") = py::none(),
          "Step alarm + monitors over a batch of windows. Returns (flags (m,) uint8: anomaly / alarm / "
          "alarm-changed / drift / drift-changed / retrain bits, stats (m, 4) float64: threshold used, score "
          "CUSUM, latent MEWMA, signalling monitors (DRIFT_SCORE | DRIFT_LATENT)).")
      .def("reset",
           [](DriftMonitor& d) {
             const Lock held = lock_with_gil(d.mutex());
             d.reset(held);
           })
      .def("get_state",
           [](const DriftMonitor& d) {
             const auto st = status(d);
             py::array_t<double> e(static_cast<py::ssize_t>(st.ewma.size()));
             std::copy(st.ewma.begin(), st.ewma.end(), e.mutable_data());
             return py::make_tuple(static_cast<int>(st.monitors), st.persist, st.score_stat, e, st.adaptive_level);
           },
           "(monitors, persist, score CUSUM, MEWMA vector (q,), adaptive level)")
      .def(
          "set_state",
          [](DriftMonitor& d, int monitors, std::uint64_t persist, float cusum, const carray<double>& ewma, float level) {
            if (monitors < 0 || monitors > 3) throw py::value_error("drift state: monitors must be in 0..3");
            if (ewma.ndim() != 1) throw py::value_error("drift state: MEWMA vector must be 1-D");
            const Lock held = lock_with_gil(d.mutex());
            d.restore(held, static_cast<std::uint8_t>(monitors), persist, cusum, ewma.data(),
                      static_cast<std::size_t>(ewma.shape(0)), level);
          },
          py::arg("monitors"), py::arg("persist"), py::arg("cusum"), py::arg("ewma"), py::arg("level"));
}
