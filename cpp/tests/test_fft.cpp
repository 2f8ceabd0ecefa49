// Unit tests for edgefault::ComplexFFT / RealFFT against a naive double-precision DFT.
#include "edgefault/fft.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

using edgefault::cfloat;
using cdouble = std::complex<double>;

namespace {

const std::size_t kSizes[] = {1,   2,   3,   4,   5,   6,   8,   9,   12,  15,   16,   25,   30,  60,
                              64,  100, 120, 125, 128, 240, 256, 360, 480, 512, 1000, 1024, 2048,
                              4096, 10, 18, 20, 27, 32, 40, 45, 48, 50, 75, 80, 81, 96, 150, 243,
                              375, 625, 750, 1536, 3000, 1500, 1125, 729, 3125};

const double kPi = 3.14159265358979323846;

std::vector<cdouble> naive_dft(const std::vector<cdouble>& x, int sign) {
  const std::size_t n = x.size();
  std::vector<cdouble> y(n);
  for (std::size_t k = 0; k < n; ++k) {
    cdouble acc = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t e = (j * k) % n;
      const double a = sign * 2.0 * kPi * static_cast<double>(e) / static_cast<double>(n);
      acc += x[j] * cdouble(std::cos(a), std::sin(a));
    }
    y[k] = acc;
  }
  return y;
}

std::vector<cfloat> random_complex(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<cfloat> x(n);
  for (auto& v : x) v = cfloat(d(rng), d(rng));
  return x;
}

std::vector<float> random_real(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

// Max abs error relative to the L2 norm of the reference spectrum, i.e. a scale-aware bound.
double rel_err(const std::vector<cfloat>& got, const std::vector<cdouble>& ref, std::size_t count) {
  double num = 0, den = 0;
  for (std::size_t k = 0; k < count; ++k) {
    num = std::max(num, std::abs(cdouble(got[k]) - ref[k]));
    den += std::norm(ref[k]);
  }
  return num / std::sqrt(std::max(den / static_cast<double>(count), 1e-300));
}

// float32 error grows ~ log n; 1e-5 * (1 + log2 n) / 4 is comfortably above what we see and far
// below what any indexing bug produces (O(1)).
double tol_for(std::size_t n) { return 2e-6 * (1.0 + std::log2(static_cast<double>(n))); }

}  // namespace

TEST_CASE("size support and next_fast_fft_size") {
  CHECK(!edgefault::fft_size_supported(0));
  CHECK(edgefault::fft_size_supported(1));
  CHECK(edgefault::fft_size_supported(1024));
  CHECK(edgefault::fft_size_supported(1000));
  CHECK(edgefault::fft_size_supported(2 * 3 * 5 * 7 / 7));
  CHECK(!edgefault::fft_size_supported(7));
  CHECK(!edgefault::fft_size_supported(14));
  CHECK(!edgefault::fft_size_supported(1000003));
  CHECK(edgefault::next_fast_fft_size(0) == 1);
  CHECK(edgefault::next_fast_fft_size(1) == 1);
  CHECK(edgefault::next_fast_fft_size(7) == 8);
  CHECK(edgefault::next_fast_fft_size(11) == 12);
  CHECK(edgefault::next_fast_fft_size(1000) == 1000);
  CHECK(edgefault::next_fast_fft_size(1001) == 1024);
  CHECK(edgefault::next_fast_fft_size(1025) == 1080);
  // Brute-force agreement for small n.
  for (std::size_t n = 1; n < 3000; ++n) {
    std::size_t m = n;
    while (!edgefault::fft_size_supported(m)) ++m;
    if (edgefault::next_fast_fft_size(n) != m) {
      CHECK(edgefault::next_fast_fft_size(n) == m);
      break;
    }
  }
}

TEST_CASE("fft_isa names the kernel build in use") {
  const std::string isa = edgefault::fft_isa();
  std::printf("  fft_isa: %s\n", isa.c_str());
  CHECK(isa == "avx" || isa == "base");
  const char* env = std::getenv("EDGEFAULT_FFT_ISA");
  if (env != nullptr && std::string(env) == "base") CHECK(isa == "base");
}

TEST_CASE("unsupported sizes throw invalid_argument naming n") {
  for (std::size_t n : {std::size_t{0}, std::size_t{7}, std::size_t{14}, std::size_t{1000003}}) {
    CHECK_THROWS(edgefault::ComplexFFT(n));
    CHECK_THROWS(edgefault::RealFFT(n));
    try {
      edgefault::RealFFT f(n);
      CHECK(false);
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      CHECK(msg.find("n=" + std::to_string(n)) != std::string::npos);
      CHECK(msg.find("2^a") != std::string::npos);
    }
  }
}

