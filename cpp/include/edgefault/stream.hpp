// The fused device path for models scored in the core: framing, features, sensor health, score,
// contributions and alarm state (and drift monitors) in one call, so a push costs one crossing
// from Python.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "edgefault/drift.hpp"
#include "edgefault/lock.hpp"
#include "edgefault/pipeline.hpp"
#include "edgefault/scoring.hpp"

namespace edgefault {

enum WindowFlag : std::uint8_t {
  kFinite = 1,         // every input sample in the window was finite
  kAnomaly = 2,        // score > threshold
  kAlarm = 4,          // debounced alarm state after this window
  kAlarmChanged = 8,   // alarm state changed on this window
  // 16, 32, 64: DriftFlag (drift.hpp)
  kSensorFault = 128,  // a channel failed a sensor-health check (health bytes): not scored
};

struct ScoredOutput {
  std::uint64_t* end_frame = nullptr;  // max_windows
  std::uint8_t* flags = nullptr;       // max_windows, WindowFlag | DriftFlag bits
  float* scores = nullptr;             // max_windows (NaN when not finite or a sensor fault)
  float* contrib = nullptr;            // max_windows x feature_dim, or null
  float* features = nullptr;           // max_windows x feature_dim, or null
  float* drift = nullptr;              // max_windows x 4 (threshold, score stat, latent stat, monitors) with drift
  std::uint8_t* health = nullptr;      // max_windows x n_channels HealthFlag bytes, or null
  std::size_t max_windows = 0;
};

// Streams frames through pipeline, scores each completed window with scorer and updates alarm
// (and, with drift, steps the drift monitors — latent monitor on the feature row when its dim is
// feature_dim — and the adaptive threshold). Windows with non-finite samples or an unhealthy
// channel are marked (no kFinite / kSensorFault), get a NaN score and contributions and change no
// alarm or drift state. Holds references: the objects must outlive the stream; they may be used
// directly too (state save / restore), under their own locks.
class ScoredStream {
 public:
  // Throws std::invalid_argument when the scorer's or the latent monitor's dimension is not the
  // pipeline's feature_dim.
  ScoredStream(Pipeline& pipeline, GaussianScorer& scorer, AlarmState& alarm, DriftMonitor* drift = nullptr);
  Pipeline& pipeline() const noexcept { return p_; }
  GaussianScorer& scorer() const noexcept { return s_; }
  AlarmState& alarm() const noexcept { return a_; }
  DriftMonitor* drift() const noexcept { return d_; }
  std::mutex& mutex() const noexcept { return mu_; }  // guards the stream's scratch buffers

  // The locks a push holds, taken in the order of lock.hpp: stream, pipeline, scorer, drift (when
  // present), alarm.
  struct Locks {
    Lock stream, pipeline, scorer, drift, alarm;
  };
  Locks lock() const {
    return lock([](std::mutex& m) { return Lock(m); });
  }
  // The same, each lock taken by lock_one(std::mutex&) -> Lock (the Python binding passes one that
  // waits with the GIL released).
  template <class LockOne>
  Locks lock(LockOne&& lock_one) const {
    Locks l;
    l.stream = lock_one(mu_);
    l.pipeline = lock_one(p_.mutex());
    l.scorer = lock_one(s_.mutex());
    if (d_ != nullptr) l.drift = lock_one(d_->mutex());
    l.alarm = lock_one(a_.mutex());
    return l;
  }

  // One push in one critical section. out.max_windows must be >= pipeline.max_windows_for(n_frames)
  // (throws std::invalid_argument otherwise, before accepting any frame).
  template <class T>
  std::size_t push(const T* data, std::size_t n_frames, float scale, const ScoredOutput& out) {
    const Locks held = lock();
    return push(held, data, n_frames, scale, out);
  }
  template <class T>
  std::size_t push(const Locks& held, const T* data, std::size_t n_frames, float scale, const ScoredOutput& out);

 private:
  mutable std::mutex mu_;
  Pipeline& p_;
  GaussianScorer& s_;
  AlarmState& a_;
  DriftMonitor* d_;
  // Grow to the largest chunk seen, then reused (no allocation per call).
  std::vector<float> features_;        // feature rows when out.features is null
  std::vector<std::uint8_t> health_;   // health bytes when out.health is null
};

#define EF_STREAM_EXTERN(T)                                                                               \
  extern template std::size_t ScoredStream::push<T>(const Locks&, const T*, std::size_t, float, \
                                                    const ScoredOutput&);
EF_STREAM_EXTERN(float)
EF_STREAM_EXTERN(double)
EF_STREAM_EXTERN(std::int16_t)
EF_STREAM_EXTERN(std::int32_t)
#undef EF_STREAM_EXTERN

}  // namespace edgefault
