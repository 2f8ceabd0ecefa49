// The fused device path for models scored in the core: framing, features, score,
// contributions and alarm state in one call, so a push costs one crossing from Python.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgefault/drift.hpp"
#include "edgefault/pipeline.hpp"
#include "edgefault/scoring.hpp"

namespace edgefault {

enum WindowFlag : std::uint8_t {
  kFinite = 1,         // every input sample in the window was finite
  kAnomaly = 2,        // score > threshold
  kAlarm = 4,          // debounced alarm state after this window
  kAlarmChanged = 8,   // alarm state changed on this window
};

struct ScoredOutput {
  std::uint64_t* end_frame = nullptr;  // max_windows
  std::uint8_t* flags = nullptr;       // max_windows, WindowFlag bits
  float* scores = nullptr;             // max_windows (NaN when not finite)
  float* contrib = nullptr;            // max_windows x feature_dim, or null
  float* features = nullptr;           // max_windows x feature_dim, or null
  float* drift = nullptr;              // max_windows x 4 (threshold, score stat, latent stat, monitors) with drift
  std::size_t max_windows = 0;
};

// Pushes frames through pipeline, scores each completed window with scorer and updates alarm.
// `features_scratch` must hold max_windows x feature_dim floats when out.features is null.
// With `drift`, each window also steps the drift monitors (latent monitor on the feature row when
// its dim is feature_dim) and the adaptive threshold; out.drift must then be non-null.
template <class T>
std::size_t scored_push(Pipeline& pipeline, GaussianScorer& scorer, AlarmState& alarm, const T* data,
                        std::size_t n_frames, float scale, const ScoredOutput& out,
                        std::vector<float>& features_scratch, DriftMonitor* drift = nullptr);

}  // namespace edgefault
