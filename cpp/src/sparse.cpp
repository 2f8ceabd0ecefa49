#include "edgefault/sparse.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace edgefault {

namespace {

constexpr std::size_t kPanel = 16;  // atoms per packed panel

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void check_dictionary_finite(const char* who, const float* d, std::size_t nf, std::size_t na) {
  if (nf == 0 || na == 0)
    throw std::invalid_argument(std::string(who) + ": dictionary must be non-empty, got shape (" +
                                std::to_string(nf) + ", " + std::to_string(na) + ")");
  for (std::size_t f = 0; f < nf; ++f)
    for (std::size_t j = 0; j < na; ++j)
      if (!std::isfinite(d[f * na + j]))
        throw std::invalid_argument(std::string(who) + ": dictionary has a non-finite value at row " +
                                    std::to_string(f) + ", column (atom) " + std::to_string(j));
}

void check_rows_finite(const char* who, const char* what, const float* x, std::size_t n, std::size_t d) {
  for (std::size_t r = 0; r < n; ++r) {
    const float* row = x + r * d;
    for (std::size_t c = 0; c < d; ++c)
      if (!std::isfinite(row[c]))
        throw std::invalid_argument(std::string(who) + ": " + what + " row " + std::to_string(r) +
                                    " has a non-finite value (column " + std::to_string(c) + ")");
  }
}

// G = D^T D accumulated in double. g[i * na + j].
std::vector<double> gram_double(const float* d, std::size_t nf, std::size_t na) {
  std::vector<double> g(na * na, 0.0);
  std::vector<double> row(na);
  for (std::size_t f = 0; f < nf; ++f) {
    for (std::size_t j = 0; j < na; ++j) row[j] = d[f * na + j];
    for (std::size_t i = 0; i < na; ++i) {
      const double ri = row[i];
      if (ri == 0.0) continue;
      double* gi = g.data() + i * na;
      for (std::size_t j = 0; j < na; ++j) gi[j] += ri * row[j];
    }
  }
  return g;
}

// ---- D^T X micro-kernel -------------------------------------------------------------------
#if defined(__GNUC__)
typedef float v8f __attribute__((vector_size(32)));

template <std::size_t MR>
__attribute__((always_inline)) inline void product_kernel(const float* x, std::size_t nf,
                                                          const float* packed, std::size_t npanels,
                                                          float* out, std::size_t ldo) {
  for (std::size_t p = 0; p < npanels; ++p) {
    const float* b = packed + p * nf * kPanel;
    v8f acc[MR][2];
    for (std::size_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = v8f{};
    for (std::size_t f = 0; f < nf; ++f) {
      v8f b0, b1;
      std::memcpy(&b0, b + f * kPanel, sizeof b0);
      std::memcpy(&b1, b + f * kPanel + 8, sizeof b1);
      for (std::size_t i = 0; i < MR; ++i) {
        const float xv = x[i * nf + f];
        acc[i][0] += xv * b0;
        acc[i][1] += xv * b1;
      }
    }
    for (std::size_t i = 0; i < MR; ++i) {
      std::memcpy(out + i * ldo + p * kPanel, &acc[i][0], sizeof(v8f));
      std::memcpy(out + i * ldo + p * kPanel + 8, &acc[i][1], sizeof(v8f));
    }
  }
}

#if defined(__aarch64__)
constexpr std::size_t kGenericRows = 4;  // 32 vector registers
#else
constexpr std::size_t kGenericRows = 2;  // SSE2: a v8f is two xmm registers, 16 in all
#endif

void product_generic(const float* x, std::size_t nf, const float* packed, std::size_t npanels,
                     float* out, std::size_t ldo) {
  product_kernel<kGenericRows>(x, nf, packed, npanels, out, ldo);
}

#if defined(__x86_64__) || defined(__i386__)
#define EDGEFAULT_SPARSE_AVX2 1
constexpr std::size_t kAvx2Rows = 6;  // 12 ymm accumulators + 2 panel rows + 1 broadcast
__attribute__((target("avx2,fma"))) void product_avx2(const float* x, std::size_t nf,
                                                      const float* packed, std::size_t npanels,
                                                      float* out, std::size_t ldo) {
  product_kernel<kAvx2Rows>(x, nf, packed, npanels, out, ldo);
}
bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

#else  // not GCC/Clang: plain loops
constexpr std::size_t kGenericRows = 1;
void product_generic(const float* x, std::size_t nf, const float* packed, std::size_t npanels,
                     float* out, std::size_t ldo) {
  for (std::size_t p = 0; p < npanels; ++p) {
    float acc[kPanel] = {};
    const float* b = packed + p * nf * kPanel;
    for (std::size_t f = 0; f < nf; ++f)
      for (std::size_t j = 0; j < kPanel; ++j) acc[j] += x[f] * b[f * kPanel + j];
    std::memcpy(out + p * kPanel, acc, sizeof acc);
  }
  (void)ldo;
}
#endif


// max_i |a_i|: four independent scalar chains (vector selects compile poorly on plain SSE2).
float max_abs(const float* a, std::size_t n) noexcept {
  float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, m3 = 0.0f;
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    m0 = std::max(m0, std::fabs(a[j]));
    m1 = std::max(m1, std::fabs(a[j + 1]));
    m2 = std::max(m2, std::fabs(a[j + 2]));
    m3 = std::max(m3, std::fabs(a[j + 3]));
  }
  for (; j < n; ++j) m0 = std::max(m0, std::fabs(a[j]));
  return std::max(std::max(m0, m1), std::max(m2, m3));
}

// sum of squares: 16 float lanes, folded in double (relative error ~1e-7 for n in the thousands).
double sum_squares(const float* a, std::size_t n) noexcept {
  std::size_t j = 0;
  double s = 0.0;
#if defined(__GNUC__)
  v8f s0 = v8f{}, s1 = v8f{};
  for (; j + 16 <= n; j += 16) {
    v8f u, v;
    std::memcpy(&u, a + j, sizeof u);
    std::memcpy(&v, a + j + 8, sizeof v);
    s0 += u * u;
    s1 += v * v;
  }
  for (int l = 0; l < 8; ++l) s += static_cast<double>(s0[l]) + static_cast<double>(s1[l]);
#endif
  for (; j < n; ++j) s += static_cast<double>(a[j]) * a[j];
  return s;
}
}  // namespace

