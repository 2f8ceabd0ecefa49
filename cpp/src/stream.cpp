#include "edgefault/stream.hpp"

#include <cassert>
#include <limits>
#include <stdexcept>
#include <string>

namespace edgefault {

ScoredStream::ScoredStream(Pipeline& pipeline, GaussianScorer& scorer, AlarmState& alarm, DriftMonitor* drift)
    : p_(pipeline), s_(scorer), a_(alarm), d_(drift) {
  const std::size_t d = pipeline.feature_dim();
  if (scorer.dim() != d)
    throw std::invalid_argument("scorer expects " + std::to_string(scorer.dim()) + " features, pipeline gives " +
                                std::to_string(d));
  if (drift != nullptr && drift->latent_dim() != 0 && drift->latent_dim() != d)
    throw std::invalid_argument("latent drift monitor expects " + std::to_string(drift->latent_dim()) +
                                " values, pipeline gives " + std::to_string(d) + " features");
}

template <class T>
std::size_t ScoredStream::push(const Locks& held, const T* data, std::size_t n_frames, float scale,
                               const ScoredOutput& out) {
  assert(holds(held.stream, mu_) && holds(held.pipeline, p_.mutex()) && holds(held.scorer, s_.mutex()) &&
         holds(held.alarm, a_.mutex()) && (d_ == nullptr || holds(held.drift, d_->mutex())));
  const std::size_t d = p_.feature_dim();
  const std::size_t nc = p_.n_channels();
  const std::size_t need = p_.max_windows_for(held.pipeline, n_frames);
  if (out.max_windows < need) throw std::invalid_argument("scored output too small for this chunk");
  if (need > 0 && (out.end_frame == nullptr || out.flags == nullptr || out.scores == nullptr))
    throw std::invalid_argument("scored output needs end_frame, flags and scores buffers");
  if (d_ != nullptr && need > 0 && out.drift == nullptr) throw std::invalid_argument("scored output lacks drift rows");
  float* feats = out.features;
  if (feats == nullptr) {
    if (features_.size() < need * d) features_.resize(need * d);
    feats = features_.data();
  }
  std::uint8_t* health = out.health;
  if (health == nullptr) {
    if (health_.size() < need * nc) health_.resize(need * nc);
    health = health_.data();
  }
  PipelineOutput po;
  po.features = feats;
  po.end_frame = out.end_frame;
  po.finite = out.flags;  // 1 = finite, then widened to flag bits below
  po.health = health;
  po.max_windows = out.max_windows;
  const std::size_t m = p_.push(held.pipeline, data, n_frames, scale, po);
  if (m == 0) return 0;
  s_.score(held.scorer, feats, m, out.scores, out.contrib);
  const bool vec = d_ != nullptr && d_->latent_dim() != 0;
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t i = 0; i < m; ++i) {
    const bool finite = out.flags[i] != 0;
    std::uint8_t bad = 0;
    for (std::size_t c = 0; c < nc; ++c) bad = static_cast<std::uint8_t>(bad | health[i * nc + c]);
    const bool sensor = bad != 0;
    if (sensor) {  // marked, not scored: like a non-finite window
      out.scores[i] = kNaN;
      if (out.contrib != nullptr)
        for (std::size_t j = 0; j < d; ++j) out.contrib[i * d + j] = kNaN;
    }
    const bool valid = finite && !sensor;
    std::uint8_t bits;
    if (d_ != nullptr) {
      const auto st = d_->step(held.drift, a_, held.alarm, out.scores[i], vec ? feats + i * d : nullptr, valid);
      bits = st.bits;
      float* dr = out.drift + 4 * i;
      dr[0] = st.threshold;
      dr[1] = st.score_stat;
      dr[2] = st.latent_stat;
      dr[3] = st.monitors;
    } else {
      const auto st = a_.update(held.alarm, out.scores[i], valid);
      bits = static_cast<std::uint8_t>((st.anomaly ? kAnomaly : 0) | (st.alarm ? kAlarm : 0) |
                                       (st.changed ? kAlarmChanged : 0));
    }
    out.flags[i] = static_cast<std::uint8_t>((finite ? kFinite : 0) | (sensor ? kSensorFault : 0) | bits);
  }
  return m;
}

#define EF_INSTANTIATE(T) \
  template std::size_t ScoredStream::push<T>(const Locks&, const T*, std::size_t, float, const ScoredOutput&);
EF_INSTANTIATE(float)
EF_INSTANTIATE(double)
EF_INSTANTIATE(std::int16_t)
EF_INSTANTIATE(std::int32_t)
#undef EF_INSTANTIATE

}  // namespace edgefault
