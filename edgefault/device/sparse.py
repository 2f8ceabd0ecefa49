"""Sparse coding against a fixed dictionary (thin wrappers over the C++ core).

Conventions (as the brief of issue 4 and the device kernels use them; note that scikit-learn's
``sparse_encode`` uses the transpose):

* ``dictionary`` is ``(n_features, n_atoms)``: **columns are atoms** (for a scikit-learn style
  ``components_`` of shape ``(n_atoms, n_features)`` pass ``components_.T``);
* ``X`` is ``(n_signals, n_features)`` (or one signal ``(n_features,)``);
* codes are ``(n_signals, n_atoms)`` (or ``(n_atoms,)``), float32, dense.

Everything is converted once to C-contiguous float32 and runs in C++ with the GIL released; a
coder object (:class:`OmpCoder`, :class:`TreeLassoCoder`) allocates at construction only, so
reuse one for repeated calls. Bad input raises :class:`edgefault.errors.InputError` (a
``ValueError``) naming the input: zero, non-unit or duplicate atoms (OMP), non-finite values
(with the row), k larger than the atom or feature count, a tree that is not a tree.

**OMP** (:func:`omp`, :class:`OmpCoder`) is Batch-OMP (Rubinstein, Zibulevsky & Elad 2008):
the Gram matrix ``G = D^T D`` is computed once; per signal only ``D^T x`` is formed and the
least-squares step is an incrementally updated Cholesky factor. Selection is
``argmax |D^T r|`` with ties broken towards the lowest atom index. It stops after
``n_nonzero_coefs`` atoms, when ``||r||^2 <= tol``, or early when the next atom is linearly
dependent on the selected ones (or every correlation is zero). Atoms must be unit-norm. The
squared residual is tracked as ``||x||^2 - |Q^T x|^2`` from float32 ``D^T x``: it is good to about
``1e-6 ||x||^2``, so a ``tol`` below that acts like no tolerance.

**Tree-structured group lasso** (:func:`tree_group_lasso`, :class:`TreeLassoCoder`) solves
``min_a 0.5 ||x - D a||^2 + alpha * sum_g w_g ||a_g||_2`` where the groups are the atoms of the
subtrees of an :class:`IndexTree` (nested or disjoint). FISTA with step ``1/L`` (``L`` = largest
eigenvalue of ``G`` by power iteration, times ``1 + 1e-4``), gradient-based adaptive restart,
the exact prox of the tree norm (group soft-thresholding applied leaves to root, Jenatton et
al. 2011) and warm starts. Stopping rule: relative change of the iterate,
``||a_{t+1} - a_t||_2 <= tol * max(||a_{t+1}||_2, 1e-12)`` (or ``max_iter``); iteration counts
are returned on request. (A duality gap is not used: the dual norm of a tree norm has no closed
form, so the gap would need an inner solve per check.)

    >>> import numpy as np
    >>> from edgefault import sparse
    >>> D = np.eye(4, dtype=np.float32)
    >>> sparse.omp([0.0, 3.0, 0.0, -1.0], D, n_nonzero_coefs=1).tolist()
    [0.0, 3.0, 0.0, 0.0]
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from edgefault import _core
from edgefault.errors import InputError

__all__ = [
    "IndexTree", "OmpCoder", "OmpResult", "TreeLassoCoder", "omp", "tree_group_lasso", "tree_prox",
]


# ---- input helpers ---------------------------------------------------------------------------

def _real_array(a: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged nested lists and the like
        raise InputError(f"{name}: expected a real numeric array ({e})") from None
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise InputError(f"{name}: expected a real numeric array (int or float), got dtype {arr.dtype}")
    return arr


def _signals(X: Any, n_features: int, name: str = "X") -> tuple[np.ndarray, bool]:
    """(float32 C-contiguous (n, n_features), was 1-D)."""
    a = _real_array(X, name)
    if a.ndim == 1:
        a = a.reshape(1, -1)
        single = True
    elif a.ndim == 2:
        single = False
    else:
        raise InputError(f"{name}: expected shape (n_signals, {n_features}) or ({n_features},), got {a.shape}")
    if a.shape[1] != n_features:
        raise InputError(f"{name}: expected {n_features} features per row (the dictionary has "
                         f"{n_features} rows), got shape {a.shape}")
    with np.errstate(over="ignore"):  # out-of-range values become inf: the core names the row
        return np.ascontiguousarray(a, dtype=np.float32), single


def _dictionary(dictionary: Any) -> np.ndarray:
    d = _real_array(dictionary, "dictionary")
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise InputError(f"dictionary: expected a non-empty 2-D array (n_features, n_atoms) with atoms as "
                         f"columns, got shape {d.shape}")
    with np.errstate(over="ignore"):  # out-of-range values become inf: the core names the entry
        return np.ascontiguousarray(d, dtype=np.float32)


def _core_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        raise InputError(str(e)) from None


def _int_param(v: Any, name: str, lo: int = 1) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise InputError(f"{name}: expected an integer >= {lo}, got {v!r}")
    if int(v) < lo:
        raise InputError(f"{name}: expected an integer >= {lo}, got {v!r}")
    return int(v)


def _float_param(v: Any, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a finite number >= 0, got {v!r}") from None
    if not np.isfinite(f) or f < 0:
        raise InputError(f"{name}: expected a finite number >= 0, got {v!r}")
    return f


# ---- OMP -------------------------------------------------------------------------------------

class OmpResult(NamedTuple):
    codes: np.ndarray        #: (n, n_atoms) float32, dense
    residual_sq: np.ndarray  #: (n,) float32: ||x - D code||^2
    n_active: np.ndarray     #: (n,) int32: atoms selected


class OmpCoder:
    """Reusable Batch-OMP coder over a fixed dictionary ``(n_features, n_atoms)`` (columns =
    unit-norm atoms). ``max_k`` sizes the workspaces: ``encode`` accepts any
    ``n_nonzero_coefs <= max_k``. Duplicate atoms (``|<d_i, d_j>| > 1 - 1e-6``) are an error
    unless ``allow_duplicates``. Calls on one coder from several threads are serialised by a lock
    (the GIL is released while they run): make one coder per thread to code in parallel.
    """

    def __init__(self, dictionary: Any, max_k: int, *, allow_duplicates: bool = False) -> None:
        d = _dictionary(dictionary)
        max_k = _int_param(max_k, "max_k")
        self._core = _core_call(_core.OmpCoder, d, max_k, bool(allow_duplicates))
        self.n_features = int(d.shape[0])
        self.n_atoms = int(d.shape[1])
        self.max_k = max_k

    @property
    def kernel(self) -> str:
        """``"avx2-fma"`` or ``"portable"``: the kernels this coder runs."""
        return str(self._core.kernel)

    @property
    def gram(self) -> np.ndarray:
        """G = D^T D (n_atoms, n_atoms), float32."""
        return self._core.gram

    def encode(self, X: Any, n_nonzero_coefs: int | None = None, tol: float | None = None) -> OmpResult:
        """Codes of ``X`` ``(n, n_features)`` (or one signal): stop after ``n_nonzero_coefs``
        atoms (default ``max_k``) or when the squared residual ``<= tol`` (default: no tolerance).
        Returns :class:`OmpResult` ``(codes, residual_sq, n_active)``."""
        x, single = _signals(X, self.n_features)
        k = self.max_k if n_nonzero_coefs is None else _int_param(n_nonzero_coefs, "n_nonzero_coefs")
        if k > self.max_k:
            raise InputError(f"n_nonzero_coefs: {k} is larger than this coder's max_k={self.max_k}")
        t = None if tol is None else _float_param(tol, "tol")
        codes, r2, nact = _core_call(self._core.encode, x, k, t)
        if single:
            return OmpResult(codes[0], r2[0], nact[0])
        return OmpResult(codes, r2, nact)


def omp(X: Any, dictionary: Any, n_nonzero_coefs: int | None = None, tol: float | None = None, *,
        allow_duplicates: bool = False, return_residuals: bool = False) -> Any:
    """Orthogonal Matching Pursuit codes of ``X`` over ``dictionary`` ``(n_features, n_atoms)``.

    Defaults as :func:`sklearn.linear_model.orthogonal_mp`: with neither ``n_nonzero_coefs`` nor
    ``tol``, ``n_nonzero_coefs = max(int(0.1 * n_atoms), 1)`` (10 % of the atoms, at most
    ``n_features``). ``tol`` bounds the squared
    residual norm; with ``tol`` alone the atom count is bounded by ``min(n_atoms, n_features)``;
    given both, whichever comes first stops (scikit-learn ignores ``n_nonzero_coefs`` when ``tol``
    is set). Returns codes ``(n, n_atoms)`` (``(n_atoms,)`` for one signal), plus the squared
    residual norms when ``return_residuals``.
    """
    d = _dictionary(dictionary)
    n_features, n_atoms = d.shape
    if n_nonzero_coefs is None:
        k = min(n_atoms, n_features) if tol is not None else min(max(int(0.1 * n_atoms), 1), n_features)
    else:
        k = _int_param(n_nonzero_coefs, "n_nonzero_coefs")
    coder = OmpCoder(d, k, allow_duplicates=allow_duplicates)
    res = coder.encode(X, k, tol)
    return (res.codes, res.residual_sq) if return_residuals else res.codes


# ---- index tree ------------------------------------------------------------------------------

def _is_parent_tuple(obj: Any) -> bool:
    """A ``(parent, atom_node, weights)`` tuple (as FaultTree.index_tree returns): three 1-D
    arrays, the first two integer, the weights floating point (a tuple of three integer index
    arrays is read as a list of groups)."""
    if not isinstance(obj, tuple) or len(obj) != 3:
        return False
    try:
        a = [np.asarray(x) for x in obj]
    except Exception:
        return False
    return (all(x.ndim == 1 for x in a) and a[0].dtype.kind in "iu" and a[1].dtype.kind in "iu"
            and a[2].dtype.kind == "f")


class IndexTree:
    """Index tree over the atoms of a dictionary, for tree-structured group norms.

    ``parent`` ``(n_nodes,)``: parent node of every node, ``-1`` for the single root.
    ``atom_node`` ``(n_atoms,)``: the node each atom hangs on. ``weights`` ``(n_nodes,)`` (default
    1): ``w_g >= 0`` of each node's group. The group of a node is every atom attached to its
    subtree, so groups are nested or disjoint by construction. A parent array with a cycle,
    several or no roots, or out-of-range entries raises ``InputError("... not a tree ...")``
    naming the nodes. Also :meth:`from_groups` (index arrays, validated nested-or-disjoint) and
    :meth:`from_nested` (a nested dict spec). ``names`` (optional) label the nodes.
    """

    def __init__(self, parent: Any, atom_node: Any, weights: Any = None, names: Sequence[str] | None = None) -> None:
        p = self._index_array(parent, "parent")
        an = self._index_array(atom_node, "atom_node")
        if weights is None:
            w = np.ones(p.size, dtype=np.float32)
        else:
            w = _real_array(weights, "weights").astype(np.float32).reshape(-1)
        self._core = _core_call(_core.IndexTreeNorm, p, an, w)
        self.parent = p
        self.atom_node = an
        self.weights = w
        self.n_nodes = int(p.size)
        self.n_atoms = int(an.size)
        if names is not None:
            names = [str(s) for s in names]
            if len(names) != self.n_nodes:
                raise InputError(f"names: expected {self.n_nodes} node names, got {len(names)}")
        self.names = list(names) if names is not None else [str(i) for i in range(self.n_nodes)]

    @staticmethod
    def _index_array(a: Any, name: str) -> np.ndarray:
        arr = np.asarray(a)
        if arr.dtype == object or arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            elif arr.size == 0 and arr.dtype.kind == "f":
                arr = arr.astype(np.int64)
            else:
                raise InputError(f"{name}: expected an integer array, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise InputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
        if arr.size and (arr.min() < -1 or arr.max() > np.iinfo(np.int32).max):
            raise InputError(f"{name}: entries out of range ({arr.min()} .. {arr.max()})")
        return arr.astype(np.int32)

    def __repr__(self) -> str:
        return f"IndexTree(n_nodes={self.n_nodes}, n_atoms={self.n_atoms})"

    @classmethod
    def coerce(cls, tree: Any, n_atoms: int | None = None) -> "IndexTree":
        """An IndexTree from an IndexTree, a ``(parent, atom_node, weights)`` tuple, or a sequence of
        groups (index arrays, weight 1 each)."""
        if isinstance(tree, IndexTree):
            t = tree
        elif _is_parent_tuple(tree):
            t = cls(*tree)
        elif isinstance(tree, dict):
            t = cls.from_nested(tree)
        else:
            t = cls.from_groups(tree, n_atoms=n_atoms)
        if n_atoms is not None and t.n_atoms != n_atoms:
            raise InputError(f"tree: covers {t.n_atoms} atoms, expected {n_atoms}")
        return t

    @classmethod
    def from_groups(cls, groups: Sequence[Any], weights: Any = None, n_atoms: int | None = None) -> "IndexTree":
        """Tree from groups given as index arrays (every pair nested or disjoint). Node ``i`` is
        group ``i``; when no single group holds every atom a root node ``len(groups)`` with weight 0
        is added. Atoms in no group hang on the root. Identical groups are chained in index order.
        """
        gs = []
        for i, g in enumerate(groups):
            a = np.asarray(g)
            if a.ndim == 1 and a.size == 0:
                raise InputError(f"groups[{i}] is empty")
            if a.dtype == object or a.dtype.kind not in "iu" or a.ndim != 1:
                raise InputError(f"groups[{i}]: expected a 1-D integer index array, got {a!r}")
            u = np.unique(a)
            if u.size != a.size:
                raise InputError(f"groups[{i}] repeats an atom index")
            if u[0] < 0:
                raise InputError(f"groups[{i}] has a negative atom index {int(u[0])}")
            gs.append(u.astype(np.int64))
        if not gs:
            raise InputError("groups: expected at least one group")
        top = max(int(g[-1]) for g in gs) + 1
        n = top if n_atoms is None else _int_param(n_atoms, "n_atoms")
        if n < top:
            raise InputError(f"groups: atom index {top - 1} is out of range for n_atoms={n}")
        ng = len(gs)
        if weights is None:
            w = np.ones(ng, dtype=np.float32)
        else:
            w = _real_array(weights, "weights").astype(np.float32).reshape(-1)
            if w.size != ng:
                raise InputError(f"weights: expected one weight per group ({ng}), got {w.size}")
        member = np.zeros((ng, n), dtype=np.float64)
        for i, g in enumerate(gs):
            member[i, g] = 1.0
        inter = member @ member.T
        size = np.diag(inter).copy()
        for i in range(ng):
            for j in range(i + 1, ng):
                if 0 < inter[i, j] < min(size[i], size[j]):
                    raise InputError(f"groups: not a tree: groups (nodes) {i} and {j} overlap without nesting "
                                     f"({int(inter[i, j])} shared atoms)")
        # h contains g: g's atoms all in h, h strictly larger or an identical set of lower index
        parent = np.full(ng, -1, dtype=np.int64)
        for g in range(ng):
            best = None
            for h in range(ng):
                if h == g or inter[g, h] != size[g]:
                    continue
                if size[h] > size[g] or h < g:
                    key = (size[h], -h)
                    if best is None or key < best[0]:
                        best = (key, h)
            if best is not None:
                parent[g] = best[1]
        roots = np.flatnonzero(parent == -1)
        atom_node = np.full(n, -1, dtype=np.int64)
        atom_key = [None] * n
        for g in range(ng):
            for j in gs[g]:
                key = (size[g], -g)
                if atom_key[j] is None or key < atom_key[j]:
                    atom_key[j] = key
                    atom_node[j] = g
        if roots.size == 1 and size[roots[0]] == n:
            root = int(roots[0])
        else:
            root = ng
            parent = np.append(parent, -1)
            parent[roots] = root
            w = np.append(w, np.float32(0.0))
        atom_node[atom_node == -1] = root
        return cls(parent, atom_node, w)

    @classmethod
    def from_nested(cls, spec: dict) -> "IndexTree":
        """Tree from a nested spec: a node is ``{"atoms": [...], "children": [...], "weight": w,
        "name": str}`` (all keys optional; weight defaults to 1). Nodes are numbered in pre-order;
        every atom ``0 .. n_atoms-1`` must appear exactly once."""
        parent: list[int] = []
        weights: list[float] = []
        names: list[str] = []
        atoms: dict[int, int] = {}
        stack: list[tuple[Any, int, str]] = [(spec, -1, "spec")]
        while stack:
            node, par, where = stack.pop()
            if not isinstance(node, dict):
                raise InputError(f"{where}: expected a dict node, got {type(node).__name__}")
            unknown = set(node) - {"atoms", "children", "weight", "name"}
            if unknown:
                raise InputError(f"{where}: unknown keys {sorted(unknown)}")
            idx = len(parent)
            parent.append(par)
            weights.append(_float_param(node.get("weight", 1.0), f"{where}.weight"))
            names.append(str(node.get("name", idx)))
            for a in node.get("atoms", []):
                if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)) or a < 0:
                    raise InputError(f"{where}.atoms: expected atom indices >= 0, got {a!r}")
                if int(a) in atoms:
                    raise InputError(f"{where}.atoms: atom {a} already belongs to node {atoms[int(a)]}")
                atoms[int(a)] = idx
            children = node.get("children", [])
            for c in reversed(range(len(children))):
                stack.append((children[c], idx, f"{where}.children[{c}]"))
        if not atoms:
            raise InputError("spec: no atoms")
        n = max(atoms) + 1
        missing = [a for a in range(n) if a not in atoms]
        if missing:
            raise InputError(f"spec: atoms {missing[:10]} are not attached to any node")
        return cls(np.array(parent), np.array([atoms[a] for a in range(n)]), np.array(weights), names)

    def groups(self) -> list[np.ndarray]:
        """Atoms (sorted) of each node's subtree, indexed by node."""
        out: list[list[int]] = [[] for _ in range(self.n_nodes)]
        for j, v in enumerate(self.atom_node):
            v = int(v)
            while v != -1:
                out[v].append(j)
                v = int(self.parent[v])
        return [np.array(sorted(g), dtype=np.int64) for g in out]

    def value(self, v: Any) -> Any:
        """Omega(v) = sum_g w_g ||v_g||_2 for v ``(n_atoms,)`` or row-wise for ``(n, n_atoms)``."""
        x, single = _signals(v, self.n_atoms, "v")
        out = _core_call(self._core.value, x)
        return float(out[0]) if single else out

    def prox(self, v: Any, lam: float) -> np.ndarray:
        """prox of ``lam * Omega`` (exact: group shrinkage in post-order, leaves to root)."""
        x, single = _signals(v, self.n_atoms, "v")
        out = _core_call(self._core.prox, x, _float_param(lam, "lam"))
        return out[0] if single else out


