#include "edgefault/pipeline.hpp"

#include <cassert>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace edgefault {

Pipeline::Pipeline(std::size_t n_channels, std::size_t hop, const ExtractorConfig& config, HealthConfig health)
    : framer_(n_channels, config.window, hop),
      extractor_(config),
      health_(n_channels, config.window, hop, std::move(health)),
      health_row_(n_channels, 0) {}

std::uint64_t Pipeline::frames_seen() const {
  const Lock held(mu_);
  return frames_seen(held);
}

std::uint64_t Pipeline::frames_seen(const Lock& held) const noexcept {
  assert(holds(held, mu_));
  (void)held;
  return framer_.frames_seen();
}

std::size_t Pipeline::max_windows_for(std::size_t n_frames) const {
  const Lock held(mu_);
  return max_windows_for(held, n_frames);
}

std::size_t Pipeline::max_windows_for(const Lock& held, std::size_t n_frames) const noexcept {
  assert(holds(held, mu_));
  (void)held;
  return framer_.max_windows_for(n_frames);
}

template <class T>
std::size_t Pipeline::push(const Lock& held, const T* data, std::size_t n_frames, float scale,
                           const PipelineOutput& out) {
  assert(holds(held, mu_));
  (void)held;
  const std::size_t need = framer_.max_windows_for(n_frames);
  if (out.max_windows < need)
    throw std::invalid_argument("pipeline output holds " + std::to_string(out.max_windows) +
                                " windows but the chunk completes up to " + std::to_string(need));
  if (need > 0 && (out.end_frame == nullptr || out.finite == nullptr))
    throw std::invalid_argument("pipeline output needs end_frame and finite buffers");
  const std::size_t nf = extractor_.n_features();
  const std::size_t nc = framer_.n_channels();
  const std::size_t w = framer_.window();
  const bool check_health = health_.enabled();
  Lock ex;  // the extractor's scratch: taken once per push, only when a window is cut
  if (need > 0 && out.features != nullptr) ex = extractor_.lock();
  std::size_t i = 0;
  framer_.push(data, n_frames, scale, [&](const float* const* ch, std::uint64_t end, bool finite) {
    out.end_frame[i] = end;
    out.finite[i] = finite ? 1 : 0;
    std::uint8_t* hrow = out.health != nullptr ? out.health + i * nc : health_row_.data();
    if (check_health) {
      health_.check(ch, hrow);
    } else if (out.health != nullptr) {
      std::memset(hrow, 0, nc);
    }
    if (out.raw != nullptr)
      for (std::size_t c = 0; c < nc; ++c) std::memcpy(out.raw + (i * nc + c) * w, ch[c], w * sizeof(float));
    if (out.features != nullptr) {
      float* row = out.features + i * nc * nf;
      if (finite) {
        for (std::size_t c = 0; c < nc; ++c) extractor_.compute(ex, ch[c], row + c * nf);
      } else {
        for (std::size_t k = 0; k < nc * nf; ++k) row[k] = std::numeric_limits<float>::quiet_NaN();
      }
    }
    ++i;
  });
  return i;
}

void Pipeline::reset() {
  const Lock held(mu_);
  reset(held);
}

void Pipeline::reset(const Lock& held) noexcept {
  assert(holds(held, mu_));
  (void)held;
  framer_.reset();
  health_.reset();
}

std::size_t Pipeline::tail_frames(const Lock& held) const noexcept {
  assert(holds(held, mu_));
  (void)held;
  return framer_.tail_frames();
}

void Pipeline::export_tail(const Lock& held, float* out) const noexcept {
  assert(holds(held, mu_));
  (void)held;
  framer_.export_tail(out);
}

Pipeline::State Pipeline::get_state() const {
  const Lock held(mu_);
  State s;
  s.tail.resize(framer_.tail_frames() * framer_.n_channels());
  framer_.export_tail(s.tail.data());
  s.frames_seen = framer_.frames_seen();
  return s;
}

void Pipeline::set_state(const float* tail, std::size_t n_tail, std::uint64_t frames_seen) {
  const Lock held(mu_);
  set_state(held, tail, n_tail, frames_seen);
}

void Pipeline::set_state(const Lock& held, const float* tail, std::size_t n_tail, std::uint64_t frames_seen) {
  assert(holds(held, mu_));
  (void)held;
  framer_.import_tail(tail, n_tail, frames_seen);
  health_.reset();
}

template std::size_t Pipeline::push<float>(const Lock&, const float*, std::size_t, float, const PipelineOutput&);
template std::size_t Pipeline::push<double>(const Lock&, const double*, std::size_t, float, const PipelineOutput&);
template std::size_t Pipeline::push<std::int16_t>(const Lock&, const std::int16_t*, std::size_t, float,
                                                  const PipelineOutput&);
template std::size_t Pipeline::push<std::int32_t>(const Lock&, const std::int32_t*, std::size_t, float,
                                                  const PipelineOutput&);

}  // namespace edgefault
