// Python bindings for the sparse-coding kernels: OmpCoder, IndexTreeNorm, TreeLassoCoder.
// Shape and dtype checks only; the algorithms are in cpp/src/sparse.cpp. Work runs with the GIL
// released. The public wrappers are in edgefault/sparse.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edgefault/sparse.hpp"

namespace py = pybind11;

namespace {

using FArr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IArr = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// A C-contiguous float32 array of the given ndim from a real (integer or floating) array-like.
FArr as_float(const py::handle& x, const char* arg, py::ssize_t ndim) {
  py::array a = py::array::ensure(x);
  if (!a) throw py::value_error(std::string(arg) + " must be array-like");
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw py::value_error(std::string(arg) + " must be a real numeric array, got dtype " +
                          py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != ndim)
    throw py::value_error(std::string(arg) + " must be " + std::to_string(ndim) + "-D, got shape with " +
                          std::to_string(a.ndim()) + " dimensions");
  return FArr::ensure(a);
}

std::vector<std::int32_t> as_index(const py::handle& x, const char* arg) {
  py::array a = py::array::ensure(x);
  if (!a) throw py::value_error(std::string(arg) + " must be array-like");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::value_error(std::string(arg) + " must be an integer array, got dtype " +
                          py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != 1) throw py::value_error(std::string(arg) + " must be 1-D");
  IArr v = IArr::ensure(a);
  std::vector<std::int32_t> out(static_cast<std::size_t>(v.size()));
  const std::int64_t* p = v.data();
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (p[i] < -1 || p[i] > std::numeric_limits<std::int32_t>::max())
      throw py::value_error(std::string(arg) + "[" + std::to_string(i) + "]=" + std::to_string(p[i]) +
                            " is out of range");
    out[i] = static_cast<std::int32_t>(p[i]);
  }
  return out;
}

std::size_t usize(py::ssize_t v) { return static_cast<std::size_t>(v); }

// The coders keep scratch state; the lock makes concurrent calls on one coder from several Python
// threads (the GIL is released while they run) wait for each other instead of sharing scratch.
struct PyOmp {
  PyOmp(const float* d, std::size_t nf, std::size_t na, std::size_t k, bool dup) : c(d, nf, na, k, dup) {}
  edgefault::OmpCoder c;
  std::mutex m;
};
struct PyTreeLasso {
  PyTreeLasso(const float* d, std::size_t nf, std::size_t na, const edgefault::IndexTreeNorm& t) : c(d, nf, na, t) {}
  edgefault::TreeLassoCoder c;
  std::mutex m;
};

struct PyTree {
  edgefault::IndexTreeNorm tree;
  std::vector<std::int32_t> parent, atom_node;
  std::vector<float> weights;
};

PyTree make_tree(const py::object& parent_in, const py::object& atom_node_in, const py::object& weights_in) {
  PyTree t;
  t.parent = as_index(parent_in, "parent");
  t.atom_node = as_index(atom_node_in, "atom_node");
  FArr w = as_float(weights_in, "weights", 1);
  if (usize(w.size()) != t.parent.size())
    throw py::value_error("weights has " + std::to_string(w.size()) + " values, expected one per node (" +
                          std::to_string(t.parent.size()) + ")");
  t.weights.assign(w.data(), w.data() + w.size());
  t.tree = edgefault::IndexTreeNorm(t.parent.data(), t.parent.size(), t.atom_node.data(), t.atom_node.size(),
                                    t.weights.data());
  return t;
}

void check_cols(const FArr& x, std::size_t want, const char* arg, const char* what) {
  if (usize(x.shape(1)) != want)
    throw py::value_error(std::string(arg) + " has " + std::to_string(x.shape(1)) + " columns, expected " +
                          std::to_string(want) + " (" + what + ")");
}

}  // namespace

