// Sparse coding against a fixed dictionary: Batch-OMP (Gram matrix + incremental Cholesky) and
// tree-structured group-lasso coding (FISTA with the exact prox of the tree norm).
//
// Layout conventions (all row-major, float32):
//   dictionary  n_features x n_atoms, columns are atoms (D[f * n_atoms + j] = atom j, feature f);
//   signals     n_signals x n_features (one signal per row);
//   codes       n_signals x n_atoms.
// Both coders allocate everything at construction (Gram matrix, packed dictionary, workspaces
// sized for the largest problem) and nothing per call. A coder keeps scratch state: one object
// must not be used from two threads at once (make one per thread; they are cheap to copy).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgefault {

// Kernel selection for coders constructed from now on (process-wide): with `allow` (the default)
// they use the AVX2+FMA clones when the CPU has them, otherwise the portable kernels. Tests and
// benchmarks use it to exercise the portable path on an AVX2 machine.
void sparse_allow_simd(bool allow) noexcept;
// Whether a coder constructed now would use the AVX2+FMA kernels.
bool sparse_simd_active() noexcept;

// D^T X for a block of signals, shared by both coders. Packs the dictionary in panels of 16
// atoms; the micro-kernel is chosen at construction (AVX2+FMA clone on x86-64 CPUs that have it,
// portable vector code otherwise: no -march flags needed).
class DictProduct {
 public:
  DictProduct() = default;
  DictProduct(const float* dictionary, std::size_t n_features, std::size_t n_atoms);
  std::size_t n_features() const noexcept { return nf_; }
  std::size_t n_atoms() const noexcept { return na_; }
  std::size_t padded_atoms() const noexcept { return nap_; }
  // Signals per block (the micro-kernel's row count).
  std::size_t block_rows() const noexcept { return mr_; }
  // x: rows x n_features (rows <= block_rows(), rows must be valid memory), out: block_rows() x
  // padded_atoms(); rows beyond `rows` in out are garbage. xpad: block_rows() x n_features
  // scratch used when rows < block_rows().
  void apply(const float* x, std::size_t rows, float* out, float* xpad) const noexcept;
  bool uses_avx2() const noexcept { return avx2_; }

 private:
  std::size_t nf_ = 0, na_ = 0, nap_ = 0, mr_ = 1;
  bool avx2_ = false;
  std::vector<float> packed_;  // panels: [panel][feature][16]
};

// Orthogonal Matching Pursuit (Rubinstein, Zibulevsky & Elad 2008, "Batch-OMP"): per signal only
// D^T x and the precomputed Gram matrix G = D^T D are used; the least-squares solve on the active
// set is an incrementally updated Cholesky factor of G_II. Greedy selection is argmax |D^T r|
// with ties broken towards the lowest atom index. Stops after k atoms, when ||r||^2 <= tol, or
// early when the next atom is linearly dependent on the active set / the correlation vanishes.
class OmpCoder {
 public:
  // dictionary: n_features x n_atoms (columns = atoms), every atom unit-norm (|norm - 1| <= 1e-3).
  // Throws std::invalid_argument naming the offending entry on: empty shapes, non-finite values
  // (row and column), zero atoms (column), non-unit atoms (column and norm), duplicate atoms
  // |<d_i, d_j>| > 1 - 1e-6 (the pair; skipped with allow_duplicates), max_k = 0 or
  // max_k > min(n_atoms, n_features).
  OmpCoder(const float* dictionary, std::size_t n_features, std::size_t n_atoms, std::size_t max_k,
           bool allow_duplicates = false);
  std::size_t n_features() const noexcept { return prod_.n_features(); }
  std::size_t n_atoms() const noexcept { return prod_.n_atoms(); }
  std::size_t max_k() const noexcept { return max_k_; }
  const std::vector<float>& gram() const noexcept { return gram_; }
  bool uses_avx2() const noexcept { return prod_.uses_avx2(); }

  // x: n x n_features. codes: n x n_atoms (fully overwritten). resid_sq: n squared residual norms
  // ||x - D code||^2 (may be null). n_active: n atom counts (may be null). k in [1, max_k];
  // tol < 0 disables the residual stop. Throws std::invalid_argument (before writing anything)
  // on k out of range or a non-finite signal (naming its row).
  void encode(const float* x, std::size_t n, std::size_t k, float tol, float* codes, float* resid_sq,
              std::int32_t* n_active);

 private:
  void encode_one(const float* alpha0, double xnorm2, std::size_t k, double tol, float* code,
                  float* resid_sq, std::int32_t* n_active) noexcept;
  DictProduct prod_;
  std::size_t max_k_;
  std::vector<float> gram_;     // n_atoms x n_atoms
  std::vector<float> block_;    // block_rows x padded_atoms: D^T x for a block
  std::vector<float> xpad_;     // block_rows x n_features
  std::vector<float> alpha_;    // n_atoms: current correlations D^T r
  std::vector<double> chol_;    // max_k x max_k lower-triangular Cholesky factor of G_II
  std::vector<double> gamma_, z_, inv_diag_;  // max_k
  std::vector<float> wf_;               // max_k
  std::vector<std::int32_t> active_;    // max_k
  std::vector<float> vdir_;             // max_k x n_atoms: D^T q_s of the orthonormalised atoms
};