// ---- DictProduct ----------------------------------------------------------------------------

DictProduct::DictProduct(const float* dictionary, std::size_t n_features, std::size_t n_atoms)
    : nf_(n_features), na_(n_atoms) {
  const std::size_t npanels = (na_ + kPanel - 1) / kPanel;
  nap_ = npanels * kPanel;
  packed_.assign(npanels * nf_ * kPanel, 0.0f);
  for (std::size_t p = 0; p < npanels; ++p)
    for (std::size_t f = 0; f < nf_; ++f)
      for (std::size_t j = 0; j < kPanel && p * kPanel + j < na_; ++j)
        packed_[(p * nf_ + f) * kPanel + j] = dictionary[f * na_ + p * kPanel + j];
  mr_ = kGenericRows;
#ifdef EDGEFAULT_SPARSE_AVX2
  if (cpu_has_avx2_fma()) {
    avx2_ = true;
    mr_ = kAvx2Rows;
  }
#endif
}

void DictProduct::apply(const float* x, std::size_t rows, float* out, float* xpad) const noexcept {
  const float* src = x;
  if (rows < mr_) {
    std::memcpy(xpad, x, rows * nf_ * sizeof(float));
    std::memset(xpad + rows * nf_, 0, (mr_ - rows) * nf_ * sizeof(float));
    src = xpad;
  }
  const std::size_t npanels = nap_ / kPanel;
#ifdef EDGEFAULT_SPARSE_AVX2
  if (avx2_) {
    product_avx2(src, nf_, packed_.data(), npanels, out, nap_);
    return;
  }
#endif
#if defined(__GNUC__)
  product_generic(src, nf_, packed_.data(), npanels, out, nap_);
#else
  for (std::size_t i = 0; i < mr_; ++i) product_generic(src + i * nf_, nf_, packed_.data(), npanels, out + i * nap_, nap_);
#endif
}

// ---- OMP ------------------------------------------------------------------------------------

