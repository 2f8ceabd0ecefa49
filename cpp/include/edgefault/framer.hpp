// Multi-channel ring-buffer framer: accepts interleaved frames in chunks of any length and
// hands out complete windows (window samples per channel, contiguous, channel-major) every hop
// samples. Storage is a mirrored ring (each sample written twice) so a window is always one
// contiguous span: no copy and no allocation per window.
#pragma once
#include <cmath>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgefault {

class Framer {
 public:
  Framer(std::size_t n_channels, std::size_t window, std::size_t hop);

  std::size_t n_channels() const noexcept { return n_channels_; }
  std::size_t window() const noexcept { return window_; }
  std::size_t hop() const noexcept { return hop_; }
  // Total frames accepted since construction / reset.
  std::uint64_t frames_seen() const noexcept { return seen_; }
  // Upper bound on the windows completed by pushing n_frames more frames.
  std::size_t max_windows_for(std::size_t n_frames) const noexcept;

  // Push n_frames interleaved frames (frame f, channel c at data[f * n_channels + c]), each
  // sample multiplied by scale. For every completed window calls
  //   on_window(const float* const* channel_ptrs, std::uint64_t end_frame, bool finite)
  // where channel_ptrs[c] points at `window` contiguous samples of channel c, end_frame is the
  // index one past the window's last frame, and finite is false if any sample in the window is
  // NaN or infinite. Returns the number of windows completed.
  template <class T, class OnWindow>
  std::size_t push(const T* data, std::size_t n_frames, float scale, OnWindow&& on_window) {
    std::size_t produced = 0;
    std::size_t f = 0;
    while (f < n_frames) {
      // A run of frames that neither wraps the ring nor passes the next window boundary.
      std::size_t run = std::min(n_frames - f, window_ - pos_);
      const bool warm = seen_ >= window_;
      const std::size_t to_boundary = warm ? until_next_ : (window_ - static_cast<std::size_t>(seen_)) + 0;
      run = std::min(run, to_boundary);
      const T* src = data + f * n_channels_;
      for (std::size_t c = 0; c < n_channels_; ++c) {
        float* ring = &ring_[c * 2 * window_];
        float* dst = ring + pos_;
        // the stride known at compile time for 1 and 2 channels, so the copy vectorises
        const bool bad = n_channels_ == 1   ? copy_run<1>(src, 1, c, run, scale, dst, dst + window_)
                         : n_channels_ == 2 ? copy_run<2>(src, 2, c, run, scale, dst, dst + window_)
                                            : copy_run<0>(src, n_channels_, c, run, scale, dst, dst + window_);
        if (bad) {  // rare: find the last non-finite frame of the run
          for (std::size_t k = run; k-- > 0;)
            if (!std::isfinite(dst[k])) {
              const std::uint64_t idx = seen_ + k;
              if (last_bad_ == kNone || idx > last_bad_) last_bad_ = idx;
              break;
            }
        }
      }
      seen_ += run;
      pos_ += run;
      if (pos_ == window_) pos_ = 0;
      f += run;
      if (warm) {
        until_next_ -= run;
      }
      if ((warm && until_next_ == 0) || (!warm && seen_ == window_)) {
        until_next_ = hop_;
        for (std::size_t c = 0; c < n_channels_; ++c) ptrs_[c] = &ring_[c * 2 * window_ + pos_];
        const bool finite = !(last_bad_ != kNone && last_bad_ + window_ >= seen_);
        on_window(static_cast<const float* const*>(ptrs_.data()), seen_, finite);
        ++produced;
      }
    }
    return produced;
  }

  void reset() noexcept;

  // State for save / restore: the last min(frames_seen, window - 1) frames are all a future
  // window can still need.
  std::size_t tail_frames() const noexcept;
  // Writes tail_frames() frames, interleaved, into out (tail_frames() * n_channels floats).
  void export_tail(float* out) const noexcept;
  // Restores a state exported by export_tail with the given frames_seen counter.
  void import_tail(const float* tail, std::size_t n_tail, std::uint64_t frames_seen);

 private:
  // Channel c of run frames, times scale, into dst and its mirror; true if any is NaN or inf.
  // NC: the channel count if known at compile time, else 0 (then nc).
  template <std::size_t NC, class T>
  static bool copy_run(const T* __restrict src, std::size_t nc, std::size_t c, std::size_t run, float scale,
                       float* __restrict dst, float* __restrict mirror) noexcept {
    const std::size_t stride = NC != 0 ? NC : nc;
    std::uint32_t bad = 0;
    for (std::size_t k = 0; k < run; ++k) {
      const float v = static_cast<float>(src[k * stride + c]) * scale;
      dst[k] = v;
      mirror[k] = v;
      std::uint32_t u;
      std::memcpy(&u, &v, sizeof u);
      bad |= static_cast<std::uint32_t>((u & 0x7f800000u) == 0x7f800000u);  // exponent all ones: NaN or inf
    }
    return bad != 0;
  }

  static constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();
  std::size_t n_channels_, window_, hop_;
  std::vector<float> ring_;          // n_channels * 2 * window
  std::vector<const float*> ptrs_;   // per-channel window pointers handed to on_window
  std::size_t pos_ = 0;              // next write position in [0, window)
  std::size_t until_next_ = 1;       // frames until the next window completes (after warm-up)
  std::uint64_t seen_ = 0;
  std::uint64_t last_bad_ = kNone;   // index of the last non-finite frame
};

}  // namespace edgefault
