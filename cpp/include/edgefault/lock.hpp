// Thread safety of the core's stateful objects (FeatureExtractor, Pipeline, GaussianScorer,
// AlarmState, DriftMonitor, ScoredStream).
//
// Each object owns a std::mutex (mutex(), lock()). Every public member function that reads or
// writes mutable state (scratch buffers included) locks it for the whole call, so concurrent
// calls on one object serialise and give what some serial order of the same calls gives.
// Parameters fixed at construction (dimensions, window, hop, configs) are read without a lock.
//
// Overloads taking a `const Lock&` first do the same work without locking: the caller already
// holds that object's lock (from lock()), which makes several calls one critical section (the
// Python bindings size their output under the lock, then push under the same lock; ScoredStream
// holds all its objects' locks across a push). Passing a lock of another object is a bug caught by
// an assert in debug builds.
//
// Lock order, whenever several locks are held at once (so two threads never wait on each other):
//   ScoredStream -> Pipeline -> FeatureExtractor -> GaussianScorer -> DriftMonitor -> AlarmState.
// Uncontended, a lock is one atomic exchange and one release store per call (per push, never per
// sample; the fused path takes each lock once per push, not once per window).
#pragma once
#include <cassert>
#include <mutex>

namespace edgefault {

using Lock = std::unique_lock<std::mutex>;

// True if `held` is a lock on `m` that is currently owned (for asserts in the held overloads).
inline bool holds(const Lock& held, const std::mutex& m) noexcept {
  return held.owns_lock() && held.mutex() == &m;
}

}  // namespace edgefault