OmpCoder::OmpCoder(const float* dictionary, std::size_t n_features, std::size_t n_atoms, std::size_t max_k,
                   bool allow_duplicates)
    : max_k_(max_k) {
  check_dictionary_finite("OMP", dictionary, n_features, n_atoms);
  if (max_k == 0) throw std::invalid_argument("OMP: k (n_nonzero_coefs) must be >= 1, got 0");
  if (max_k > n_atoms)
    throw std::invalid_argument("OMP: k=" + std::to_string(max_k) + " is larger than the number of atoms (" +
                                std::to_string(n_atoms) + ")");
  if (max_k > n_features)
    throw std::invalid_argument("OMP: k=" + std::to_string(max_k) + " is larger than the number of features (" +
                                std::to_string(n_features) + "); at most n_features atoms are independent");
  const std::vector<double> g = gram_double(dictionary, n_features, n_atoms);
  for (std::size_t j = 0; j < n_atoms; ++j) {
    const double nrm = std::sqrt(g[j * n_atoms + j]);
    if (nrm == 0.0)
      throw std::invalid_argument("OMP: dictionary atom (column) " + std::to_string(j) + " is zero");
    if (std::fabs(nrm - 1.0) > 1e-3)
      throw std::invalid_argument("OMP: dictionary atom (column) " + std::to_string(j) + " has norm " + num(nrm) +
                                  "; atoms must be unit-norm (normalise the columns)");
  }
  if (!allow_duplicates) {
    for (std::size_t i = 0; i < n_atoms; ++i)
      for (std::size_t j = i + 1; j < n_atoms; ++j) {
        const double c = g[i * n_atoms + j] / std::sqrt(g[i * n_atoms + i] * g[j * n_atoms + j]);
        if (std::fabs(c) > 1.0 - 1e-6)
          throw std::invalid_argument("OMP: dictionary atoms (columns) " + std::to_string(i) + " and " +
                                      std::to_string(j) + " are duplicates (|cosine| = " + num(std::fabs(c)) +
                                      " > 1 - 1e-6); pass allow_duplicates=True to accept them");
      }
  }
  prod_ = DictProduct(dictionary, n_features, n_atoms);
  gram_.assign(g.begin(), g.end());
  block_.assign(prod_.block_rows() * prod_.padded_atoms(), 0.0f);
  xpad_.assign(prod_.block_rows() * n_features, 0.0f);
  alpha_.assign(n_atoms, 0.0f);
  chol_.assign(max_k * max_k, 0.0);
  gamma_.assign(max_k, 0.0);
  z_.assign(max_k, 0.0);
  w_.assign(max_k, 0.0);
  active_.assign(max_k, 0);
  vdir_.assign(max_k * n_atoms, 0.0f);
}

void OmpCoder::encode(const float* x, std::size_t n, std::size_t k, float tol, float* codes, float* resid_sq,
                      std::int32_t* n_active) {
  if (k == 0 || k > max_k_)
    throw std::invalid_argument("OMP: k must be in [1, " + std::to_string(max_k_) + "] for this coder, got " +
                                std::to_string(k));
  if (std::isnan(tol)) throw std::invalid_argument("OMP: tol must not be NaN");
  const std::size_t nf = n_features(), na = n_atoms(), mr = prod_.block_rows(), nap = prod_.padded_atoms();
  check_rows_finite("OMP", "signal", x, n, nf);
  for (std::size_t r0 = 0; r0 < n; r0 += mr) {
    const std::size_t rows = std::min(mr, n - r0);
    prod_.apply(x + r0 * nf, rows, block_.data(), xpad_.data());
    for (std::size_t i = 0; i < rows; ++i) {
      const float* xi = x + (r0 + i) * nf;
      encode_one(block_.data() + i * nap, sum_squares(xi, nf), k, static_cast<double>(tol), codes + (r0 + i) * na,
                 resid_sq ? resid_sq + r0 + i : nullptr, n_active ? n_active + r0 + i : nullptr);
    }
  }
}

