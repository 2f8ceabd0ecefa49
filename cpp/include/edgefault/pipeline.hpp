// Streaming feature pipeline: Framer + one FeatureExtractor applied to each channel's window,
// plus the per-channel sensor-health checks (health.hpp) on every window.
// Output per window: features of channel 0, then channel 1, ... (n_channels * n_features).
// Thread safety (lock.hpp): every public member that touches the framer, the extractor's scratch
// or the health state locks mutex(); the `const Lock&` overloads expect it held.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "edgefault/extractor.hpp"
#include "edgefault/framer.hpp"
#include "edgefault/health.hpp"
#include "edgefault/lock.hpp"

namespace edgefault {

struct PipelineOutput {
  float* features = nullptr;        // max_windows x feature_dim, or null to skip extraction
  float* raw = nullptr;             // max_windows x n_channels x window, or null
  std::uint64_t* end_frame = nullptr;  // max_windows (required)
  std::uint8_t* finite = nullptr;      // max_windows (required): 1 if every sample was finite
  std::uint8_t* health = nullptr;      // max_windows x n_channels HealthFlag bytes, or null
  std::size_t max_windows = 0;
};

class Pipeline {
 public:
  // health: the sensor-health checks (defaults: HealthConfig{}). Throws std::invalid_argument on a
  // bad framing, extractor or health configuration.
  Pipeline(std::size_t n_channels, std::size_t hop, const ExtractorConfig& config, HealthConfig health = {});

  // Fixed at construction (no lock).
  std::size_t n_channels() const noexcept { return framer_.n_channels(); }
  std::size_t window() const noexcept { return framer_.window(); }
  std::size_t hop() const noexcept { return framer_.hop(); }
  std::size_t feature_dim() const noexcept { return framer_.n_channels() * extractor_.n_features(); }
  const ExtractorConfig& extractor_config() const noexcept { return extractor_.config(); }
  const std::vector<std::string>& feature_names() const noexcept { return extractor_.feature_names(); }
  const HealthConfig& health_config() const noexcept { return health_.config(); }

  std::mutex& mutex() const noexcept { return mu_; }
  Lock lock() const { return Lock(mu_); }

  // Total frames accepted since construction / reset.
  std::uint64_t frames_seen() const;
  std::uint64_t frames_seen(const Lock& held) const noexcept;
  // Upper bound on the windows the next push of n_frames completes. Only exact while the lock is
  // held from here to that push (another thread may push in between otherwise).
  std::size_t max_windows_for(std::size_t n_frames) const;
  std::size_t max_windows_for(const Lock& held, std::size_t n_frames) const noexcept;

  // Pushes interleaved frames; fills out for each completed window. Windows with non-finite
  // samples get finite = 0 and NaN features (they are flagged, never scored). Every window's
  // health bytes go to out.health when given (computed either way: the DC-jump check needs each
  // window). Throws std::invalid_argument if out.max_windows is smaller than max_windows_for(n_frames).
  template <class T>
  std::size_t push(const T* data, std::size_t n_frames, float scale, const PipelineOutput& out) {
    const Lock held(mu_);
    return push(held, data, n_frames, scale, out);
  }
  template <class T>
  std::size_t push(const Lock& held, const T* data, std::size_t n_frames, float scale, const PipelineOutput& out);

  // Forgets buffered frames and the health checks' previous window.
  void reset();
  void reset(const Lock& held) noexcept;

  // State for save / restore: the last min(frames_seen, window - 1) frames.
  std::size_t tail_frames(const Lock& held) const noexcept;
  void export_tail(const Lock& held, float* out) const noexcept;  // tail_frames() x n_channels
  struct State {
    std::vector<float> tail;  // tail frames x n_channels, interleaved
    std::uint64_t frames_seen = 0;
  };
  State get_state() const;
  // Restores an exported tail; the DC-jump check restarts (no previous window).
  void set_state(const float* tail, std::size_t n_tail, std::uint64_t frames_seen);
  void set_state(const Lock& held, const float* tail, std::size_t n_tail, std::uint64_t frames_seen);

 private:
  mutable std::mutex mu_;
  Framer framer_;
  FeatureExtractor extractor_;
  HealthChecker health_;
  std::vector<std::uint8_t> health_row_;  // n_channels: a window's health when out.health is null
};

extern template std::size_t Pipeline::push<float>(const Lock&, const float*, std::size_t, float, const PipelineOutput&);
extern template std::size_t Pipeline::push<double>(const Lock&, const double*, std::size_t, float,
                                                   const PipelineOutput&);
extern template std::size_t Pipeline::push<std::int16_t>(const Lock&, const std::int16_t*, std::size_t, float,
                                                         const PipelineOutput&);
extern template std::size_t Pipeline::push<std::int32_t>(const Lock&, const std::int32_t*, std::size_t, float,
                                                         const PipelineOutput&);

}  // namespace edgefault
