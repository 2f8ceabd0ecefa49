#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "edgefault/drift.hpp"
#include "harness.hpp"

using edgefault::AdaptiveThreshold;
using edgefault::AlarmState;
using edgefault::DriftMonitor;
using edgefault::Mewma;
using edgefault::ScoreCusum;

TEST_CASE("score CUSUM follows S = max(0, S + clip(u) - k) by hand") {
  // center 0, scale 1, clip 2, k 0.5, h 3: scores e^1, e^3 (clipped to 2), e^-1
  ScoreCusum c(0.0f, 1.0f, 2.0f, 0.5f, 3.0f, 1e-30f);
  CHECK_CLOSE(c.update(std::exp(1.0f)), 0.5, 1e-5);
  CHECK_CLOSE(c.update(std::exp(3.0f)), 2.0, 1e-5);
  CHECK_CLOSE(c.update(std::exp(-1.0f)), 0.5, 1e-5);
  CHECK_CLOSE(c.update(std::exp(-1.0f)), 0.0, 1e-5);
  CHECK_CLOSE(c.update(0.0f), 0.0, 1e-6);  // floored, clipped at -2
  CHECK_THROWS(ScoreCusum(0.0f, 0.0f, 2.0f, 0.5f, 3.0f, 1e-30f));
  CHECK_THROWS(ScoreCusum(0.0f, 1.0f, 2.0f, 0.5f, -1.0f, 1e-30f));
  CHECK_THROWS(ScoreCusum(std::numeric_limits<float>::quiet_NaN(), 1.0f, 2.0f, 0.5f, 3.0f, 1e-30f));
}

TEST_CASE("MEWMA statistic matches the recursion by hand") {
  Mewma w({1.0f, 0.0f}, {1.0f, 0.0f, 0.0f, 2.0f}, 0.5f, 10.0f);
  const float x[2] = {3.0f, 1.0f};  // y = (2, 2)
  // E = 0.5 * (2, 2) = (1, 1); T2 = (2 - 0.5) / 0.5 * 2 = 6
  CHECK_CLOSE(w.update(x), 6.0, 1e-5);
  // E = 0.5 * (1, 1) + 0.5 * (2, 2) = (1.5, 1.5); T2 = 3 * 4.5 = 13.5
  CHECK_CLOSE(w.update(x), 13.5, 1e-5);
  CHECK(w.q() == 2 && w.dim() == 2);
}

TEST_CASE("MEWMA rejects bad parameters") {
  CHECK_THROWS(Mewma({}, {}, 0.5f, 1.0f));
  CHECK_THROWS(Mewma({0.0f, 0.0f}, {1.0f, 0.0f, 0.0f}, 0.5f, 1.0f));
  CHECK_THROWS(Mewma({0.0f}, {1.0f}, 0.0f, 1.0f));
  CHECK_THROWS(Mewma({0.0f}, {1.0f}, 0.5f, 0.0f));
}

TEST_CASE("drift latches at the limit, clears at clear_ratio * limit and restarts") {
  DriftMonitor d(ScoreCusum(0.0f, 1.0f, 4.0f, 0.5f, 3.0f, 1e-30f), std::nullopt, std::nullopt, 2, 0.5f);
  AlarmState a(1e30f, 1e30f, 1, 1);
  const float hi = std::exp(2.5f);  // +2 per window after k
  auto s1 = d.step(a, hi, nullptr, true);  // S = 2
  CHECK(!(s1.bits & edgefault::kDrift));
  auto s2 = d.step(a, hi, nullptr, true);  // S = 4 > 3
  CHECK((s2.bits & edgefault::kDrift) && (s2.bits & edgefault::kDriftChanged) && !(s2.bits & edgefault::kRetrain));
  auto s3 = d.step(a, hi, nullptr, true);  // persists 2 windows -> retrain
  CHECK((s3.bits & edgefault::kRetrain) && !(s3.bits & edgefault::kDriftChanged));
  // invalid windows change nothing
  auto s4 = d.step(a, std::numeric_limits<float>::quiet_NaN(), nullptr, true);
  CHECK((s4.bits & edgefault::kDrift) && s4.score_stat == s3.score_stat);
  const float lo = std::exp(-3.5f);  // -4 per window
  d.step(a, lo, nullptr, true);       // S = 2 > 1.5
  CHECK(d.drift());
  auto s6 = d.step(a, lo, nullptr, true);  // S = 0 <= 1.5: clears, restarts
  CHECK(!d.drift() && (s6.bits & edgefault::kDriftChanged));
  CHECK(d.status().score_stat == 0.0f && d.persist() == 0);
}