void OmpCoder::encode_one(const float* alpha0, double xnorm2, std::size_t k, double tol, float* code,
                          float* resid_sq, std::int32_t* n_active) noexcept {
  // Orthogonal form of the Cholesky update: with L L^T = G_II, the s-th orthonormalised atom
  // q_s has D^T q_s = V_s = (G[best, :] - sum_{j<s} L[s, j] V_j) / L[s, s] and coefficient
  // z_s = q_s^T x (forward substitution), so alpha = D^T r loses z_s V_s and ||r||^2 loses z_s^2.
  // gamma = L^{-T} z is solved once at the end.
  const std::size_t na = n_atoms(), mk = max_k_;
  const float* g = gram_.data();
  float* alpha = alpha_.data();
  float* V = vdir_.data();
  double* L = chol_.data();
  std::memcpy(alpha, alpha0, na * sizeof(float));
  std::size_t s = 0;  // active atoms
  double eps = xnorm2;
  const bool use_tol = tol >= 0.0;
  while (s < k && !(use_tol && eps <= tol)) {
    // greedy selection: largest |alpha| (active atoms are zeroed), lowest index on ties
    const float bv = max_abs(alpha, na);
    if (static_cast<double>(bv) * bv <= 1e-30 * std::max(xnorm2, 1e-30)) break;
    std::size_t best = 0;
    while (std::fabs(alpha[best]) != bv) ++best;
    // Cholesky update: L_new = [L 0; w^T sqrt(g_bb - w^T w)], L w = G[I, best]
    double wn = 0.0;
    for (std::size_t i = 0; i < s; ++i) {
      double v = g[static_cast<std::size_t>(active_[i]) * na + best];
      for (std::size_t j = 0; j < i; ++j) v -= L[i * mk + j] * w_[j];
      v /= L[i * mk + i];
      w_[i] = v;
      wn += v * v;
    }
    const double gbb = g[best * na + best];
    const double d = gbb - wn;
    if (!(d > 1e-6 * gbb)) break;  // best is (numerically) in the span of the active atoms
    const double lss = std::sqrt(d);
    for (std::size_t j = 0; j < s; ++j) L[s * mk + j] = w_[j];
    L[s * mk + s] = lss;
    double zs = alpha0[best];
    for (std::size_t j = 0; j < s; ++j) zs -= w_[j] * z_[j];
    zs /= lss;
    z_[s] = zs;
    // V_s and the correlation update
    float* vs = V + s * na;
    std::memcpy(vs, g + best * na, na * sizeof(float));
    for (std::size_t j = 0; j < s; ++j) {
      const float c = static_cast<float>(w_[j]);
      const float* vj = V + j * na;
      for (std::size_t m = 0; m < na; ++m) vs[m] -= c * vj[m];
    }
    const float inv = static_cast<float>(1.0 / lss), zf = static_cast<float>(zs);
    for (std::size_t m = 0; m < na; ++m) {
      vs[m] *= inv;
      alpha[m] -= zf * vs[m];
    }
    active_[s] = static_cast<std::int32_t>(best);
    ++s;
    for (std::size_t i = 0; i < s; ++i) alpha[active_[i]] = 0.0f;
    eps -= zs * zs;
  }
  // back substitution L^T gamma = z
  for (std::size_t ii = s; ii-- > 0;) {
    double v = z_[ii];
    for (std::size_t j = ii + 1; j < s; ++j) v -= L[j * mk + ii] * gamma_[j];
    gamma_[ii] = v / L[ii * mk + ii];
  }
  std::memset(code, 0, na * sizeof(float));
  for (std::size_t i = 0; i < s; ++i) code[active_[i]] = static_cast<float>(gamma_[i]);
  if (resid_sq) *resid_sq = static_cast<float>(std::max(eps, 0.0));
  if (n_active) *n_active = static_cast<std::int32_t>(s);
}
// ---- Index tree -----------------------------------------------------------------------------

