#include "edgefault/framer.hpp"

#include <algorithm>

namespace edgefault {

Framer::Framer(std::size_t n_channels, std::size_t window, std::size_t hop)
    : n_channels_(n_channels), window_(window), hop_(hop) {
  if (n_channels == 0 || n_channels > 4096)
    throw std::invalid_argument("n_channels must be in [1, 4096], got " + std::to_string(n_channels));
  if (window < 2 || window > (std::size_t{1} << 24))
    throw std::invalid_argument("window must be in [2, 16777216] samples, got " + std::to_string(window));
  if (hop == 0 || hop > window)
    throw std::invalid_argument("hop must be in [1, window=" + std::to_string(window) + "], got " +
                                std::to_string(hop));
  ring_.assign(n_channels_ * 2 * window_, 0.0f);
  ptrs_.assign(n_channels_, nullptr);
}

std::size_t Framer::max_windows_for(std::size_t n_frames) const noexcept {
  const std::uint64_t total = seen_ + n_frames;
  if (total < window_) return 0;
  const std::uint64_t now = seen_ < window_ ? 0 : (seen_ - window_) / hop_ + 1;
  const std::uint64_t after = (total - window_) / hop_ + 1;
  return static_cast<std::size_t>(after - now);
}

void Framer::reset() noexcept {
  std::fill(ring_.begin(), ring_.end(), 0.0f);
  pos_ = 0;
  until_next_ = 1;
  seen_ = 0;
  last_bad_ = kNone;
}

std::size_t Framer::tail_frames() const noexcept {
  return static_cast<std::size_t>(std::min<std::uint64_t>(seen_, window_ - 1));
}

void Framer::export_tail(float* out) const noexcept {
  const std::size_t n = tail_frames();
  // The last n frames end just before pos_ in the mirrored ring.
  const std::size_t start = pos_ + window_ - n;  // index into the doubled buffer, < 2 * window
  for (std::size_t f = 0; f < n; ++f)
    for (std::size_t c = 0; c < n_channels_; ++c)
      out[f * n_channels_ + c] = ring_[c * 2 * window_ + start + f];
}

void Framer::import_tail(const float* tail, std::size_t n_tail, std::uint64_t frames_seen) {
  if (n_tail > window_ - 1 || n_tail > frames_seen ||
      n_tail != std::min<std::uint64_t>(frames_seen, window_ - 1))
    throw std::invalid_argument("framer state: tail of " + std::to_string(n_tail) +
                                " frames does not match frames_seen=" + std::to_string(frames_seen) +
                                " and window=" + std::to_string(window_));
  reset();
  // Replay the tail through the ring without emitting windows, then fix the counters.
  for (std::size_t f = 0; f < n_tail; ++f) {
    for (std::size_t c = 0; c < n_channels_; ++c) {
      const float v = tail[f * n_channels_ + c];
      float* ring = &ring_[c * 2 * window_];
      ring[pos_] = v;
      ring[pos_ + window_] = v;
      if (!std::isfinite(v)) last_bad_ = frames_seen - n_tail + f;
    }
    pos_ = (pos_ + 1 == window_) ? 0 : pos_ + 1;
  }
  seen_ = frames_seen;
  // Frames until the next window: windows end at frames window + j * hop.
  if (seen_ < window_) {
    until_next_ = 1;  // warm-up: first window fires when seen_ reaches window_
  } else {
    const std::uint64_t since = (seen_ - window_) % hop_;
    until_next_ = static_cast<std::size_t>(hop_ - since);
  }
}

}  // namespace edgefault
