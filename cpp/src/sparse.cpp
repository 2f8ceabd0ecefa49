#include "edgefault/sparse.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace edgefault {

namespace {

constexpr std::size_t kPanel = 16;  // atoms per packed panel

#if defined(__GNUC__)
#define EF_INLINE __attribute__((always_inline)) inline
#else
#define EF_INLINE inline
#endif

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

// ---- vector helpers ----------------------------------------------------------------------------
// GCC/Clang vector extensions: v4f is the portable width (SSE2 / NEON registers), v8f the AVX2
// width (used only inside functions compiled with target("avx2,fma")). Other compilers get
// scalar "vectors" (width 1): same code, no SIMD.
#if defined(__GNUC__)
typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
#else
typedef float v4f;
#endif
#if defined(__GNUC__) && !defined(__clang__)
// The helpers below pass v8f by value, but they are always inlined and instantiated with v8f only
// inside target("avx2,fma") functions, so no call ever uses the non-AVX ABI GCC warns about.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

template <class V>
constexpr std::size_t lanes() {
  return sizeof(V) / sizeof(float);
}
template <class V>
EF_INLINE V vload(const float* p) noexcept {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
EF_INLINE void vstore(float* p, const V& v) noexcept {
  std::memcpy(p, &v, sizeof v);
}
template <class V>
EF_INLINE V vzero() noexcept {
  V v;
  std::memset(&v, 0, sizeof v);
  return v;
}
template <class V>
EF_INLINE float hsum(const V& v) noexcept {
  float f[lanes<V>()];
  std::memcpy(f, &v, sizeof v);
  float s = 0.0f;
  for (std::size_t l = 0; l < lanes<V>(); ++l) s += f[l];
  return s;
}

// ---- D^T X micro-kernel -------------------------------------------------------------------------
// MR signals x one panel of 16 atoms per step, accumulators in registers, over all features.
template <std::size_t MR, class V>
EF_INLINE void product_kernel(const float* x, std::size_t nf, const float* packed, std::size_t npanels,
                              float* out, std::size_t ldo) noexcept {
  constexpr std::size_t NV = kPanel / lanes<V>();
  for (std::size_t p = 0; p < npanels; ++p) {
    const float* b = packed + p * nf * kPanel;
    V acc[MR][NV];
    for (std::size_t i = 0; i < MR; ++i)
      for (std::size_t v = 0; v < NV; ++v) acc[i][v] = vzero<V>();
    for (std::size_t f = 0; f < nf; ++f) {
      V bv[NV];
      for (std::size_t v = 0; v < NV; ++v) bv[v] = vload<V>(b + f * kPanel + v * lanes<V>());
      for (std::size_t i = 0; i < MR; ++i) {
        const float xv = x[i * nf + f];
        for (std::size_t v = 0; v < NV; ++v) acc[i][v] += xv * bv[v];
      }
    }
    for (std::size_t i = 0; i < MR; ++i)
      for (std::size_t v = 0; v < NV; ++v) vstore(out + i * ldo + p * kPanel + v * lanes<V>(), acc[i][v]);
  }
}

#if defined(__aarch64__)
constexpr std::size_t kGenericRows = 4;  // 16 accumulators of 32 NEON registers
#else
constexpr std::size_t kGenericRows = 2;  // SSE2: 8 accumulators + 4 panel vectors + 1 broadcast of 16
#endif

void product_generic(const float* x, std::size_t nf, const float* packed, std::size_t npanels, float* out,
                     std::size_t ldo) noexcept {
  product_kernel<kGenericRows, v4f>(x, nf, packed, npanels, out, ldo);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define EDGEFAULT_SPARSE_AVX2 1
constexpr std::size_t kAvx2Rows = 6;  // 12 ymm accumulators + 2 panel rows + 1 broadcast
__attribute__((target("avx2,fma"))) void product_avx2(const float* x, std::size_t nf, const float* packed,
                                                      std::size_t npanels, float* out, std::size_t ldo) noexcept {
  product_kernel<kAvx2Rows, v8f>(x, nf, packed, npanels, out, ldo);
}
bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif


// max_i |a_i|: four independent scalar chains (vector selects compile poorly on plain SSE2).
EF_INLINE float max_abs(const float* a, std::size_t n) noexcept {
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

// sum of squares: 4 x 4 float lanes, folded in double (relative error ~1e-7 for n in the thousands).
double sum_squares(const float* a, std::size_t n) noexcept {
  constexpr std::size_t W = lanes<v4f>();
  std::size_t j = 0;
  v4f s0 = vzero<v4f>(), s1 = s0, s2 = s0, s3 = s0;
  for (; j + 4 * W <= n; j += 4 * W) {
    const v4f u0 = vload<v4f>(a + j), u1 = vload<v4f>(a + j + W), u2 = vload<v4f>(a + j + 2 * W),
              u3 = vload<v4f>(a + j + 3 * W);
    s0 += u0 * u0;
    s1 += u1 * u1;
    s2 += u2 * u2;
    s3 += u3 * u3;
  }
  double s = static_cast<double>(hsum(s0)) + hsum(s1) + hsum(s2) + hsum(s3);
  for (; j < n; ++j) s += static_cast<double>(a[j]) * a[j];
  return s;
}

// Float sum of squares (groups of the tree norm; exact enough for thresholds).
template <class V>
EF_INLINE float sum_squares_f(const float* a, std::size_t n) noexcept {
  constexpr std::size_t W = lanes<V>();
  std::size_t j = 0;
  float s = 0.0f;
  if (n >= 2 * W) {
    V s0 = vzero<V>(), s1 = s0;
    for (; j + 2 * W <= n; j += 2 * W) {
      const V u = vload<V>(a + j), v = vload<V>(a + j + W);
      s0 += u * u;
      s1 += v * v;
    }
    s = hsum(V(s0 + s1));
  }
  float s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;  // short groups: four chains instead of one
  for (; j + 4 <= n; j += 4) {
    s += a[j] * a[j];
    s1 += a[j + 1] * a[j + 1];
    s2 += a[j + 2] * a[j + 2];
    s3 += a[j + 3] * a[j + 3];
  }
  for (; j < n; ++j) s += a[j] * a[j];
  return (s + s1) + (s2 + s3);
}

// ---- OMP core (compiled twice: portable and AVX2+FMA) ----------------------------------------
struct OmpWork {
  const float* g;  // Gram, na x na
  std::size_t na, mk;
  float* alpha;  // na
  float* V;      // mk x na
  float* wf;     // mk
  double* L;     // mk x mk
  double* inv_diag;  // mk: 1 / L[i, i]
  double* z;     // mk
  std::int32_t* active;
};
struct OmpOut {
  std::size_t s;
  double eps;
};

// V_s = (G[best, :] - sum_j w_j V_j) * inv;  alpha -= z V_s. One pass over the atoms.
template <class V>
EF_INLINE void omp_direction(const float* gb, const float* Vd, const float* wf, std::size_t s, std::size_t na,
                             float inv, float z, float* vs, float* alpha) noexcept {
  constexpr std::size_t W = lanes<V>();
  std::size_t m = 0;
  for (; m + W <= na; m += W) {
    V acc = vload<V>(gb + m);
    for (std::size_t j = 0; j < s; ++j) acc -= wf[j] * vload<V>(Vd + j * na + m);
    acc *= inv;
    vstore(vs + m, acc);
    vstore(alpha + m, V(vload<V>(alpha + m) - z * acc));
  }
  for (; m < na; ++m) {
    float acc = gb[m];
    for (std::size_t j = 0; j < s; ++j) acc -= wf[j] * Vd[j * na + m];
    acc *= inv;
    vs[m] = acc;
    alpha[m] -= z * acc;
  }
}

// Batch-OMP with the correlations updated in orthogonal form. With D_I = Q L^T (L L^T = G_II,
// Q orthonormal) and V_j = D^T q_j:
//   w = L^{-1} G[I, best] (new Cholesky row), L_ss = sqrt(g_bb - |w|^2);
//   z = L^{-1} alpha0_I = Q^T x (forward substitution, one new entry per step);
//   V_s = (G[best, :] - sum_j w_j V_j) / L_ss;  alpha = D^T r loses z_s V_s;  ||r||^2 loses z_s^2.
template <class V>
EF_INLINE OmpOut omp_core(const OmpWork& w, const float* alpha0, double xnorm2, std::size_t k, double tol) noexcept {
  const std::size_t na = w.na, mk = w.mk;
  float* alpha = w.alpha;
  std::memcpy(alpha, alpha0, na * sizeof(float));
  std::size_t s = 0;
  double eps = xnorm2;
  const bool use_tol = tol >= 0.0;
  while (s < k && !(use_tol && eps <= tol)) {
    // greedy selection: largest |alpha| (active atoms are zeroed), lowest index on ties
    const float bv = max_abs(alpha, na);
    if (static_cast<double>(bv) * bv <= 1e-30 * std::max(xnorm2, 1e-30)) break;
    std::size_t best = 0;
    while (best + 1 < na && std::fabs(alpha[best]) != bv) ++best;
    // w = L^{-1} G[I, best] in double (equals V_j[best] in exact arithmetic, but the float V
    // lose orthogonality on ill-conditioned active sets; L and z must not)
    double* Ls = w.L + s * mk;
    double wn = 0.0, zs = alpha0[best];
    for (std::size_t i = 0; i < s; ++i) {
      double v = w.g[static_cast<std::size_t>(w.active[i]) * na + best];
      const double* Li = w.L + i * mk;
      for (std::size_t j = 0; j < i; ++j) v -= Li[j] * Ls[j];
      v *= w.inv_diag[i];
      Ls[i] = v;
      w.wf[i] = static_cast<float>(v);
      wn += v * v;
      zs -= v * w.z[i];
    }
    const double gbb = w.g[best * na + best];
    const double d = gbb - wn;
    if (!(d > 1e-6 * gbb)) break;  // best is (numerically) in the span of the active atoms
    const double lss = std::sqrt(d);
    Ls[s] = lss;
    w.inv_diag[s] = 1.0 / lss;
    zs *= w.inv_diag[s];
    w.z[s] = zs;
    omp_direction<V>(w.g + best * na, w.V, w.wf, s, na, static_cast<float>(1.0 / lss), static_cast<float>(zs),
                  w.V + s * na, alpha);
    w.active[s] = static_cast<std::int32_t>(best);
    ++s;
    for (std::size_t i = 0; i < s; ++i) alpha[w.active[i]] = 0.0f;
    eps -= zs * zs;
  }
  return {s, eps};
}

OmpOut omp_generic(const OmpWork& w, const float* alpha0, double xnorm2, std::size_t k, double tol) noexcept {
  return omp_core<v4f>(w, alpha0, xnorm2, k, tol);
}

// ---- tree prox and FISTA core -------------------------------------------------------------------
struct TreeView {  // see IndexTreeNorm::op_begin
  const std::int32_t* op_begin;
  const std::int32_t* op_end;
  const std::int32_t* op_node;
  std::size_t n_ops;
  const float* run_weight;
  const float* weight;
};

template <class V>
EF_INLINE void tree_prox_apply(const TreeView& t, float* v, float tp) noexcept {
  for (std::size_t k = 0; k < t.n_ops; ++k) {
    const auto b = static_cast<std::size_t>(t.op_begin[k]), e = static_cast<std::size_t>(t.op_end[k]);
    if (t.op_node[k] < 0) {  // run of singleton groups: elementwise soft-threshold
      const float* rw = t.run_weight;
      for (std::size_t i = b; i < e; ++i) {
        const float x = v[i];
        v[i] = std::copysign(std::max(std::fabs(x) - tp * rw[i], 0.0f), x);
      }
      continue;
    }
    const float thr = tp * t.weight[t.op_node[k]];
    const float s = sum_squares_f<V>(v + b, e - b);
    if (s == 0.0f) continue;
    const float nrm = std::sqrt(s);
    if (nrm <= thr) {
      std::memset(v + b, 0, (e - b) * sizeof(float));
    } else {
      const float scale = 1.0f - thr / nrm;
      for (std::size_t i = b; i < e; ++i) v[i] *= scale;
    }
  }
}

// out = sum_k val[k] * G[idx[k], :] - b. Register accumulators, one store per 2 vectors.
template <class V>
EF_INLINE void sparse_rows_minus(const float* g, std::size_t na, const std::int32_t* idx, const float* val,
                                 std::size_t nnz, const float* b, float* out) noexcept {
  constexpr std::size_t W = lanes<V>();
  std::size_t m = 0;
  for (; m + 2 * W <= na; m += 2 * W) {
    V a0 = -vload<V>(b + m), a1 = -vload<V>(b + m + W);
    for (std::size_t k = 0; k < nnz; ++k) {
      const float* gr = g + static_cast<std::size_t>(idx[k]) * na + m;
      a0 += val[k] * vload<V>(gr);
      a1 += val[k] * vload<V>(gr + W);
    }
    vstore(out + m, a0);
    vstore(out + m + W, a1);
  }
  for (; m < na; ++m) {
    float acc = -b[m];
    for (std::size_t k = 0; k < nnz; ++k) acc += val[k] * g[static_cast<std::size_t>(idx[k]) * na + m];
    out[m] = acc;
  }
}

struct FistaWork {
  const float* g;  // na x na, internal order
  std::size_t na;
  float* a;  // in: start point; out: result (buffers a / ap are swapped internally and copied back)
  float* ap;
  float* y;
  float* grad;
  std::int32_t* nz_idx;  // na
  float* nz_val;         // na
  TreeView tree;
  float lip;
};

// FISTA with gradient-based adaptive restart (O'Donoghue & Candes 2015).
template <class V>
EF_INLINE std::int32_t fista_core(const FistaWork& w, const float* b, float lam, std::size_t max_iter,
                                  float tol) noexcept {
  const std::size_t na = w.na;
  const float* g = w.g;
  const float inv_l = 1.0f / w.lip;
  const float t_prox = lam * inv_l;
  float* a = w.a;
  float* ap = w.ap;
  float* y = w.y;
  float* grad = w.grad;
  std::memcpy(y, a, na * sizeof(float));
  double t = 1.0;
  const float tol2 = tol * tol;
  std::size_t it = 0;
  while (it < max_iter) {
    ++it;
    // grad = G y - b; G symmetric: sum the rows of the non-zero y_i, 8 columns at a time
    std::size_t nnz = 0;
    for (std::size_t i = 0; i < na; ++i) {
      w.nz_idx[nnz] = static_cast<std::int32_t>(i);
      w.nz_val[nnz] = y[i];
      nnz += y[i] != 0.0f;
    }
    sparse_rows_minus<V>(g, na, w.nz_idx, w.nz_val, nnz, b, grad);
    std::swap(a, ap);  // ap = previous iterate
    for (std::size_t j = 0; j < na; ++j) a[j] = y[j] - inv_l * grad[j];
    tree_prox_apply<V>(w.tree, a, t_prox);
    constexpr std::size_t W = lanes<V>();
    V dv = vzero<V>(), nv = dv, rv = dv;
    std::size_t j = 0;
    for (; j + W <= na; j += W) {
      const V av = vload<V>(a + j), d = av - vload<V>(ap + j);
      dv += d * d;
      nv += av * av;
      rv += (vload<V>(y + j) - av) * d;
    }
    float diff2 = hsum(dv), norm2 = hsum(nv), restart = hsum(rv);
    for (; j < na; ++j) {
      const float d = a[j] - ap[j];
      diff2 += d * d;
      norm2 += a[j] * a[j];
      restart += (y[j] - a[j]) * d;
    }
    if (diff2 <= tol2 * std::max(norm2, 1e-24f)) break;  // ||change|| <= tol * max(||a||, 1e-12)
    double t_next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
    if (restart > 0.0f) t_next = 1.0, t = 1.0;  // momentum points uphill: restart
    const float beta = static_cast<float>((t - 1.0) / t_next);
    for (std::size_t m = 0; m < na; ++m) y[m] = a[m] + beta * (a[m] - ap[m]);
    t = t_next;
  }
  if (a != w.a) std::memcpy(w.a, a, na * sizeof(float));
  return static_cast<std::int32_t>(it);
}

std::int32_t fista_generic(const FistaWork& w, const float* b, float lam, std::size_t max_iter, float tol) noexcept {
  return fista_core<v4f>(w, b, lam, max_iter, tol);
}

#ifdef EDGEFAULT_SPARSE_AVX2
__attribute__((target("avx2,fma"))) OmpOut omp_avx2(const OmpWork& w, const float* alpha0, double xnorm2,
                                                     std::size_t k, double tol) noexcept {
  return omp_core<v8f>(w, alpha0, xnorm2, k, tol);
}
__attribute__((target("avx2,fma"))) std::int32_t fista_avx2(const FistaWork& w, const float* b, float lam,
                                                             std::size_t max_iter, float tol) noexcept {
  return fista_core<v8f>(w, b, lam, max_iter, tol);
}
#endif
}  // namespace

// ---- DictProduct ----------------------------------------------------------------------------

namespace {
std::atomic<bool> g_allow_simd{true};
}

void sparse_allow_simd(bool allow) noexcept { g_allow_simd.store(allow); }

bool sparse_simd_active() noexcept {
#ifdef EDGEFAULT_SPARSE_AVX2
  return g_allow_simd.load() && cpu_has_avx2_fma();
#else
  return false;
#endif
}

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
  if (sparse_simd_active()) {
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
  product_generic(src, nf_, packed_.data(), npanels, out, nap_);
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
  inv_diag_.assign(max_k, 0.0);
  z_.assign(max_k, 0.0);
  wf_.assign(max_k, 0.0f);
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
  const std::size_t na = n_atoms(), mk = max_k_;
  const OmpWork w{gram_.data(), na, mk, alpha_.data(), vdir_.data(), wf_.data(), chol_.data(), inv_diag_.data(),
                  z_.data(), active_.data()};
#ifdef EDGEFAULT_SPARSE_AVX2
  const OmpOut r = prod_.uses_avx2() ? omp_avx2(w, alpha0, xnorm2, k, tol) : omp_generic(w, alpha0, xnorm2, k, tol);
#else
  const OmpOut r = omp_generic(w, alpha0, xnorm2, k, tol);
#endif
  const std::size_t s = r.s;
  const double* L = chol_.data();
  // back substitution L^T gamma = z
  for (std::size_t ii = s; ii-- > 0;) {
    double v = z_[ii];
    for (std::size_t j = ii + 1; j < s; ++j) v -= L[j * mk + ii] * gamma_[j];
    gamma_[ii] = v / L[ii * mk + ii];
  }
  std::memset(code, 0, na * sizeof(float));
  for (std::size_t i = 0; i < s; ++i) code[active_[i]] = static_cast<float>(gamma_[i]);
  if (resid_sq) *resid_sq = static_cast<float>(std::max(r.eps, 0.0));
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
  // prox program: skip weight-0 and empty groups; merge consecutive singleton groups at
  // increasing adjacent positions into one elementwise soft-threshold run (a position holds one
  // run weight: a second singleton group on the same atom, e.g. its parent, stays a group op)
  run_weight_.assign(n_atoms, 0.0f);
  std::vector<unsigned char> in_run(n_atoms, 0);
  for (std::int32_t v : order_) {
    const auto vs = static_cast<std::size_t>(v);
    if (!(weight_[vs] > 0.0f) || stop_[vs] == start_[vs]) continue;
    if (stop_[vs] - start_[vs] == 1 && !in_run[static_cast<std::size_t>(start_[vs])]) {
      run_weight_[static_cast<std::size_t>(start_[vs])] = weight_[vs];
      in_run[static_cast<std::size_t>(start_[vs])] = 1;
      if (!op_node_.empty() && op_node_.back() == -1 && op_end_.back() == start_[vs]) {
        op_end_.back() = stop_[vs];
        continue;
      }
      op_node_.push_back(-1);
    } else {
      op_node_.push_back(v);
    }
    op_begin_.push_back(start_[vs]);
    op_end_.push_back(stop_[vs]);
  }
}

void IndexTreeNorm::prox_internal(float* v, float t) const noexcept {
  const TreeView view{op_begin_.data(), op_end_.data(), op_node_.data(), op_node_.size(), run_weight_.data(),
                      weight_.data()};
  tree_prox_apply<v4f>(view, v, t);
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
  for (std::size_t j = 0; j < n_atoms; ++j)
    if (!(g[j * n_atoms + j] <= 1e30))
      throw std::invalid_argument("tree group lasso: dictionary atom (column) " + std::to_string(j) +
                                  " has squared norm " + num(g[j * n_atoms + j]) +
                                  ", too large for float32 coding (scale the dictionary)");
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
  if (!(lam > 1e-30))
    throw std::invalid_argument("tree group lasso: dictionary is too small for float32 coding (largest "
                                "eigenvalue of D^T D is " + num(lam) + "; scale the dictionary)");
  lip_ = static_cast<float>(lam * (1.0 + 1e-4));
  prod_ = DictProduct(dictionary, n_features, n_atoms);
  block_.assign(prod_.block_rows() * prod_.padded_atoms(), 0.0f);
  xpad_.assign(prod_.block_rows() * n_features, 0.0f);
  b_.assign(n_atoms, 0.0f);
  a_.assign(n_atoms, 0.0f);
  a_prev_.assign(n_atoms, 0.0f);
  y_.assign(n_atoms, 0.0f);
  grad_.assign(n_atoms, 0.0f);
  nz_idx_.assign(n_atoms, 0);
  nz_val_.assign(n_atoms, 0.0f);
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

// FISTA (see fista_core). Result left in a_.
std::int32_t TreeLassoCoder::solve_one(const float* b, float lam, std::size_t max_iter, float tol) noexcept {
  const TreeView view{tree_.op_begin().data(), tree_.op_end().data(), tree_.op_node().data(),
                      tree_.op_node().size(), tree_.run_weight().data(), tree_.weights().data()};
  const FistaWork w{gram_.data(), n_atoms(), a_.data(), a_prev_.data(), y_.data(), grad_.data(), nz_idx_.data(),
                    nz_val_.data(), view, lip_};
#ifdef EDGEFAULT_SPARSE_AVX2
  if (prod_.uses_avx2()) return fista_avx2(w, b, lam, max_iter, tol);
#endif
  return fista_generic(w, b, lam, max_iter, tol);
}

}  // namespace edgefault