void register_sparse(py::module_& m) {
  m.def("sparse_allow_simd", &edgefault::sparse_allow_simd, py::arg("allow"),
        "Sparse coders constructed from now on use the AVX2+FMA kernels when the CPU has them (True, "
        "default) or the portable kernels (False). Process-wide; for tests and benchmarks.");
  m.def("sparse_simd_active", &edgefault::sparse_simd_active,
        "Whether a sparse coder constructed now uses the AVX2+FMA kernels.");
  py::class_<PyOmp>(m, "OmpCoder",
                                  "Batch-OMP coder over a fixed unit-norm dictionary (n_features, n_atoms), "
                                  "columns = atoms. See edgefault.sparse.OmpCoder.")
      .def(py::init([](const py::object& d_in, std::size_t max_k, bool allow_duplicates) {
             FArr d = as_float(d_in, "dictionary", 2);
             return std::make_unique<PyOmp>(d.data(), usize(d.shape(0)), usize(d.shape(1)), max_k, allow_duplicates);
           }),
           py::arg("dictionary"), py::arg("max_k"), py::arg("allow_duplicates") = false)
      .def_property_readonly("n_features", [](const PyOmp& p) { return p.c.n_features(); })
      .def_property_readonly("n_atoms", [](const PyOmp& p) { return p.c.n_atoms(); })
      .def_property_readonly("max_k", [](const PyOmp& p) { return p.c.max_k(); })
      .def_property_readonly("kernel", [](const PyOmp& p) { return p.c.uses_avx2() ? "avx2-fma" : "portable"; })
      .def_property_readonly("gram",
                             [](const PyOmp& p) {
                               const edgefault::OmpCoder& c = p.c;
                               py::array_t<float> g({c.n_atoms(), c.n_atoms()});
                               std::copy(c.gram().begin(), c.gram().end(), g.mutable_data());
                               return g;
                             })
      .def(
          "encode",
          [](PyOmp& p, const py::object& x_in, std::optional<std::size_t> k, std::optional<float> tol) {
            edgefault::OmpCoder& c = p.c;
            FArr x = as_float(x_in, "X", 2);
            check_cols(x, c.n_features(), "X", "n_features of the dictionary");
            const std::size_t n = usize(x.shape(0));
            py::array_t<float> codes({n, c.n_atoms()});
            py::array_t<float> r2(static_cast<py::ssize_t>(n));
            py::array_t<std::int32_t> nact(static_cast<py::ssize_t>(n));
            const float* xp = x.data();
            float* cp = codes.mutable_data();
            float* rp = r2.mutable_data();
            std::int32_t* np_ = nact.mutable_data();
            const std::size_t kk = k.value_or(c.max_k());
            const float tt = tol.value_or(-1.0f);
            if (tol && !(*tol >= 0.0f)) throw py::value_error("tol must be >= 0 (squared residual norm)");
            {
              py::gil_scoped_release release;
              std::lock_guard<std::mutex> lock(p.m);
              c.encode(xp, n, kk, tt, cp, rp, np_);
            }
            return py::make_tuple(codes, r2, nact);
          },
          py::arg("X"), py::arg("k") = py::none(), py::arg("tol") = py::none(),
          "X (n, n_features) -> (codes (n, n_atoms), squared residual norms (n,), atoms used (n,)). "
          "Stops at k atoms (default max_k) or when the squared residual <= tol.");

  py::class_<PyTree>(m, "IndexTreeNorm",
                     "Tree-structured group norm sum_g w_g ||v_g||_2; groups = atoms of each node's subtree.")
      .def(py::init(&make_tree), py::arg("parent"), py::arg("atom_node"), py::arg("weights"))
      .def_property_readonly("n_nodes", [](const PyTree& t) { return t.tree.n_nodes(); })
      .def_property_readonly("n_atoms", [](const PyTree& t) { return t.tree.n_atoms(); })
      .def_property_readonly("perm", [](const PyTree& t) { return t.tree.perm(); })
      .def(
          "prox",
          [](const PyTree& t, const py::object& v_in, float scale) {
            FArr v = as_float(v_in, "v", 2);
            check_cols(v, t.tree.n_atoms(), "v", "n_atoms of the tree");
            if (!std::isfinite(scale) || scale < 0.0f) throw py::value_error("lam must be finite and >= 0");
            const std::size_t n = usize(v.shape(0)), na = t.tree.n_atoms();
            py::array_t<float> out({n, na});
            const float* vp = v.data();
            float* op = out.mutable_data();
            {
              py::gil_scoped_release release;
              std::vector<float> scratch(na);
              for (std::size_t i = 0; i < n; ++i) t.tree.prox(vp + i * na, scale, op + i * na, scratch.data());
            }
            return out;
          },
          py::arg("v"), py::arg("lam"), "Row-wise prox of lam * Omega on v (n, n_atoms).")
      .def(
          "value",
          [](const PyTree& t, const py::object& v_in) {
            FArr v = as_float(v_in, "v", 2);
            check_cols(v, t.tree.n_atoms(), "v", "n_atoms of the tree");
            const std::size_t n = usize(v.shape(0)), na = t.tree.n_atoms();
            py::array_t<double> out(static_cast<py::ssize_t>(n));
            for (std::size_t i = 0; i < n; ++i) out.mutable_data()[i] = t.tree.value(v.data() + i * na);
            return out;
          },
          py::arg("v"), "Row-wise Omega(v) for v (n, n_atoms).");

  py::class_<PyTreeLasso>(m, "TreeLassoCoder",
                                        "Tree-structured group-lasso coder (FISTA + exact tree prox). "
                                        "See edgefault.sparse.TreeLassoCoder.")
      .def(py::init([](const py::object& d_in, const PyTree& t) {
             FArr d = as_float(d_in, "dictionary", 2);
             return std::make_unique<PyTreeLasso>(d.data(), usize(d.shape(0)), usize(d.shape(1)), t.tree);
           }),
           py::arg("dictionary"), py::arg("tree"))
      .def_property_readonly("n_features", [](const PyTreeLasso& p) { return p.c.n_features(); })
      .def_property_readonly("n_atoms", [](const PyTreeLasso& p) { return p.c.n_atoms(); })
      .def_property_readonly("lipschitz", [](const PyTreeLasso& p) { return p.c.lipschitz(); })
      .def_property_readonly("kernel",
                             [](const PyTreeLasso& p) { return p.c.uses_avx2() ? "avx2-fma" : "portable"; })
      .def(
          "encode",
          [](PyTreeLasso& p, const py::object& x_in, float lam, std::size_t max_iter, float tol,
             const py::object& init_in) {
            edgefault::TreeLassoCoder& c = p.c;
            FArr x = as_float(x_in, "X", 2);
            check_cols(x, c.n_features(), "X", "n_features of the dictionary");
            const std::size_t n = usize(x.shape(0));
            FArr init;
            const float* ip = nullptr;
            if (!init_in.is_none()) {
              init = as_float(init_in, "init", 2);
              if (usize(init.shape(0)) != n)
                throw py::value_error("init has " + std::to_string(init.shape(0)) + " rows, expected " +
                                      std::to_string(n) + " (one per signal)");
              check_cols(init, c.n_atoms(), "init", "n_atoms");
              ip = init.data();
            }
            py::array_t<float> codes({n, c.n_atoms()});
            py::array_t<std::int32_t> iters(static_cast<py::ssize_t>(n));
            const float* xp = x.data();
            float* cp = codes.mutable_data();
            std::int32_t* itp = iters.mutable_data();
            {
              py::gil_scoped_release release;
              std::lock_guard<std::mutex> lock(p.m);
              c.encode(xp, n, lam, max_iter, tol, ip, cp, itp);
            }
            return py::make_tuple(codes, iters);
          },
          py::arg("X"), py::arg("lam"), py::arg("max_iter"), py::arg("tol"), py::arg("init") = py::none(),
          "X (n, n_features) -> (codes (n, n_atoms), iterations (n,)).");
}
