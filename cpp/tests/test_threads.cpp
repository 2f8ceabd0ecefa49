// Concurrent use of one core object from 8 std::threads: pushes serialise on the objects' locks, so
// the windows come out exactly as a serial run of the same chunks in the order the locks admitted
// them (reconstructed from the end frames each push returns). Run under ASan/UBSan by
// tests/test_cpp.py, which also catches any write past the ring or a scratch buffer.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "edgefault/drift.hpp"
#include "edgefault/pipeline.hpp"
#include "edgefault/scoring.hpp"
#include "edgefault/stream.hpp"
#include "harness.hpp"

using namespace edgefault;

namespace {

constexpr std::size_t kThreads = 8, kPushes = 30, kChannels = 2, kWindow = 64, kHop = 32;
constexpr std::size_t kChunk = 2 * kHop;  // every push completes >= 1 window, so it can be ordered

ExtractorConfig config() {
  ExtractorConfig cfg;
  cfg.fs = 1000.0;
  cfg.window = kWindow;
  FeatureBlock t;
  t.kind = FeatureBlock::Kind::TimeStats;
  t.stats = {"rms", "kurtosis", "crest_factor"};
  FeatureBlock b;
  b.kind = FeatureBlock::Kind::BandEnergy;
  b.n_bands = 4;
  b.fmin = 20.0;
  cfg.blocks = {t, b};
  return cfg;
}

// Chunk `id`: its own noise plus a small offset, so every window's features identify its chunk(s).
std::vector<float> chunk(std::size_t id) {
  std::mt19937 rng(static_cast<unsigned>(1000 + id));
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(kChunk * kChannels);
  for (float& v : x) v = g(rng) + 0.01f * static_cast<float>(id);
  return x;
}

struct Record {
  std::size_t id = 0;
  std::vector<std::uint64_t> end;
  std::vector<float> values;  // features or scores + flags, per window
};

// Runs kThreads threads, each pushing its kPushes chunks through push(id, record); returns the
// records sorted by their first end frame (the order the lock admitted the pushes).
template <class Push>
std::vector<Record> run_threads(Push&& push) {
  std::vector<std::vector<Record>> per_thread(kThreads);
  std::atomic<std::size_t> ready{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();  // start together
      for (std::size_t j = 0; j < kPushes; ++j) {
        Record r;
        r.id = t * kPushes + j;
        push(r);
        per_thread[t].push_back(std::move(r));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<Record> all;
  for (auto& v : per_thread)
    for (auto& r : v) all.push_back(std::move(r));
  std::sort(all.begin(), all.end(), [](const Record& a, const Record& b) { return a.end.at(0) < b.end.at(0); });
  return all;
}

// Every window exactly once: ends window, window + hop, ... over the total frame count.
void check_end_frames(const std::vector<Record>& recs) {
  std::vector<std::uint64_t> ends;
  for (const auto& r : recs) ends.insert(ends.end(), r.end.begin(), r.end.end());
  const std::size_t frames = kThreads * kPushes * kChunk;
  CHECK(ends.size() == (frames - kWindow) / kHop + 1);
  for (std::size_t i = 0; i < ends.size(); ++i) CHECK(ends[i] == kWindow + i * kHop);
}

}  // namespace

TEST_CASE("8 threads pushing into one Pipeline give the serial run's windows and features") {
  Pipeline p(kChannels, kHop, config());
  const std::size_t d = p.feature_dim();
  auto recs = run_threads([&](Record& r) {
    const auto x = chunk(r.id);
    // sized by an upper bound (2 windows per chunk of two hops): max_windows_for() before an
    // unlocked push could be stale by the time it runs
    const std::size_t m = 2;
    r.end.resize(m);
    r.values.resize(m * d);
    std::vector<std::uint8_t> finite(m);
    PipelineOutput out;
    out.features = r.values.data();
    out.end_frame = r.end.data();
    out.finite = finite.data();
    out.max_windows = m;
    const std::size_t got = p.push(x.data(), kChunk, 1.0f, out);
    r.end.resize(got);
    r.values.resize(got * d);
  });
  // the held-lock overloads: size exactly, then push, in one critical section
  {
    const Lock held = p.lock();
    CHECK(p.max_windows_for(held, 0) == 0 && p.frames_seen(held) == kThreads * kPushes * kChunk);
  }
  CHECK(p.frames_seen() == kThreads * kPushes * kChunk);
  check_end_frames(recs);
  // serial replay in the admitted order: bit-identical features
  Pipeline serial(kChannels, kHop, config());
  std::size_t mismatches = 0;
  for (const auto& r : recs) {
    const auto x = chunk(r.id);
    std::vector<float> f(r.end.size() * d);
    std::vector<std::uint64_t> end(r.end.size());
    std::vector<std::uint8_t> finite(r.end.size());
    PipelineOutput out;
    out.features = f.data();
    out.end_frame = end.data();
    out.finite = finite.data();
    out.max_windows = r.end.size();
    CHECK(serial.push(x.data(), kChunk, 1.0f, out) == r.end.size());
    mismatches += end != r.end || std::memcmp(f.data(), r.values.data(), f.size() * sizeof(float)) != 0;
  }
  CHECK(mismatches == 0);
  // the check can fail: swapping two chunks changes the windows that straddle them
  Pipeline swapped(kChannels, kHop, config());
  std::vector<float> a, b;
  for (std::size_t k = 0; k < recs.size(); ++k) {
    const auto x = chunk(recs[k < 2 ? 1 - k : k].id);
    std::vector<float> f(recs[k].end.size() * d);
    std::vector<std::uint64_t> end(recs[k].end.size());
    std::vector<std::uint8_t> finite(recs[k].end.size());
    PipelineOutput out{f.data(), nullptr, end.data(), finite.data(), nullptr, recs[k].end.size()};
    swapped.push(x.data(), kChunk, 1.0f, out);
    a.insert(a.end(), f.begin(), f.end());
    b.insert(b.end(), recs[k].values.begin(), recs[k].values.end());
  }
  CHECK(a != b);
}

TEST_CASE("8 threads pushing into one ScoredStream (with drift) give the serial run's scores and flags") {
  struct Objects {
    Pipeline p{kChannels, kHop, config()};
    std::size_t d = p.feature_dim();
    GaussianScorer s{std::vector<float>(d, 0.0f), std::vector<float>(d, 1.0f), identity(d)};
    AlarmState a{30.0f, 20.0f, 2, 3};
    std::vector<float> proj = identity(d);
    DriftMonitor dm{ScoreCusum(2.0f, 1.0f, 4.0f, 0.5f, 5.0f, 1e-30f),
                    Mewma(std::vector<float>(d, 0.0f), proj, 0.1f, 50.0f), std::nullopt, 10, 0.5f};
    ScoredStream st{p, s, a, &dm};
    static std::vector<float> identity(std::size_t n) {
      std::vector<float> m(n * n, 0.0f);
      for (std::size_t i = 0; i < n; ++i) m[i * n + i] = 1.0f;
      return m;
    }
  };
  // Each record's values: per window, score then flags then the 4 drift values.
  auto push_into = [](Objects& o, std::size_t id, Record& r) {
    const auto x = chunk(id);
    const std::size_t m = 2;  // an upper bound for a chunk of two hops
    std::vector<std::uint64_t> end(m);
    std::vector<std::uint8_t> flags(m), health(m * kChannels);
    std::vector<float> scores(m), drift(4 * m), contrib(m * o.d);
    ScoredOutput out;
    out.end_frame = end.data();
    out.flags = flags.data();
    out.scores = scores.data();
    out.contrib = contrib.data();
    out.drift = drift.data();
    out.health = health.data();
    out.max_windows = m;
    const std::size_t got = o.st.push(x.data(), kChunk, 1.0f, out);
    r.end.assign(end.begin(), end.begin() + static_cast<std::ptrdiff_t>(got));
    for (std::size_t i = 0; i < got; ++i) {
      r.values.push_back(scores[i]);
      r.values.push_back(flags[i]);
      r.values.insert(r.values.end(), drift.begin() + static_cast<std::ptrdiff_t>(4 * i),
                      drift.begin() + static_cast<std::ptrdiff_t>(4 * i + 4));
    }
  };
  Objects shared;
  std::atomic<std::size_t> getters{0};
  std::atomic<bool> done{false};
  // a reader taking the objects' locks while the pushes run (state export must not tear or deadlock)
  std::thread reader([&] {
    do {
      const auto a = shared.a.state();  // before the pipeline: its windows can only have grown since
      const auto dm = shared.dm.status();
      const auto st = shared.p.get_state();
      CHECK(st.tail.size() == std::min<std::uint64_t>(st.frames_seen, kWindow - 1) * kChannels);
      CHECK(dm.ewma.size() == shared.d);
      CHECK(a.n_valid <= st.frames_seen);
      ++getters;
    } while (!done.load());
  });
  auto recs = run_threads([&](Record& r) { push_into(shared, r.id, r); });
  done = true;
  reader.join();
  CHECK(getters.load() > 0);
  check_end_frames(recs);
  Objects serial;
  std::size_t mismatches = 0, windows = 0;
  for (const auto& r : recs) {
    Record s;
    push_into(serial, r.id, s);
    windows += s.end.size();
    mismatches += s.end != r.end ||
                  std::memcmp(s.values.data(), r.values.data(), s.values.size() * sizeof(float)) != 0 ||
                  s.values.size() != r.values.size();
  }
  CHECK(mismatches == 0);
  CHECK(windows == (kThreads * kPushes * kChunk - kWindow) / kHop + 1);
  const auto a = shared.a.state(), b = serial.a.state();
  CHECK(a.n_valid == b.n_valid && a.above == b.above && a.alarm == b.alarm && a.n_valid == windows);
  const auto da = shared.dm.status(), db = serial.dm.status();
  CHECK(da.score_stat == db.score_stat && da.ewma == db.ewma && da.persist == db.persist);
}

TEST_CASE("8 threads scoring through one GaussianScorer get what each would alone") {
  const std::size_t d = 6, n = 50;
  std::vector<float> prec(d * d, 0.1f);
  for (std::size_t i = 0; i < d; ++i) prec[i * d + i] = 2.0f;
  GaussianScorer s(std::vector<float>(d, 0.5f), std::vector<float>(d, 2.0f), prec);
  std::vector<std::vector<float>> xs(kThreads), got(kThreads), want(kThreads);
  for (std::size_t t = 0; t < kThreads; ++t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::normal_distribution<float> g(0.0f, 1.0f);
    xs[t].resize(n * d);
    for (float& v : xs[t]) v = g(rng);
    want[t].resize(n);
    s.score(xs[t].data(), n, want[t].data(), nullptr);
    got[t].resize(n);
  }
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 200; ++rep) {
        s.score(xs[t].data(), n, got[t].data(), nullptr);
        if (got[t] != want[t]) return;
      }
    });
  for (auto& th : threads) th.join();
  for (std::size_t t = 0; t < kThreads; ++t) CHECK(got[t] == want[t]);
}

TEST_MAIN()