IndexTreeNorm::IndexTreeNorm(const std::int32_t* parent, std::size_t n_nodes, const std::int32_t* atom_node,
                             std::size_t n_atoms, const float* weights) {
  if (n_nodes == 0) throw std::invalid_argument("tree: not a tree: no nodes");
  if (n_atoms == 0) throw std::invalid_argument("tree: no atoms");
  const auto nn = static_cast<std::int64_t>(n_nodes);
  std::vector<std::int32_t> roots;
  for (std::size_t v = 0; v < n_nodes; ++v) {
    const std::int32_t p = parent[v];
    if (p < -1 || p >= nn)
      throw std::invalid_argument("tree: not a tree: parent[" + std::to_string(v) + "]=" + std::to_string(p) +
                                  " is out of range (expected -1 for the root or a node in [0, " +
                                  std::to_string(n_nodes) + "))");
    if (p == -1) roots.push_back(static_cast<std::int32_t>(v));
  }
  auto list = [](const std::vector<std::int32_t>& v, std::size_t maxn = 10) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < maxn; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    if (v.size() > maxn) s += ", ...";
    return s;
  };
  // cycles: walk up from every node; colour 1 = on the current path, 2 = reaches a root
  std::vector<unsigned char> colour(n_nodes, 0);
  std::vector<std::int32_t> path;
  for (std::size_t v0 = 0; v0 < n_nodes; ++v0) {
    path.clear();
    std::int32_t v = static_cast<std::int32_t>(v0);
    while (v != -1 && colour[static_cast<std::size_t>(v)] == 0) {
      colour[static_cast<std::size_t>(v)] = 1;
      path.push_back(v);
      v = parent[v];
    }
    if (v != -1 && colour[static_cast<std::size_t>(v)] == 1) {
      std::vector<std::int32_t> cyc;
      auto it = std::find(path.begin(), path.end(), v);
      cyc.assign(it, path.end());
      cyc.push_back(v);
      std::string s;
      for (std::size_t i = 0; i < cyc.size(); ++i) s += (i ? " -> " : "") + std::to_string(cyc[i]);
      throw std::invalid_argument("tree: not a tree: cycle through nodes " + s);
    }
    for (std::int32_t u : path) colour[static_cast<std::size_t>(u)] = 2;
  }
  if (roots.size() != 1)
    throw std::invalid_argument("tree: not a tree: expected exactly one root (parent -1), found " +
                                std::to_string(roots.size()) + (roots.empty() ? "" : " (nodes " + list(roots) + ")"));
  for (std::size_t v = 0; v < n_nodes; ++v)
    if (!std::isfinite(weights[v]) || weights[v] < 0.0f)
      throw std::invalid_argument("tree: weight of node " + std::to_string(v) + " is " + num(weights[v]) +
                                  "; expected a finite value >= 0");
  for (std::size_t j = 0; j < n_atoms; ++j)
    if (atom_node[j] < 0 || atom_node[j] >= nn)
      throw std::invalid_argument("tree: atom_node[" + std::to_string(j) + "]=" + std::to_string(atom_node[j]) +
                                  " is not a node in [0, " + std::to_string(n_nodes) + ")");
  // CSR children and atoms per node (index order)
  std::vector<std::size_t> cstart(n_nodes + 1, 0), astart(n_nodes + 1, 0);
  for (std::size_t v = 0; v < n_nodes; ++v)
    if (parent[v] >= 0) ++cstart[static_cast<std::size_t>(parent[v]) + 1];
  for (std::size_t j = 0; j < n_atoms; ++j) ++astart[static_cast<std::size_t>(atom_node[j]) + 1];
  for (std::size_t v = 0; v < n_nodes; ++v) {
    cstart[v + 1] += cstart[v];
    astart[v + 1] += astart[v];
  }
  std::vector<std::int32_t> children(n_nodes), atoms(n_atoms);
  {
    std::vector<std::size_t> cpos(cstart.begin(), cstart.end() - 1), apos(astart.begin(), astart.end() - 1);
    for (std::size_t v = 0; v < n_nodes; ++v)
      if (parent[v] >= 0) children[cpos[static_cast<std::size_t>(parent[v])]++] = static_cast<std::int32_t>(v);
    for (std::size_t j = 0; j < n_atoms; ++j)
      atoms[apos[static_cast<std::size_t>(atom_node[j])]++] = static_cast<std::int32_t>(j);
  }
  // iterative DFS: pre-order ranges of atoms, post-order of nodes
  perm_.clear();
  perm_.reserve(n_atoms);
  order_.clear();
  order_.reserve(n_nodes);
  start_.assign(n_nodes, 0);
  stop_.assign(n_nodes, 0);
  weight_.assign(weights, weights + n_nodes);
  std::vector<std::pair<std::int32_t, std::size_t>> stack;  // node, next child offset
  stack.reserve(n_nodes);
  auto enter = [&](std::int32_t v) {
    const auto vs = static_cast<std::size_t>(v);
    start_[vs] = static_cast<std::int32_t>(perm_.size());
    for (std::size_t a = astart[vs]; a < astart[vs + 1]; ++a) perm_.push_back(atoms[a]);
    stack.emplace_back(v, cstart[vs]);
  };
  enter(roots[0]);
  while (!stack.empty()) {
    auto& top = stack.back();
    const auto vs = static_cast<std::size_t>(top.first);
    if (top.second < cstart[vs + 1]) {
      const std::int32_t c = children[top.second++];
      enter(c);
    } else {
      stop_[vs] = static_cast<std::int32_t>(perm_.size());
      order_.push_back(top.first);
      stack.pop_back();
    }
  }
}

