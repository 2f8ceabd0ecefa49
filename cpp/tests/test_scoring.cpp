#include <cmath>
#include <limits>
#include <vector>

#include "edgefault/scoring.hpp"
#include "harness.hpp"

using edgefault::AlarmState;
using edgefault::GaussianScorer;

TEST_CASE("gaussian scorer matches hand-computed quadratic form and contributions sum to score") {
  // P = [[2, 0.5], [0.5, 1]], mean (1, -1), scale (2, 0.5)
  GaussianScorer s({1.0f, -1.0f}, {2.0f, 0.5f}, {2.0f, 0.5f, 0.5f, 1.0f});
  const float x[4] = {3.0f, -0.5f, 1.0f, -1.0f};
  float sc[2], ct[4];
  s.score(x, 2, sc, ct);
  // z = (1, 1): zPz = 2 + 0.5 + 0.5 + 1 = 4; contrib = (2.5, 1.5)
  CHECK_CLOSE(sc[0], 4.0, 1e-6);
  CHECK_CLOSE(ct[0], 2.5, 1e-6);
  CHECK_CLOSE(ct[1], 1.5, 1e-6);
  CHECK_CLOSE(sc[1], 0.0, 1e-6);
}

TEST_CASE("gaussian scorer gives NaN for non-finite rows and rejects bad models") {
  GaussianScorer s({0.0f}, {1.0f}, {1.0f});
  const float x[2] = {std::numeric_limits<float>::infinity(), 2.0f};
  float sc[2];
  s.score(x, 2, sc, nullptr);
  CHECK(std::isnan(sc[0]));
  CHECK_CLOSE(sc[1], 4.0, 1e-6);
  CHECK_THROWS(GaussianScorer({}, {}, {}));
  CHECK_THROWS(GaussianScorer({0.0f}, {0.0f}, {1.0f}));
  CHECK_THROWS(GaussianScorer({0.0f, 0.0f}, {1.0f, 1.0f}, {1.0f, 2.0f, 0.0f, 1.0f}));
  CHECK_THROWS(GaussianScorer({0.0f}, {1.0f}, {1.0f, 1.0f}));
}

TEST_CASE("alarm needs k of the last n anomalous windows and clears with hysteresis") {
  AlarmState a(10.0f, 5.0f, 2, 3);
  CHECK(!a.update(11.0f, true).alarm);  // 1 of 3
  CHECK(!a.update(1.0f, true).alarm);   // 1 of 3
  auto s = a.update(12.0f, true);       // 2 of 3 -> on
  CHECK(s.alarm && s.changed && s.anomaly);
  CHECK(a.update(7.0f, true).alarm);    // above clear: 3 of 3 above clear
  CHECK(a.update(6.0f, true).alarm);    // still >= 2 above clear
  auto off = a.update(1.0f, true);      // above-clear history 1,1,0 -> 2 still on
  CHECK(off.alarm);
  off = a.update(1.0f, true);           // 1,0,0 -> off
  CHECK(!off.alarm && off.changed);
}

TEST_CASE("alarm ignores invalid windows and rejects bad parameters") {
  AlarmState a(1.0f, 1.0f, 1, 1);
  auto s = a.update(std::numeric_limits<float>::quiet_NaN(), true);
  CHECK(!s.anomaly && !s.alarm);
  s = a.update(5.0f, false);
  CHECK(!s.alarm && a.n_valid() == 0);
  CHECK_THROWS(AlarmState(1.0f, 1.0f, 0, 3));
  CHECK_THROWS(AlarmState(1.0f, 1.0f, 4, 3));
  CHECK_THROWS(AlarmState(1.0f, 1.0f, 1, 65));
  CHECK_THROWS(AlarmState(1.0f, 2.0f, 1, 3));
  CHECK_THROWS(AlarmState(std::numeric_limits<float>::infinity(), 1.0f, 1, 3));
}

TEST_MAIN()