// Index tree over atoms: node 0..n_nodes-1 with parent[node] (-1 for the single root), atom j
// attached to node atom_node[j], weight[node] >= 0. Group of a node = the atoms attached to its
// subtree, so groups are nested or disjoint by construction. Validation throws
// std::invalid_argument ("not a tree: ...") naming the nodes on a cycle, the roots when there
// are several or none, a parent out of range; and names bad atom nodes and weights.
class IndexTreeNorm {
 public:
  IndexTreeNorm() = default;
  IndexTreeNorm(const std::int32_t* parent, std::size_t n_nodes, const std::int32_t* atom_node,
                std::size_t n_atoms, const float* weights);
  std::size_t n_atoms() const noexcept { return perm_.size(); }
  std::size_t n_nodes() const noexcept { return start_.size(); }
  // Atom order in which every group is a contiguous range: internal position i holds atom perm[i].
  const std::vector<std::int32_t>& perm() const noexcept { return perm_; }
  // prox of t * Omega on a vector in internal (permuted) order, in place:
  // groups in post-order (children first), v_g <- v_g * max(0, 1 - t w_g / ||v_g||).
  void prox_internal(float* v, float t) const noexcept;
  // prox of t * Omega on a vector in atom order (uses scratch of n_atoms floats).
  void prox(const float* v, float t, float* out, float* scratch) const noexcept;
  // Omega(v) for v in atom order.
  double value(const float* v) const noexcept;
  // Prox program used by the solvers, in post-order: op i covers internal positions
  // [op_begin[i], op_end[i]); op_node[i] >= 0 is one group (that node's, weight > 0), op_node[i] = -1
  // is a run of consecutive singleton groups soft-thresholded elementwise with run_weight[pos].
  const std::vector<std::int32_t>& op_begin() const noexcept { return op_begin_; }
  const std::vector<std::int32_t>& op_end() const noexcept { return op_end_; }
  const std::vector<std::int32_t>& op_node() const noexcept { return op_node_; }
  const std::vector<float>& run_weight() const noexcept { return run_weight_; }
  const std::vector<float>& weights() const noexcept { return weight_; }

 private:
  std::vector<std::int32_t> op_begin_, op_end_, op_node_;
  std::vector<float> run_weight_;
  std::vector<std::int32_t> perm_;          // internal position -> atom
  std::vector<std::int32_t> order_;         // nodes in post-order (children before parents)
  std::vector<std::int32_t> start_, stop_;  // node -> [start, stop) in internal order
  std::vector<float> weight_;
};

// Tree-structured group lasso: min_a 0.5 ||x - D a||^2 + lam * sum_g w_g ||a_g||_2 by FISTA with
// step 1/L (L = largest eigenvalue of G, power iteration at construction, times 1 + 1e-4) and
// the exact prox of the tree norm. Stopping rule: relative change of the iterate,
// ||a_{t+1} - a_t||_2 <= tol * max(||a_{t+1}||_2, 1e-12), or max_iter iterations.
class TreeLassoCoder {
 public:
  // dictionary: n_features x n_atoms (columns = atoms; need not be unit-norm); tree over n_atoms.
  // Throws on non-finite entries (naming row and column), an all-zero dictionary or one whose
  // Gram matrix over/underflows float32, a tree whose atom count differs from n_atoms.
  TreeLassoCoder(const float* dictionary, std::size_t n_features, std::size_t n_atoms, IndexTreeNorm tree);
  std::size_t n_features() const noexcept { return prod_.n_features(); }
  std::size_t n_atoms() const noexcept { return prod_.n_atoms(); }
  float lipschitz() const noexcept { return lip_; }
  bool uses_avx2() const noexcept { return prod_.uses_avx2(); }
  const IndexTreeNorm& tree() const noexcept { return tree_; }

  // x: n x n_features; init: n x n_atoms warm start or null (zeros); codes: n x n_atoms output
  // (may alias init); n_iter: n iteration counts (may be null). Throws std::invalid_argument
  // before writing anything on lam < 0 or non-finite, tol < 0, max_iter = 0, a non-finite signal
  // or init row (named).
  void encode(const float* x, std::size_t n, float lam, std::size_t max_iter, float tol,
              const float* init, float* codes, std::int32_t* n_iter);

 private:
  std::int32_t solve_one(const float* b, float lam, std::size_t max_iter, float tol) noexcept;
  DictProduct prod_;
  IndexTreeNorm tree_;
  float lip_ = 0.0f;
  std::vector<float> gram_;  // n_atoms x n_atoms in internal (tree) order
  std::vector<float> block_, xpad_;
  std::vector<float> b_, a_, a_prev_, y_, grad_;  // n_atoms, internal order
  std::vector<std::int32_t> nz_idx_;              // n_atoms: non-zeros of the FISTA point
  std::vector<float> nz_val_;
};

}  // namespace edgefault
