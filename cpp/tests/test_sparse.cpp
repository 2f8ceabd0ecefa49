// Unit tests for the sparse-coding kernels (OMP, index tree prox, tree group lasso).
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "edgefault/sparse.hpp"
#include "harness.hpp"

using edgefault::DictProduct;
using edgefault::IndexTreeNorm;
using edgefault::OmpCoder;
using edgefault::TreeLassoCoder;

namespace {

// n_features x n_atoms, unit-norm columns, Gaussian entries.
std::vector<float> random_dict(std::size_t nf, std::size_t na, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> d(nf * na);
  for (auto& v : d) v = nd(rng);
  for (std::size_t j = 0; j < na; ++j) {
    double s = 0.0;
    for (std::size_t f = 0; f < nf; ++f) s += double(d[f * na + j]) * d[f * na + j];
    const float inv = float(1.0 / std::sqrt(s));
    for (std::size_t f = 0; f < nf; ++f) d[f * na + j] *= inv;
  }
  return d;
}

std::string what_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

double resid2(const std::vector<float>& d, std::size_t nf, std::size_t na, const float* x, const float* code) {
  double s = 0.0;
  for (std::size_t f = 0; f < nf; ++f) {
    double r = x[f];
    for (std::size_t j = 0; j < na; ++j) r -= double(d[f * na + j]) * code[j];
    s += r * r;
  }
  return s;
}

}  // namespace

TEST_CASE("dict product matches a double reference for every block size") {
  const std::size_t nf = 37, na = 21;
  auto d = random_dict(nf, na, 1);
  DictProduct p(d.data(), nf, na);
  CHECK(p.padded_atoms() == 32);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  for (std::size_t rows = 1; rows <= p.block_rows(); ++rows) {
    std::vector<float> x(rows * nf), out(p.block_rows() * p.padded_atoms()), pad(p.block_rows() * nf);
    for (auto& v : x) v = nd(rng);
    p.apply(x.data(), rows, out.data(), pad.data());
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < na; ++j) {
        double s = 0.0;
        for (std::size_t f = 0; f < nf; ++f) s += double(x[i * nf + f]) * d[f * na + j];
        CHECK_CLOSE(out[i * p.padded_atoms() + j], s, 1e-4);
      }
  }
}

TEST_CASE("omp recovers a k-sparse signal exactly") {
  const std::size_t nf = 64, na = 40, k = 5;
  auto d = random_dict(nf, na, 3);
  OmpCoder omp(d.data(), nf, na, k);
  const std::size_t support[k] = {3, 11, 17, 29, 38};
  const float coef[k] = {1.5f, -2.0f, 0.8f, 1.1f, -1.3f};
  std::vector<float> x(nf, 0.0f);
  for (std::size_t s = 0; s < k; ++s)
    for (std::size_t f = 0; f < nf; ++f) x[f] += coef[s] * d[f * na + support[s]];
  std::vector<float> code(na);
  float r2 = -1;
  std::int32_t nact = -1;
  omp.encode(x.data(), 1, k, -1.0f, code.data(), &r2, &nact);
  CHECK(nact == 5);
  for (std::size_t s = 0; s < k; ++s) CHECK_CLOSE(code[support[s]], coef[s], 1e-4);
  double total = 0;
  for (float c : code) total += std::fabs(c);
  CHECK_CLOSE(total, 1.5 + 2.0 + 0.8 + 1.1 + 1.3, 1e-3);
  CHECK(r2 < 1e-5f);
}

TEST_CASE("omp residual is non-increasing in k and matches the reported value") {
  const std::size_t nf = 50, na = 30, n = 9;
  auto d = random_dict(nf, na, 4);
  OmpCoder omp(d.data(), nf, na, 20);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> x(n * nf);
  for (auto& v : x) v = nd(rng);
  std::vector<float> prev(n, 1e30f), code(n * na), r2(n);
  for (std::size_t k = 1; k <= 20; ++k) {
    omp.encode(x.data(), n, k, -1.0f, code.data(), r2.data(), nullptr);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(r2[i] <= prev[i] * (1 + 1e-5f) + 1e-6f);
      CHECK_CLOSE(r2[i], resid2(d, nf, na, &x[i * nf], &code[i * na]), 1e-3 * (1 + r2[i]));
      prev[i] = r2[i];
    }
  }
}