void IndexTreeNorm::prox_internal(float* v, float t) const noexcept {
  for (std::int32_t node : order_) {
    const auto ns = static_cast<std::size_t>(node);
    const float thr = t * weight_[ns];
    const auto b = static_cast<std::size_t>(start_[ns]), e = static_cast<std::size_t>(stop_[ns]);
    if (!(thr > 0.0f) || b == e) continue;
    double s = 0.0;
    for (std::size_t i = b; i < e; ++i) s += static_cast<double>(v[i]) * v[i];
    const double nrm = std::sqrt(s);
    if (nrm <= thr) {
      std::memset(v + b, 0, (e - b) * sizeof(float));
    } else {
      const float scale = static_cast<float>(1.0 - thr / nrm);
      for (std::size_t i = b; i < e; ++i) v[i] *= scale;
    }
  }
}

void IndexTreeNorm::prox(const float* v, float t, float* out, float* scratch) const noexcept {
  const std::size_t na = perm_.size();
  for (std::size_t i = 0; i < na; ++i) scratch[i] = v[perm_[i]];
  prox_internal(scratch, t);
  for (std::size_t i = 0; i < na; ++i) out[perm_[i]] = scratch[i];
}

double IndexTreeNorm::value(const float* v) const noexcept {
  double total = 0.0;
  for (std::size_t node = 0; node < start_.size(); ++node) {
    double s = 0.0;
    for (auto i = static_cast<std::size_t>(start_[node]); i < static_cast<std::size_t>(stop_[node]); ++i) {
      const double a = v[perm_[i]];
      s += a * a;
    }
    total += static_cast<double>(weight_[node]) * std::sqrt(s);
  }
  return total;
}

// ---- Tree group lasso -----------------------------------------------------------------------

TreeLassoCoder::TreeLassoCoder(const float* dictionary, std::size_t n_features, std::size_t n_atoms,
                               IndexTreeNorm tree)
    : tree_(std::move(tree)) {
  check_dictionary_finite("tree group lasso", dictionary, n_features, n_atoms);
  if (tree_.n_atoms() != n_atoms)
    throw std::invalid_argument("tree group lasso: the tree covers " + std::to_string(tree_.n_atoms()) +
                                " atoms but the dictionary has " + std::to_string(n_atoms));
  const std::vector<double> g = gram_double(dictionary, n_features, n_atoms);
  const auto& perm = tree_.perm();
  gram_.resize(n_atoms * n_atoms);
  for (std::size_t i = 0; i < n_atoms; ++i)
    for (std::size_t j = 0; j < n_atoms; ++j)
      gram_[i * n_atoms + j] = static_cast<float>(g[static_cast<std::size_t>(perm[i]) * n_atoms +
                                                    static_cast<std::size_t>(perm[j])]);
  // largest eigenvalue of G: power iteration in double from a fixed, non-symmetric start
  std::vector<double> v(n_atoms), w(n_atoms);
  for (std::size_t i = 0; i < n_atoms; ++i) v[i] = 1.0 + 0.5 * static_cast<double>(i % 7) / 7.0;
  double lam = 0.0;
  for (int it = 0; it < 2000; ++it) {
    double vn = 0.0;
    for (double a : v) vn += a * a;
    vn = std::sqrt(vn);
    if (vn == 0.0) break;
    for (double& a : v) a /= vn;
    std::fill(w.begin(), w.end(), 0.0);
    for (std::size_t i = 0; i < n_atoms; ++i)
      for (std::size_t j = 0; j < n_atoms; ++j) w[j] += g[i * n_atoms + j] * v[i];
    double rq = 0.0;
    for (std::size_t i = 0; i < n_atoms; ++i) rq += v[i] * w[i];
    v.swap(w);
    const bool done = it > 0 && std::fabs(rq - lam) <= 1e-12 * std::fabs(rq);
    lam = rq;
    if (done) break;
  }
  if (!(lam > 0.0))
    throw std::invalid_argument("tree group lasso: dictionary is all zeros (Lipschitz constant 0)");
  lip_ = static_cast<float>(lam * (1.0 + 1e-4));
  prod_ = DictProduct(dictionary, n_features, n_atoms);
  block_.assign(prod_.block_rows() * prod_.padded_atoms(), 0.0f);
  xpad_.assign(prod_.block_rows() * n_features, 0.0f);
  b_.assign(n_atoms, 0.0f);
  a_.assign(n_atoms, 0.0f);
  a_prev_.assign(n_atoms, 0.0f);
  y_.assign(n_atoms, 0.0f);
  grad_.assign(n_atoms, 0.0f);
}