TEST_CASE("adaptive threshold tracks healthy level, is bounded, and freezes during alarm") {
  AdaptiveThreshold t(10.0f, 8.0f, 0.0f, 1.0f, 4.0f, 1e-30f, 0.5f, 0.5f, 2.0f);
  t.update(std::exp(-0.2f));  // level -0.1
  CHECK_CLOSE(t.threshold(), 10.0 * std::exp(-0.1), 1e-4);
  CHECK_CLOSE(t.clear_threshold(), 8.0 * std::exp(-0.1), 1e-4);
  for (int i = 0; i < 50; ++i) t.update(std::exp(3.0f));
  CHECK_CLOSE(t.threshold(), 20.0, 1e-3);  // bounded at hi
  // through the monitor: an alarm freezes it
  DriftMonitor d(std::nullopt, std::nullopt, AdaptiveThreshold(1.0f, 0.9f, 0.0f, 1.0f, 4.0f, 1e-30f, 0.5f, 0.5f, 2.0f),
                 10, 0.5f);
  AlarmState a(1.0f, 0.9f, 1, 1);
  d.step(a, 5.0f, nullptr, true);  // anomalous -> alarm on: threshold unchanged
  CHECK(a.alarm() && a.threshold() == 1.0f);
  d.step(a, 0.5f, nullptr, true);  // alarm clears on this window: healthy, adapts
  CHECK(!a.alarm() && a.threshold() < 1.0f);
  CHECK_THROWS(AdaptiveThreshold(10.0f, 12.0f, 0.0f, 1.0f, 4.0f, 1e-30f, 0.5f, 0.5f, 2.0f));
  CHECK_THROWS(AdaptiveThreshold(10.0f, 8.0f, 0.0f, 1.0f, 4.0f, 1e-30f, 0.0f, 0.5f, 2.0f));
  CHECK_THROWS(AdaptiveThreshold(10.0f, 8.0f, 0.0f, 1.0f, 4.0f, 1e-30f, 0.5f, 1.5f, 2.0f));
}

TEST_CASE("restore round-trips and rejects corrupt state without changing anything") {
  DriftMonitor d(ScoreCusum(0.0f, 1.0f, 4.0f, 0.5f, 30.0f, 1e-30f), Mewma({0.0f}, {1.0f}, 0.2f, 100.0f), std::nullopt,
                 5, 0.5f);
  AlarmState a(1e30f, 1e30f, 1, 1);
  const float v = 2.0f;
  d.step(a, std::exp(2.0f), &v, true);
  const double e[1] = {0.4};
  CHECK_CLOSE(d.status().ewma[0], 0.4, 1e-6);
  const double bad[1] = {std::numeric_limits<double>::quiet_NaN()};
  CHECK_THROWS(d.restore(0, 0, 1.0f, bad, 1, 0.0f));
  CHECK_THROWS(d.restore(0, 0, -1.0f, e, 1, 0.0f));
  CHECK_THROWS(d.restore(0, 0, 1.0f, e, 2, 0.0f));
  CHECK_THROWS(d.restore(4, 0, 1.0f, e, 1, 0.0f));
  CHECK_THROWS(d.restore(0, 3, 1.0f, e, 1, 0.0f));
  CHECK_CLOSE(d.status().score_stat, 1.5, 1e-6);  // unchanged by the failed restores
  d.restore(1, 3, 7.0f, e, 1, 0.0f);
  CHECK(d.drift() && d.persist() == 3 && d.status().score_stat == 7.0f);
  CHECK_THROWS(DriftMonitor(std::nullopt, std::nullopt, std::nullopt, 0, 0.5f));
  CHECK_THROWS(DriftMonitor(std::nullopt, std::nullopt, std::nullopt, 1, 1.0f));
}

TEST_MAIN()