TEST_CASE("omp tol stops at the first residual <= tol") {
  const std::size_t nf = 40, na = 25;
  auto d = random_dict(nf, na, 6);
  OmpCoder omp(d.data(), nf, na, 25);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<float> x(nf);
  for (auto& v : x) v = nd(rng);
  std::vector<float> code(na), rk(26);
  for (std::size_t k = 1; k <= 25; ++k) omp.encode(x.data(), 1, k, -1.0f, code.data(), &rk[k], nullptr);
  const float tol = 0.5f * (rk[4] + rk[5]);  // strictly between residuals after 4 and 5 atoms
  std::int32_t nact = 0;
  float r2 = 0;
  omp.encode(x.data(), 1, 25, tol, code.data(), &r2, &nact);
  CHECK(nact == 5);
  CHECK(r2 <= tol);
  // zero signal: nothing selected
  std::vector<float> z(nf, 0.0f);
  omp.encode(z.data(), 1, 3, -1.0f, code.data(), &r2, &nact);
  CHECK(nact == 0);
  CHECK(r2 == 0.0f);
}

TEST_CASE("omp bad input names the offending entry") {
  const std::size_t nf = 8, na = 5;
  auto d = random_dict(nf, na, 8);
  auto z = d;
  for (std::size_t f = 0; f < nf; ++f) z[f * na + 3] = 0.0f;
  CHECK(contains(what_of([&] { OmpCoder(z.data(), nf, na, 2); }), "atom (column) 3 is zero"));
  auto dup = d;
  for (std::size_t f = 0; f < nf; ++f) dup[f * na + 4] = -d[f * na + 1];
  CHECK(contains(what_of([&] { OmpCoder(dup.data(), nf, na, 2); }), "1 and 4 are duplicates"));
  OmpCoder ok(dup.data(), nf, na, 2, true);  // allowed with the flag
  CHECK(ok.n_atoms() == na);
  auto nonunit = d;
  for (std::size_t f = 0; f < nf; ++f) nonunit[f * na + 2] *= 2.0f;
  CHECK(contains(what_of([&] { OmpCoder(nonunit.data(), nf, na, 2); }), "column) 2 has norm 2"));
  auto nan = d;
  nan[6 * na + 1] = std::nanf("");
  CHECK(contains(what_of([&] { OmpCoder(nan.data(), nf, na, 2); }), "row 6, column (atom) 1"));
  CHECK(contains(what_of([&] { OmpCoder(d.data(), nf, na, 6); }), "larger than the number of atoms"));
  CHECK(contains(what_of([&] { OmpCoder(d.data(), nf, na, 0); }), ">= 1"));
  auto wide = random_dict(4, 10, 9);
  CHECK(contains(what_of([&] { OmpCoder(wide.data(), 4, 10, 5); }), "number of features"));
  OmpCoder omp(d.data(), nf, na, 3);
  std::vector<float> x(3 * nf, 0.1f), code(3 * na, 7.0f);
  x[2 * nf + 5] = INFINITY;
  CHECK(contains(what_of([&] { omp.encode(x.data(), 3, 2, -1.0f, code.data(), nullptr, nullptr); }), "signal row 2"));
  CHECK(code[0] == 7.0f);  // nothing written before the error
  CHECK_THROWS(omp.encode(x.data(), 1, 4, -1.0f, code.data(), nullptr, nullptr));
  CHECK_THROWS(omp.encode(x.data(), 1, 0, -1.0f, code.data(), nullptr, nullptr));
}

namespace {
// Tree: 0 root {atom 0}; 1 child of 0 {1, 2}; 2 child of 0 {3}; 3 child of 1 {4, 5}.
const std::int32_t kParent[4] = {-1, 0, 0, 1};
const std::int32_t kAtomNode[6] = {0, 1, 1, 2, 3, 3};
const float kWeights[4] = {1.0f, 0.5f, 2.0f, 0.25f};

// groups by node: 0 {0..5}, 1 {1,2,4,5}, 2 {3}, 3 {4,5}
std::vector<float> prox_reference(std::vector<float> v, float t) {
  const std::vector<std::vector<int>> groups = {{4, 5}, {1, 2, 4, 5}, {3}, {0, 1, 2, 3, 4, 5}};
  const float w[4] = {0.25f, 0.5f, 2.0f, 1.0f};
  for (std::size_t g = 0; g < 4; ++g) {
    double s = 0;
    for (int i : groups[g]) s += double(v[std::size_t(i)]) * v[std::size_t(i)];
    const double nrm = std::sqrt(s), thr = t * w[g];
    for (int i : groups[g]) v[std::size_t(i)] = nrm <= thr ? 0.0f : float(v[std::size_t(i)] * (1 - thr / nrm));
  }
  return v;
}
}  // namespace