TEST_CASE("ComplexFFT forward/inverse vs naive DFT") {
  for (std::size_t n : kSizes) {
    auto x = random_complex(n, static_cast<std::uint32_t>(n));
    std::vector<cdouble> xd(x.begin(), x.end());
    edgefault::ComplexFFT f(n);
    CHECK(f.size() == n);
    std::vector<cfloat> y(n), z(n);
    f.forward(x.data(), y.data());
    auto ref = naive_dft(xd, -1);
    const double e = rel_err(y, ref, n);
    if (!(e < tol_for(n))) std::printf("  complex forward n=%zu err=%g\n", n, e);
    CHECK(e < tol_for(n));

    f.inverse(x.data(), z.data());
    auto iref = naive_dft(xd, +1);
    for (auto& v : iref) v /= static_cast<double>(n);
    const double ei = rel_err(z, iref, n);
    if (!(ei < tol_for(n))) std::printf("  complex inverse n=%zu err=%g\n", n, ei);
    CHECK(ei < tol_for(n));

    // Round trip.
    f.inverse(y.data(), z.data());
    double rt = 0;
    for (std::size_t j = 0; j < n; ++j) rt = std::max(rt, double(std::abs(z[j] - x[j])));
    CHECK(rt < 1e-5 * (1.0 + std::log2(static_cast<double>(n))));

    // Parseval: sum |x|^2 = sum |X|^2 / n.
    double ex = 0, ey = 0;
    for (std::size_t j = 0; j < n; ++j) {
      ex += std::norm(cdouble(x[j]));
      ey += std::norm(cdouble(y[j]));
    }
    CHECK_CLOSE(ey / static_cast<double>(n), ex, 1e-5 * ex);
  }
}

TEST_CASE("ComplexFFT in == out aliasing") {
  for (std::size_t n : {std::size_t{1}, std::size_t{12}, std::size_t{64}, std::size_t{1000},
                        std::size_t{1024}}) {
    auto x = random_complex(n, 7);
    edgefault::ComplexFFT f(n);
    std::vector<cfloat> ref(n), buf = x;
    f.forward(x.data(), ref.data());
    f.forward(buf.data(), buf.data());
    CHECK(buf == ref);
    std::vector<cfloat> iref(n);
    f.inverse(ref.data(), iref.data());
    f.inverse(buf.data(), buf.data());
    CHECK(buf == iref);
  }
}

TEST_CASE("RealFFT forward vs naive DFT, inverse round trip, Parseval") {
  for (std::size_t n : kSizes) {
    auto x = random_real(n, static_cast<std::uint32_t>(3 * n + 1));
    std::vector<cdouble> xd(x.begin(), x.end());
    edgefault::RealFFT f(n);
    CHECK(f.size() == n);
    const std::size_t nb = n / 2 + 1;
    std::vector<cfloat> y(nb);
    f.forward(x.data(), y.data());
    auto ref = naive_dft(xd, -1);
    const double e = rel_err(y, ref, nb);
    if (!(e < tol_for(n))) std::printf("  real forward n=%zu err=%g\n", n, e);
    CHECK(e < tol_for(n));
    CHECK(y[0].imag() == 0.0f);
    if (n % 2 == 0) CHECK(y[n / 2].imag() == 0.0f);

    std::vector<float> z(n);
    f.inverse(y.data(), z.data());
    double rt = 0;
    for (std::size_t j = 0; j < n; ++j) rt = std::max(rt, double(std::fabs(z[j] - x[j])));
    if (!(rt < 1e-5 * (1.0 + std::log2(static_cast<double>(n)))))
      std::printf("  real round trip n=%zu err=%g\n", n, rt);
    CHECK(rt < 1e-5 * (1.0 + std::log2(static_cast<double>(n))));

    double ex = 0, ey = 0;
    for (float v : x) ex += double(v) * double(v);
    for (std::size_t k = 0; k < nb; ++k) {
      const bool edge = k == 0 || (n % 2 == 0 && k == n / 2);
      ey += (edge ? 1.0 : 2.0) * std::norm(cdouble(y[k]));
    }
    CHECK_CLOSE(ey / static_cast<double>(n), ex, 1e-5 * ex);
  }
}

TEST_CASE("RealFFT inverse vs naive DFT and ignores DC/Nyquist imaginary parts") {
  for (std::size_t n : kSizes) {
    const std::size_t nb = n / 2 + 1;
    auto spec = random_complex(nb, static_cast<std::uint32_t>(n + 11));
    // Reference: full Hermitian spectrum with Im(DC) = Im(Nyquist) = 0.
    std::vector<cdouble> full(n);
    for (std::size_t k = 0; k < nb; ++k) {
      cdouble v(spec[k]);
      if (k == 0 || (n % 2 == 0 && k == n / 2)) v = cdouble(v.real(), 0.0);
      full[k] = v;
      if (k != 0) full[n - k] = std::conj(v);
    }
    auto ref = naive_dft(full, +1);
    edgefault::RealFFT f(n);
    std::vector<float> z(n);
    f.inverse(spec.data(), z.data());
    double num = 0, den = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const double r = ref[j].real() / static_cast<double>(n);
      num = std::max(num, std::fabs(z[j] - r));
      den += r * r;
    }
    const double e = num / std::sqrt(den / static_cast<double>(n));
    if (!(e < tol_for(n))) std::printf("  real inverse n=%zu err=%g\n", n, e);
    CHECK(e < tol_for(n));
  }
}