void TreeLassoCoder::encode(const float* x, std::size_t n, float lam, std::size_t max_iter, float tol,
                            const float* init, float* codes, std::int32_t* n_iter) {
  const char* who = "tree group lasso";
  if (!std::isfinite(lam) || lam < 0.0f)
    throw std::invalid_argument(std::string(who) + ": alpha (lambda) must be finite and >= 0, got " + num(lam));
  if (!std::isfinite(tol) || tol < 0.0f)
    throw std::invalid_argument(std::string(who) + ": tol must be finite and >= 0, got " + num(tol));
  if (max_iter == 0) throw std::invalid_argument(std::string(who) + ": max_iter must be >= 1");
  const std::size_t nf = n_features(), na = n_atoms(), mr = prod_.block_rows(), nap = prod_.padded_atoms();
  check_rows_finite(who, "signal", x, n, nf);
  if (init) check_rows_finite(who, "init", init, n, na);
  const auto& perm = tree_.perm();
  for (std::size_t r0 = 0; r0 < n; r0 += mr) {
    const std::size_t rows = std::min(mr, n - r0);
    prod_.apply(x + r0 * nf, rows, block_.data(), xpad_.data());
    for (std::size_t i = 0; i < rows; ++i) {
      const std::size_t r = r0 + i;
      const float* bi = block_.data() + i * nap;
      for (std::size_t p = 0; p < na; ++p) b_[p] = bi[perm[p]];
      if (init) {
        for (std::size_t p = 0; p < na; ++p) a_[p] = init[r * na + static_cast<std::size_t>(perm[p])];
      } else {
        std::fill(a_.begin(), a_.end(), 0.0f);
      }
      const std::int32_t it = solve_one(b_.data(), lam, max_iter, tol);
      float* out = codes + r * na;
      for (std::size_t p = 0; p < na; ++p) out[perm[p]] = a_[p];
      if (n_iter) n_iter[r] = it;
    }
  }
}

// FISTA with gradient-based adaptive restart (O'Donoghue & Candes 2015). Result left in a_.
std::int32_t TreeLassoCoder::solve_one(const float* b, float lam, std::size_t max_iter, float tol) noexcept {
  const std::size_t na = n_atoms();
  const float* g = gram_.data();
  const float inv_l = 1.0f / lip_;
  const float t_prox = lam * inv_l;
  float* a = a_.data();
  float* ap = a_prev_.data();
  float* y = y_.data();
  float* grad = grad_.data();
  std::memcpy(y, a, na * sizeof(float));
  double t = 1.0;
  const double tol2 = static_cast<double>(tol) * tol;
  std::size_t it = 0;
  while (it < max_iter) {
    ++it;
    // grad = G y - b; G symmetric, so accumulate rows for the non-zero y_j
    for (std::size_t j = 0; j < na; ++j) grad[j] = -b[j];
    for (std::size_t i = 0; i < na; ++i) {
      const float yi = y[i];
      if (yi == 0.0f) continue;
      const float* gi = g + i * na;
      for (std::size_t j = 0; j < na; ++j) grad[j] += yi * gi[j];
    }
    std::swap(a, ap);  // ap = previous iterate
    for (std::size_t j = 0; j < na; ++j) a[j] = y[j] - inv_l * grad[j];
    tree_.prox_internal(a, t_prox);
    double diff2 = 0.0, norm2 = 0.0, restart = 0.0;
    for (std::size_t j = 0; j < na; ++j) {
      const double d = static_cast<double>(a[j]) - ap[j];
      diff2 += d * d;
      norm2 += static_cast<double>(a[j]) * a[j];
      restart += (static_cast<double>(y[j]) - a[j]) * d;
    }
    if (diff2 <= tol2 * std::max(norm2, 1e-24)) break;
    double t_next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
    if (restart > 0.0) t_next = 1.0, t = 1.0;  // momentum points uphill: restart
    const float beta = static_cast<float>((t - 1.0) / t_next);
    for (std::size_t j = 0; j < na; ++j) y[j] = a[j] + beta * (a[j] - ap[j]);
    t = t_next;
  }
  if (a != a_.data()) std::memcpy(a_.data(), a, na * sizeof(float));
  return static_cast<std::int32_t>(it);
}

}  // namespace edgefault