TEST_CASE("tree prox equals the sequential group shrinkage, is idempotent on its output's fixed points") {
  IndexTreeNorm tree(kParent, 4, kAtomNode, 6, kWeights);
  CHECK(tree.n_nodes() == 4);
  std::mt19937 rng(10);
  std::normal_distribution<float> nd;
  std::vector<float> v(6), out(6), scratch(6), out2(6), zero(6, 0.0f);
  for (int rep = 0; rep < 50; ++rep) {
    for (auto& a : v) a = 2.0f * nd(rng);
    const float t = 0.1f + 0.05f * float(rep % 10);
    tree.prox(v.data(), t, out.data(), scratch.data());
    auto ref = prox_reference(v, t);
    for (std::size_t i = 0; i < 6; ++i) CHECK_CLOSE(out[i], ref[i], 1e-5);
  }
  tree.prox(zero.data(), 1.0f, out.data(), scratch.data());
  for (float a : out) CHECK(a == 0.0f);
  // t = 0 is the identity
  for (auto& a : v) a = nd(rng);
  tree.prox(v.data(), 0.0f, out.data(), scratch.data());
  for (std::size_t i = 0; i < 6; ++i) CHECK(out[i] == v[i]);
  // value
  for (std::size_t i = 0; i < 6; ++i) v[i] = float(i + 1);
  const double expect = 1.0 * std::sqrt(91.0) + 0.5 * std::sqrt(4.0 + 9 + 25 + 36) + 2.0 * 4.0 + 0.25 * std::sqrt(61.0);
  CHECK_CLOSE(tree.value(v.data()), expect, 1e-4);
}

TEST_CASE("tree prox: nested singleton groups on one atom and runs of leaves") {
  // 0 root {a0, a1} w 0.5; 1 {a0} w 1; 2 child of 1 {a0} w 2: a0 is soft-thresholded by 2, then 1
  const std::int32_t parent[3] = {-1, 0, 1};
  const std::int32_t atom_node[2] = {2, 0};
  const float w[3] = {0.5f, 1.0f, 2.0f};
  IndexTreeNorm tree(parent, 3, atom_node, 2, w);
  float v[2] = {3.5f, 1.0f}, out[2], scratch[2];
  tree.prox(v, 1.0f, out, scratch);
  const double root = 0.5 / std::sqrt(0.25 + 1.0);  // [0.5, 1] shrunk by 0.5 in norm
  CHECK_CLOSE(out[0], 0.5 * (1 - root), 1e-6);
  CHECK_CLOSE(out[1], 1.0 * (1 - root), 1e-6);
  // leaves 1..4 under node 0 (w 0): elementwise soft-threshold with their own weights
  const std::int32_t p2[5] = {-1, 0, 0, 0, 0};
  const std::int32_t a2[4] = {1, 2, 3, 4};
  const float w2[5] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f};
  IndexTreeNorm leaves(p2, 5, a2, 4, w2);
  float u[4] = {1.0f, -1.0f, 2.0f, -3.0f}, o[4], sc[4];
  leaves.prox(u, 1.0f, o, sc);
  CHECK_CLOSE(o[0], 0.5, 1e-7);
  CHECK(o[1] == 0.0f);
  CHECK_CLOSE(o[2], 0.5, 1e-7);
  CHECK_CLOSE(o[3], -1.0, 1e-7);
}

TEST_CASE("tree validation: not a tree names the nodes") {
  const float w[4] = {1, 1, 1, 1};
  const std::int32_t an[2] = {0, 1};
  const std::int32_t cyc[4] = {-1, 2, 3, 1};
  std::string e = what_of([&] { IndexTreeNorm(cyc, 4, an, 2, w); });
  CHECK(contains(e, "not a tree") && contains(e, "cycle") && contains(e, "1 -> 2 -> 3 -> 1"));
  const std::int32_t two[4] = {-1, 0, -1, 2};
  e = what_of([&] { IndexTreeNorm(two, 4, an, 2, w); });
  CHECK(contains(e, "not a tree") && contains(e, "nodes 0, 2"));
  const std::int32_t self[2] = {-1, 1};
  CHECK(contains(what_of([&] { IndexTreeNorm(self, 2, an, 2, w); }), "cycle through nodes 1 -> 1"));
  const std::int32_t none[2] = {1, 0};
  CHECK(contains(what_of([&] { IndexTreeNorm(none, 2, an, 2, w); }), "not a tree"));
  const std::int32_t oob[2] = {-1, 7};
  CHECK(contains(what_of([&] { IndexTreeNorm(oob, 2, an, 2, w); }), "parent[1]=7"));
  const std::int32_t ok[2] = {-1, 0};
  const std::int32_t badatom[2] = {0, 2};
  CHECK(contains(what_of([&] { IndexTreeNorm(ok, 2, badatom, 2, w); }), "atom_node[1]=2"));
  const float negw[2] = {1.0f, -1.0f};
  CHECK(contains(what_of([&] { IndexTreeNorm(ok, 2, an, 2, negw); }), "weight of node 1"));
}

