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
      "edgefault C++ core: framer, FFT, feature kernels, scoring and alarm state.\n\n"
      "Threads: every stateful object (FeatureExtractor, Pipeline, GaussianScorer, AlarmState, DriftMonitor, "
      "ScoredStream, OmpCoder, TreeLassoCoder) holds its own lock across each call that touches its state, "
      "getters and get_state/set_state included, so calls on one object from several threads serialise and "
      "give what a serial run in the order admitted gives (ScoredStream.push holds the locks of all its "
      "objects). Waiting for a lock releases the GIL.";
  m.attr("__version__") = EDGEFAULT_VERSION;
  register_fft(m);
  register_features(m);
  register_stream(m);
  register_sparse(m);
  register_drift(m);
}