// RealFFT of one size against the naive DFT (forward) and an inverse round trip; with
// nyquist_real, the Nyquist bin's imaginary part must be exactly 0 too.
static void check_real_size(std::size_t n, std::uint32_t seed, bool nyquist_real, const char* what) {
  auto x = random_real(n, seed);
  std::vector<cdouble> xd(x.begin(), x.end());
  edgefault::RealFFT f(n);
  const std::size_t nb = n / 2 + 1;
  std::vector<cfloat> y(nb);
  f.forward(x.data(), y.data());
  auto ref = naive_dft(xd, -1);
  const double e = rel_err(y, ref, nb);
  if (!(e < tol_for(n))) std::printf("  %s real forward n=%zu err=%g\n", what, n, e);
  CHECK(e < tol_for(n));
  CHECK(y[0].imag() == 0.0f);
  if (nyquist_real) CHECK(y[n / 2].imag() == 0.0f);
  std::vector<float> z(n);
  f.inverse(y.data(), z.data());
  double rt = 0;
  for (std::size_t j = 0; j < n; ++j) rt = std::max(rt, double(std::fabs(z[j] - x[j])));
  CHECK(rt < 1e-5 * (1.0 + std::log2(static_cast<double>(n))));
}

// Odd n runs real-input passes (over t' while there are >= 4 sub-transforms, then over k), so
// every odd size up to 2000 is checked: each places the switch between the two kinds of pass,
// and the vector/scalar tails, differently. Inverse round trip included.
TEST_CASE("RealFFT odd sizes (real-input passes) vs naive DFT") {
  int checked = 0;
  for (std::size_t n = 1; n <= 2000; n += 2) {
    if (!edgefault::fft_size_supported(n)) continue;
    check_real_size(n, static_cast<std::uint32_t>(5 * n + 3), false, "odd");
    ++checked;
  }
  CHECK(checked == 22);  // odd 3^b 5^c <= 2000, n = 1 included
}

// n = 2 m and 4 m (m odd, n >= 60) run the odd real passes and a last radix-2 / radix-4 pass
// forward (the inverse keeps the half-length complex transform): all such n up to 2000.
TEST_CASE("RealFFT 2*odd and 4*odd sizes vs naive DFT") {
  int checked = 0;
  for (std::size_t n = 2; n <= 2000; n += 2) {
    if (!edgefault::fft_size_supported(n) || n % 8 == 0) continue;
    check_real_size(n, static_cast<std::uint32_t>(7 * n + 1), true, "2/4*odd");
    ++checked;
  }
  CHECK(checked == 35);  // 2 m and 4 m, m odd 3^b 5^c, n <= 2000 (n = 2, 4 included)
}

TEST_CASE("impulse and constant inputs are exact") {
  for (std::size_t n : {std::size_t{16}, std::size_t{1024}, std::size_t{360}, std::size_t{375},
                        std::size_t{3125}, std::size_t{256}, std::size_t{750},
                        std::size_t{1500}}) {
    std::vector<float> x(n, 0.0f);
    x[0] = 1.0f;
    edgefault::RealFFT f(n);
    std::vector<cfloat> y(n / 2 + 1);
    f.forward(x.data(), y.data());
    bool ok = true;
    for (auto v : y) ok = ok && std::abs(v - cfloat(1.0f, 0.0f)) < 1e-6f;
    CHECK(ok);
    std::fill(x.begin(), x.end(), 2.0f);
    f.forward(x.data(), y.data());
    CHECK_CLOSE(y[0].real(), 2.0 * static_cast<double>(n), 1e-3);
    double rest = 0;
    for (std::size_t k = 1; k < y.size(); ++k) rest = std::max(rest, double(std::abs(y[k])));
    CHECK(rest < 1e-3);
  }
}

TEST_CASE("moved-from objects and independent objects per thread") {
  edgefault::RealFFT a(1024);
  edgefault::RealFFT b(std::move(a));
  CHECK(b.size() == 1024);
  CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): documented moved-from state

  auto x = random_real(1024, 99);
  std::vector<cfloat> ref(513);
  b.forward(x.data(), ref.data());
  std::vector<int> ok(4, 0);
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      edgefault::RealFFT f(1024);  // tables come from the shared cache
      std::vector<cfloat> y(513);
      bool good = true;
      for (int rep = 0; rep < 200; ++rep) {
        f.forward(x.data(), y.data());
        good = good && y == ref;
      }
      ok[static_cast<std::size_t>(t)] = good ? 1 : 0;
    });
  for (auto& t : th) t.join();
  CHECK(std::count(ok.begin(), ok.end(), 1) == 4);
}

TEST_MAIN()