TEST_CASE("tree lasso: fixed point of the prox-gradient map, lam=0 least squares, huge lam zero") {
  const std::size_t nf = 20, na = 6, n = 4;
  auto d = random_dict(nf, na, 11);
  IndexTreeNorm tree(kParent, 4, kAtomNode, na, kWeights);
  TreeLassoCoder coder(d.data(), nf, na, tree);
  std::mt19937 rng(12);
  std::normal_distribution<float> nd;
  std::vector<float> x(n * nf);
  for (auto& v : x) v = nd(rng);
  std::vector<float> code(n * na);
  std::vector<std::int32_t> iters(n);
  const float lam = 0.3f;
  coder.encode(x.data(), n, lam, 5000, 1e-7f, nullptr, code.data(), iters.data());
  const float L = coder.lipschitz();
  std::vector<float> u(na), p(na), scratch(na);
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(iters[i] >= 1 && iters[i] < 5000);
    const float* a = &code[i * na];
    for (std::size_t j = 0; j < na; ++j) {  // u = a - (D^T (D a - x)) / L
      double gj = 0;
      for (std::size_t f = 0; f < nf; ++f) {
        double r = -x[i * nf + f];
        for (std::size_t m = 0; m < na; ++m) r += double(d[f * na + m]) * a[m];
        gj += double(d[f * na + j]) * r;
      }
      u[j] = float(a[j] - gj / L);
    }
    tree.prox(u.data(), lam / L, p.data(), scratch.data());
    for (std::size_t j = 0; j < na; ++j) CHECK_CLOSE(p[j], a[j], 1e-4);
  }
  // warm start from the solution converges immediately
  std::vector<float> again(n * na);
  coder.encode(x.data(), n, lam, 5000, 1e-4f, code.data(), again.data(), iters.data());
  for (std::size_t i = 0; i < n; ++i) CHECK(iters[i] <= 3);
  // huge lambda: all zero
  coder.encode(x.data(), n, 1e6f, 100, 1e-6f, nullptr, code.data(), iters.data());
  for (float c : code) CHECK(c == 0.0f);
  // bad input
  CHECK_THROWS(coder.encode(x.data(), n, -1.0f, 10, 1e-4f, nullptr, code.data(), nullptr));
  CHECK_THROWS(coder.encode(x.data(), n, 1.0f, 0, 1e-4f, nullptr, code.data(), nullptr));
  CHECK_THROWS(coder.encode(x.data(), n, 1.0f, 10, -1e-4f, nullptr, code.data(), nullptr));
  x[3 * nf + 2] = NAN;
  CHECK(contains(what_of([&] { coder.encode(x.data(), n, 1.0f, 10, 1e-4f, nullptr, code.data(), nullptr); }),
                 "signal row 3"));
  std::vector<float> zero(nf * na, 0.0f);
  CHECK(contains(what_of([&] { TreeLassoCoder(zero.data(), nf, na, tree); }), "all zeros"));
  CHECK(contains(what_of([&] { TreeLassoCoder(d.data(), nf * na / 5, 5, tree); }), "covers 6 atoms"));
}

TEST_CASE("portable kernels: every case above again") {
  edgefault::sparse_allow_simd(false);
  CHECK(!edgefault::sparse_simd_active());
  const auto d = random_dict(8, 4, 1);
  CHECK(!OmpCoder(d.data(), 8, 4, 2).uses_avx2());
  for (auto& c : eftest::registry())
    if (std::string(c.name).rfind("portable", 0) != 0) c.fn();
  edgefault::sparse_allow_simd(true);
}

TEST_MAIN()
