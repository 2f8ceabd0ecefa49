// The one Python module of the core. Each area registers itself from its own file.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_fft(py::module_& m);
void register_features(py::module_& m);
void register_stream(py::module_& m);
void register_sparse(py::module_& m);
void register_drift(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() =
      "edgefault C++ core: framer, FFT, feature kernels, sensor-health checks, scoring and alarm state.\n\n"
      "Threads: every stateful object (FeatureExtractor, Pipeline, GaussianScorer, AlarmState, DriftMonitor, "
      "ScoredStream, OmpCoder, TreeLassoCoder) holds its own lock across each call that touches its state, "
      "getters and get_state/set_state included, so calls on one object from several threads serialise and "
      "give what a serial run in the order admitted gives (ScoredStream.push holds the locks of all its "
      "objects). Waiting for a lock releases the GIL.\n\n"
      "Window flags (ScoredStream meta column 1): FLAG_FINITE, FLAG_ANOMALY, FLAG_ALARM, FLAG_ALARM_CHANGED, "
      "FLAG_DRIFT, FLAG_DRIFT_CHANGED, FLAG_RETRAIN, FLAG_SENSOR_FAULT (a channel failed a health check: the "
      "window was not scored).\n"
      "Health bits (one uint8 per window and channel, push(..., health=True)): FLAG_HEALTH_FLAT, "
      "FLAG_HEALTH_CLIP, FLAG_HEALTH_DROPOUT, FLAG_HEALTH_DC_JUMP; 0 = healthy. Rules and defaults: "
      "docs/features.md, 'Sensor health'.";
  m.attr("__version__") = EDGEFAULT_VERSION;
  register_fft(m);
  register_features(m);
  register_stream(m);
  register_sparse(m);
  register_drift(m);
}