def tree_prox(v: Any, groups: Any, weights: Any = None, lam: float = 1.0) -> np.ndarray:
    """Proximal operator of ``lam * sum_g w_g ||v_g||_2`` for tree-structured groups.

    ``groups``: an :class:`IndexTree` (its weights are used; ``weights`` must be None), a
    ``(parent, atom_node, weights)`` tuple, or a sequence of index arrays (nested or disjoint)
    with ``weights`` one per group (default 1). ``v``: ``(n_atoms,)`` or ``(n, n_atoms)``.
    """
    x = _real_array(v, "v")
    if x.ndim not in (1, 2):
        raise InputError(f"v: expected shape (n_atoms,) or (n, n_atoms), got {x.shape}")
    n_atoms = int(x.shape[-1])
    if isinstance(groups, IndexTree) or _is_parent_tuple(groups):
        if weights is not None:
            raise InputError("weights: give weights through the IndexTree, not both")
        tree = IndexTree.coerce(groups, n_atoms)
    else:
        tree = IndexTree.from_groups(groups, weights, n_atoms=n_atoms)
    return tree.prox(x, lam)


# ---- tree-structured group lasso -------------------------------------------------------------

class TreeLassoCoder:
    """Reusable tree-structured group-lasso coder over ``dictionary`` ``(n_features, n_atoms)``
    (columns = atoms, any norm) and an index ``tree`` (see :meth:`IndexTree.coerce`). Computes
    G and L once. Calls on one coder from several threads are serialised by a lock; make one coder
    per thread to code in parallel."""

    def __init__(self, dictionary: Any, tree: Any) -> None:
        d = _dictionary(dictionary)
        self.tree = IndexTree.coerce(tree, int(d.shape[1]))
        self._core = _core_call(_core.TreeLassoCoder, d, self.tree._core)
        self.n_features = int(d.shape[0])
        self.n_atoms = int(d.shape[1])

    @property
    def kernel(self) -> str:
        """``"avx2-fma"`` or ``"portable"``: the kernels this coder runs."""
        return str(self._core.kernel)

    @property
    def lipschitz(self) -> float:
        """Step 1/L uses this L (largest eigenvalue of D^T D, times 1 + 1e-4)."""
        return float(self._core.lipschitz)

    def encode(self, X: Any, alpha: float, max_iter: int = 1000, tol: float = 1e-4, init: Any = None,
               return_n_iter: bool = False) -> Any:
        """Codes ``(n, n_atoms)`` of ``X`` (``(n_atoms,)`` for one signal); with ``return_n_iter``
        also the FISTA iterations per signal. ``init``: warm start of the same shape as the codes."""
        x, single = _signals(X, self.n_features)
        lam = _float_param(alpha, "alpha")
        mi = _int_param(max_iter, "max_iter")
        t = _float_param(tol, "tol")
        a0 = None
        if init is not None:
            a0 = _real_array(init, "init")
            want = (self.n_atoms,) if single else (x.shape[0], self.n_atoms)
            if a0.shape != want:
                raise InputError(f"init: expected shape {want}, got {a0.shape}")
            with np.errstate(over="ignore"):
                a0 = np.ascontiguousarray(a0.reshape(x.shape[0], self.n_atoms), dtype=np.float32)
        codes, iters = _core_call(self._core.encode, x, lam, mi, t, a0)
        if single:
            codes, iters = codes[0], iters[0]
        return (codes, iters) if return_n_iter else codes


def tree_group_lasso(X: Any, dictionary: Any, tree: Any, alpha: float, max_iter: int = 1000, tol: float = 1e-4,
                     init: Any = None, return_n_iter: bool = False) -> Any:
    """Tree-structured group-lasso codes: ``argmin_a 0.5 ||x - D a||^2 + alpha * Omega(a)`` per
    row of ``X``, ``Omega(a) = sum_g w_g ||a_g||_2`` over the groups of ``tree`` (an
    :class:`IndexTree`, a ``(parent, atom_node, weights)`` tuple or a list of nested-or-disjoint
    index arrays with weight 1). FISTA stops when the relative change of the iterate is
    ``<= tol`` or after ``max_iter`` iterations; ``init`` warm-starts it."""
    return TreeLassoCoder(dictionary, tree).encode(X, alpha, max_iter=max_iter, tol=tol, init=init,
                                                   return_n_iter=return_n_iter)
