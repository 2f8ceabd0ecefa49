// Streaming feature pipeline: Framer + one FeatureExtractor applied to each channel's window.
// Output per window: features of channel 0, then channel 1, ... (n_channels * n_features).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgefault/extractor.hpp"
#include "edgefault/framer.hpp"

namespace edgefault {

struct PipelineOutput {
  float* features = nullptr;        // max_windows x feature_dim, or null to skip extraction
  float* raw = nullptr;             // max_windows x n_channels x window, or null
  std::uint64_t* end_frame = nullptr;  // max_windows (required)
  std::uint8_t* finite = nullptr;      // max_windows (required): 1 if every sample was finite
  std::size_t max_windows = 0;
};

class Pipeline {
 public:
  Pipeline(std::size_t n_channels, std::size_t hop, const ExtractorConfig& config);

  Framer& framer() noexcept { return framer_; }
  const Framer& framer() const noexcept { return framer_; }
  const FeatureExtractor& extractor() const noexcept { return extractor_; }
  std::size_t n_channels() const noexcept { return framer_.n_channels(); }
  std::size_t window() const noexcept { return framer_.window(); }
  std::size_t feature_dim() const noexcept { return framer_.n_channels() * extractor_.n_features(); }
  std::size_t max_windows_for(std::size_t n_frames) const noexcept {
    return framer_.max_windows_for(n_frames);
  }

  // Pushes interleaved frames; fills out for each completed window. Windows with non-finite
  // samples get finite = 0 and NaN features (they are flagged, never scored). Throws
  // std::invalid_argument if out.max_windows is smaller than max_windows_for(n_frames).
  template <class T>
  std::size_t push(const T* data, std::size_t n_frames, float scale, const PipelineOutput& out);

 private:
  Framer framer_;
  FeatureExtractor extractor_;
};

extern template std::size_t Pipeline::push<float>(const float*, std::size_t, float, const PipelineOutput&);
extern template std::size_t Pipeline::push<double>(const double*, std::size_t, float, const PipelineOutput&);
extern template std::size_t Pipeline::push<std::int16_t>(const std::int16_t*, std::size_t, float,
                                                          const PipelineOutput&);
extern template std::size_t Pipeline::push<std::int32_t>(const std::int32_t*, std::size_t, float,
                                                          const PipelineOutput&);

}  // namespace edgefault
