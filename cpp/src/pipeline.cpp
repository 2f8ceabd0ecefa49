#include "edgefault/pipeline.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace edgefault {

Pipeline::Pipeline(std::size_t n_channels, std::size_t hop, const ExtractorConfig& config)
    : framer_(n_channels, config.window, hop), extractor_(config) {}

template <class T>
std::size_t Pipeline::push(const T* data, std::size_t n_frames, float scale, const PipelineOutput& out) {
  const std::size_t need = framer_.max_windows_for(n_frames);
  if (out.max_windows < need)
    throw std::invalid_argument("pipeline output holds " + std::to_string(out.max_windows) +
                                " windows but the chunk completes up to " + std::to_string(need));
  if (need > 0 && (out.end_frame == nullptr || out.finite == nullptr))
    throw std::invalid_argument("pipeline output needs end_frame and finite buffers");
  const std::size_t nf = extractor_.n_features();
  const std::size_t nc = framer_.n_channels();
  const std::size_t w = framer_.window();
  std::size_t i = 0;
  framer_.push(data, n_frames, scale, [&](const float* const* ch, std::uint64_t end, bool finite) {
    out.end_frame[i] = end;
    out.finite[i] = finite ? 1 : 0;
    if (out.raw != nullptr)
      for (std::size_t c = 0; c < nc; ++c) std::memcpy(out.raw + (i * nc + c) * w, ch[c], w * sizeof(float));
    if (out.features != nullptr) {
      float* row = out.features + i * nc * nf;
      if (finite) {
        for (std::size_t c = 0; c < nc; ++c) extractor_.compute(ch[c], row + c * nf);
      } else {
        for (std::size_t k = 0; k < nc * nf; ++k) row[k] = std::numeric_limits<float>::quiet_NaN();
      }
    }
    ++i;
  });
  return i;
}

template std::size_t Pipeline::push<float>(const float*, std::size_t, float, const PipelineOutput&);
template std::size_t Pipeline::push<double>(const double*, std::size_t, float, const PipelineOutput&);
template std::size_t Pipeline::push<std::int16_t>(const std::int16_t*, std::size_t, float, const PipelineOutput&);
template std::size_t Pipeline::push<std::int32_t>(const std::int32_t*, std::size_t, float, const PipelineOutput&);

}  // namespace edgefault
