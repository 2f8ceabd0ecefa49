#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "edgefault/framer.hpp"
#include "harness.hpp"

using edgefault::Framer;

namespace {
struct Collected {
  std::vector<std::vector<float>> windows;  // channel-major copy per window
  std::vector<std::uint64_t> ends;
  std::vector<bool> finite;
};

template <class T>
Collected run(Framer& f, const std::vector<T>& data, std::size_t chunk, float scale = 1.0f) {
  Collected c;
  const std::size_t nc = f.n_channels(), w = f.window();
  const std::size_t frames = data.size() / nc;
  for (std::size_t s = 0; s < frames; s += chunk) {
    const std::size_t n = std::min(chunk, frames - s);
    const std::size_t bound = f.max_windows_for(n);
    const std::size_t got = f.push(data.data() + s * nc, n, scale, [&](const float* const* ch, std::uint64_t end, bool fin) {
      std::vector<float> win;
      for (std::size_t k = 0; k < nc; ++k) win.insert(win.end(), ch[k], ch[k] + w);
      c.windows.push_back(win);
      c.ends.push_back(end);
      c.finite.push_back(fin);
    });
    CHECK(got == bound);
  }
  return c;
}
}  // namespace

TEST_CASE("framer windows match direct slicing for every chunk size") {
  const std::size_t nc = 3, w = 8, hop = 3, frames = 50;
  std::vector<float> data(nc * frames);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 8u, 13u, 50u}) {
    Framer f(nc, w, hop);
    auto c = run(f, data, chunk);
    const std::size_t expected = (frames - w) / hop + 1;
    CHECK(c.windows.size() == expected);
    for (std::size_t k = 0; k < c.windows.size(); ++k) {
      const std::size_t start = k * hop;
      CHECK(c.ends[k] == start + w);
      for (std::size_t ch = 0; ch < nc; ++ch)
        for (std::size_t j = 0; j < w; ++j)
          CHECK(c.windows[k][ch * w + j] == data[(start + j) * nc + ch]);
    }
  }
}

TEST_CASE("framer: 1, 2 and 3 channels (the compile-time and run-time strides) copy and flag alike") {
  const std::size_t w = 8, hop = 3, frames = 60;
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t nc : {1u, 2u, 3u}) {
    std::vector<double> data(nc * frames);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<double>(i) * 0.25 - 7.0;
    // one channel of one frame each: NaN, +inf, -inf, a double beyond float's range (inf after the
    // cast), and half of float's largest finite value (scaled to the largest: stays finite)
    const std::size_t bad_frames[] = {10, 22, 31, 44};
    data[10 * nc + (nc - 1)] = std::numeric_limits<double>::quiet_NaN();
    data[22 * nc] = inf;
    data[31 * nc + nc / 2] = -inf;
    data[44 * nc + (nc - 1)] = 1e300;
    data[50 * nc] = static_cast<double>(std::numeric_limits<float>::max() / 2);  // times scale 2: the largest
    for (std::size_t chunk : {1u, 5u, 8u, 60u}) {
      Framer f(nc, w, hop);
      auto c = run(f, data, chunk, 2.0f);
      CHECK(c.windows.size() == (frames - w) / hop + 1);
      for (std::size_t k = 0; k < c.windows.size(); ++k) {
        const std::size_t start = k * hop;
        bool want_finite = true;
        for (std::size_t b : bad_frames) want_finite = want_finite && !(b >= start && b < start + w);
        CHECK(c.finite[k] == want_finite);
        for (std::size_t ch = 0; ch < nc; ++ch)
          for (std::size_t j = 0; j < w; ++j) {
            const float got = c.windows[k][ch * w + j];
            const float want = static_cast<float>(data[(start + j) * nc + ch]) * 2.0f;
            CHECK((got == want || (std::isnan(got) && std::isnan(want))));
          }
      }
    }
  }
}

TEST_CASE("framer applies scale to int16 input") {
  Framer f(1, 4, 4);
  std::vector<std::int16_t> d = {100, -200, 300, -32768};
  auto c = run(f, d, 4, 0.5f);
  CHECK(c.windows.size() == 1);
  CHECK(c.windows[0][0] == 50.0f);
  CHECK(c.windows[0][3] == -16384.0f);
}

TEST_CASE("framer flags windows containing non-finite samples and recovers") {
  Framer f(1, 4, 2);
  std::vector<float> d(12, 1.0f);
  d[5] = std::numeric_limits<float>::quiet_NaN();
  auto c = run(f, d, 1);
  // windows end at 4, 6, 8, 10, 12 -> cover [0,4) [2,6) [4,8) [6,10) [8,12)
  CHECK(c.windows.size() == 5);
  CHECK(c.finite[0]);
  CHECK(!c.finite[1]);
  CHECK(!c.finite[2]);
  CHECK(c.finite[3]);
  CHECK(c.finite[4]);
}

TEST_CASE("framer state export and import continue the stream exactly") {
  const std::size_t nc = 2, w = 16, hop = 5, frames = 100;
  std::vector<float> data(nc * frames);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 97) - 40.0f;
  Framer ref(nc, w, hop);
  auto all = run(ref, data, 9);
  for (std::size_t cut : {0u, 3u, 15u, 16u, 17u, 40u, 63u}) {
    Framer a(nc, w, hop);
    std::vector<float> first(data.begin(), data.begin() + static_cast<long>(cut * nc));
    auto ca = run(a, first, 4);
    std::vector<float> tail(a.tail_frames() * nc);
    a.export_tail(tail.data());
    Framer b(nc, w, hop);
    b.import_tail(tail.data(), a.tail_frames(), a.frames_seen());
    std::vector<float> rest(data.begin() + static_cast<long>(cut * nc), data.end());
    auto cb = run(b, rest, 6);
    CHECK(ca.windows.size() + cb.windows.size() == all.windows.size());
    for (std::size_t k = 0; k < cb.windows.size(); ++k) {
      CHECK(cb.windows[k] == all.windows[ca.windows.size() + k]);
      CHECK(cb.ends[k] == all.ends[ca.windows.size() + k]);
    }
  }
}

TEST_CASE("framer rejects bad geometry and bad state") {
  CHECK_THROWS(Framer(0, 8, 4));
  CHECK_THROWS(Framer(1, 1, 1));
  CHECK_THROWS(Framer(1, 8, 0));
  CHECK_THROWS(Framer(1, 8, 9));
  Framer f(1, 8, 4);
  std::vector<float> t(9, 0.0f);
  CHECK_THROWS(f.import_tail(t.data(), 9, 100));
  CHECK_THROWS(f.import_tail(t.data(), 3, 100));
}

TEST_MAIN()
