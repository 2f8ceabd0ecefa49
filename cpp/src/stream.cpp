#include "edgefault/stream.hpp"

#include <stdexcept>
#include <string>

namespace edgefault {

template <class T>
std::size_t scored_push(Pipeline& pipeline, GaussianScorer& scorer, AlarmState& alarm, const T* data,
                        std::size_t n_frames, float scale, const ScoredOutput& out,
                        std::vector<float>& features_scratch, DriftMonitor* drift) {
  const std::size_t d = pipeline.feature_dim();
  if (scorer.dim() != d)
    throw std::invalid_argument("scorer expects " + std::to_string(scorer.dim()) + " features, pipeline gives " +
                                std::to_string(d));
  const std::size_t need = pipeline.max_windows_for(n_frames);
  if (out.max_windows < need) throw std::invalid_argument("scored output too small for this chunk");
  if (drift != nullptr && need > 0 && out.drift == nullptr) throw std::invalid_argument("scored output lacks drift rows");
  if (drift != nullptr && drift->latent_dim() != 0 && drift->latent_dim() != d)
    throw std::invalid_argument("latent drift monitor expects " + std::to_string(drift->latent_dim()) +
                                " values, pipeline gives " + std::to_string(d) + " features");
  float* feats = out.features;
  if (feats == nullptr) {
    if (features_scratch.size() < need * d) features_scratch.resize(need * d);  // grows once, then reused
    feats = features_scratch.data();
  }
  PipelineOutput po;
  po.features = feats;
  po.end_frame = out.end_frame;
  po.finite = out.flags;  // 1 = finite, then widened to flag bits below
  po.max_windows = out.max_windows;
  const std::size_t m = pipeline.push(data, n_frames, scale, po);
  if (m == 0) return 0;
  scorer.score(feats, m, out.scores, out.contrib);
  if (drift != nullptr) {
    const bool vec = drift->latent_dim() != 0;
    for (std::size_t i = 0; i < m; ++i) {
      const bool finite = out.flags[i] != 0;
      const auto st = drift->step(alarm, out.scores[i], vec ? feats + i * d : nullptr, finite);
      out.flags[i] = static_cast<std::uint8_t>((finite ? kFinite : 0) | st.bits);
      float* dr = out.drift + 4 * i;
      dr[0] = st.threshold;
      dr[1] = st.score_stat;
      dr[2] = st.latent_stat;
      dr[3] = st.monitors;
    }
    return m;
  }
  for (std::size_t i = 0; i < m; ++i) {
    const bool finite = out.flags[i] != 0;
    const auto st = alarm.update(out.scores[i], finite);
    out.flags[i] = static_cast<std::uint8_t>((finite ? kFinite : 0) | (st.anomaly ? kAnomaly : 0) |
                                             (st.alarm ? kAlarm : 0) | (st.changed ? kAlarmChanged : 0));
  }
  return m;
}

#define EF_INSTANTIATE(T)                                                                              \
  template std::size_t scored_push<T>(Pipeline&, GaussianScorer&, AlarmState&, const T*, std::size_t, float, \
                                      const ScoredOutput&, std::vector<float>&, DriftMonitor*);
EF_INSTANTIATE(float)
EF_INSTANTIATE(double)
EF_INSTANTIATE(std::int16_t)
EF_INSTANTIATE(std::int32_t)
#undef EF_INSTANTIATE

}  // namespace edgefault
