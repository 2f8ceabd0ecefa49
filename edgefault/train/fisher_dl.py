"""Structured Fisher discrimination dictionary learning (training side).

One sub-dictionary ``D_i`` (``n_atoms_per_class`` unit-norm atoms, rows) per class. With codes
``a`` of a sample x of class i split into blocks ``a^j`` (coefficients on ``D_j``), the
objective is (FDDL, Yang et al. 2011, with a structured between-class term)::

    sum_x  1/2 ||x - a D||^2                                   reconstruction
         + 1/2 ||x - a^i D_i||^2                               discriminative fidelity
         + 1/2 sum_{j != i} w_ij ||a^j D_j||^2                 structured between-class term
         + lambda_fisher/2 (||a - m_i||^2 - ||m_i - m||^2 + eta ||a||^2)   Fisher term
         + alpha Omega_tree(a)                                 tree-structured group sparsity

``w_ij = 1 - structure * s_ij`` where ``s`` is the fault tree's relationship matrix (1 for the
same class, e.g. 0.5 for two severities of one location, 0 for unrelated faults): using the
sub-dictionary of an unrelated class is penalised fully, a sibling's less. ``m_i``, ``m`` are the
class / overall means of the codes (held at the previous iterate, as in FDDL's per-class update).

Training alternates (1) sparse coding of every sample and (2) a block update of each
sub-dictionary (closed-form least squares of the quadratic terms, then atoms renormalised), for
``max_iter`` rounds. Deterministic for a given ``random_state``.

All coding (the training step, :meth:`FisherDictionaryLearning.transform`,
:meth:`~FisherDictionaryLearning.class_residuals`) is the C++ core's tree-structured group lasso
(:class:`edgefault.device.sparse.TreeLassoCoder`: FISTA, exact tree prox, float32), the coder the
device runs. In the training step the smooth part of a class-i sample's objective is a quadratic
``1/2 a^T H_i a - b^T a`` (``H_i`` the same for every sample of class i, the means held fixed),
so it is handed to the coder as the least-squares problem ``1/2 ||s - E_i a||^2`` with
``E_i^T E_i = H_i`` and ``E_i^T s = b`` (:func:`least_squares_form`), warm-started from the
previous round's codes.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from edgefault.device.faulttree import FaultTree, default_bearing_tree
from edgefault.device.sparse import IndexTree, TreeLassoCoder


def least_squares_form(H: np.ndarray, B: np.ndarray, rel_floor: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """``(E (r, k), S (n, r))`` with ``E^T E = H`` and ``E^T s_i = b_i``, so that
    ``1/2 ||s_i - E a||^2 = 1/2 a^T H a - b_i^T a + const``: a least-squares coder over the
    dictionary E (columns = atoms) minimises the quadratic. H (k, k) symmetric positive
    semi-definite, B (n, k) the rows b_i.

    H positive definite (as with ``lambda_fisher * (1 + eta) > 0``): ``E = L^T`` from the Cholesky
    factor ``H = L L^T``, exact. Otherwise ``E = diag(sqrt(s)) V^T`` from ``H = V diag(s) V^T``
    without the eigen-directions ``s <= rel_floor * max(s)`` (b_i taken on H's range)."""
    try:
        Lc = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        Lc = None
    if Lc is not None and np.all(np.diag(Lc) > np.sqrt(rel_floor * max(float(np.max(np.diag(H))), 0.0))):
        return np.ascontiguousarray(Lc.T), np.ascontiguousarray(solve_triangular(Lc, B.T, lower=True).T)
    s, V = np.linalg.eigh(H)
    keep = s > rel_floor * max(float(s[-1]), 0.0)
    if not keep.any():
        raise ValueError("least_squares_form: H has no positive eigenvalue")
    r = np.sqrt(s[keep])
    return r[:, None] * V[:, keep].T, (B @ V[:, keep]) / r


class FisherDictionaryLearning(TransformerMixin, BaseEstimator):
    """Learn a structured Fisher discrimination dictionary; ``transform`` gives tree-sparse codes.

    Parameters
    ----------
    n_atoms_per_class : atoms per class sub-dictionary (12 in the SFDSC paper).
    alpha : weight of the tree-structured norm (in units of the data's squared norm).
    lambda_fisher, eta : weight of the Fisher term on the codes and its convexifying ridge.
    structure : 0..1, how much tree relatedness lowers the between-class penalty.
    tree : a :class:`FaultTree`, its dict, or None (the bearing default built from the labels,
        ``str`` of each class).
    w_atom, w_class, w_node, w_root : weights of the tree's groups (atom, class, inner node,
        root; see :meth:`FaultTree.index_tree`).
    max_iter : alternations of coding and dictionary update; ``coding_iter`` FISTA iterations
        per coding step (and for ``transform``); ``tol`` FISTA's relative-change stop.
    random_state : seed of the atom initialisation (random training samples of each class).

    Attributes: ``components_`` (n_atoms, n_features) unit-norm atoms, ``atom_class_`` (class
    index of each atom), ``classes_``, ``tree_``, ``index_tree_`` (parent, atom_node, weight): the
    arrays of the :class:`~edgefault.device.sparse.IndexTree` of the norm (kept as arrays so the
    estimator pickles), ``relationship_``, ``objective_`` (per iteration), ``n_iter_``,
    ``n_features_in_``.
    """

    def __init__(self, n_atoms_per_class: int = 12, *, alpha: float = 0.02, lambda_fisher: float = 0.01,
                 eta: float = 1.0, structure: float = 0.5, tree: Any = None, w_atom: float = 1.0,
                 w_class: float = 1.0, w_node: float = 1.0, w_root: float = 0.0,
                 max_iter: int = 8, coding_iter: int = 60, tol: float = 1e-4,
                 random_state: Any = None) -> None:
        self.n_atoms_per_class = n_atoms_per_class
        self.alpha = alpha
        self.lambda_fisher = lambda_fisher
        self.eta = eta
        self.structure = structure
        self.tree = tree
        self.w_atom = w_atom
        self.w_class = w_class
        self.w_node = w_node
        self.w_root = w_root
        self.max_iter = max_iter
        self.coding_iter = coding_iter
        self.tol = tol
        self.random_state = random_state

    # -- helpers --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        k = self.n_atoms_per_class
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_atoms_per_class must be a positive integer, got {k!r}")
        for name in ("alpha", "lambda_fisher", "eta", "w_atom", "w_class", "w_node",
                     "w_root", "tol"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not 0.0 <= float(self.structure) <= 1.0:
            raise ValueError(f"structure must be in [0, 1], got {self.structure!r}")
        for name in ("max_iter", "coding_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

    def _make_tree(self, names: list[str]) -> FaultTree:
        t = self.tree
        if t is None:
            return default_bearing_tree(names)
        tree = t if isinstance(t, FaultTree) else FaultTree.from_dict(t)
        tree.check_labels(names)
        return tree

    def _index_tree(self) -> IndexTree:
        return IndexTree(*self.index_tree_)

    def _encode(self, S: np.ndarray, E: np.ndarray, tree: IndexTree, init: np.ndarray | None = None) -> np.ndarray:
        """Core tree-lasso codes (float64 copy of the float32 result) of rows S over E (r, k),
        columns = atoms."""
        coder = TreeLassoCoder(E, tree)
        return coder.encode(S, float(self.alpha), max_iter=int(self.coding_iter), tol=float(self.tol),
                            init=init).astype(np.float64)

    def _code(self, X: np.ndarray, D: np.ndarray) -> np.ndarray:
        """Codes of X (n, d) over the atoms D (k, d): ``0.5 ||x - a D||^2 + alpha Omega(a)``."""
        return self._encode(X, np.ascontiguousarray(D.T), self._index_tree())

    def _fisher_codes(self, X: np.ndarray, D: np.ndarray, A: np.ndarray, members: list[np.ndarray],
                      blocks: list[np.ndarray], W: np.ndarray, tree: IndexTree) -> np.ndarray:
        """The coding step: per class i, codes of its samples minimising the FDDL objective
        ``1/2 a^T H_i a - b^T a + alpha Omega(a)`` (class / overall code means from A held fixed),
        warm-started from A; returns the new codes (n, k)."""
        lam, eta = float(self.lambda_fisher), float(self.eta)
        Mc = np.stack([A[m].mean(axis=0) for m in members])           # class means of codes
        mall = A.mean(axis=0)
        G = D @ D.T
        Gb = [G[np.ix_(b, b)] for b in blocks]
        out = np.empty_like(A)
        for i, m in enumerate(members):
            # reconstruction + block terms (W[i, i] = 1: the fidelity term) + Fisher ridge
            H = G.copy()
            for j, b in enumerate(blocks):
                H[np.ix_(b, b)] += W[i, j] * Gb[j]
            H[np.diag_indices_from(H)] += lam * (1.0 + eta)
            B = X[m] @ D.T
            B[:, blocks[i]] *= 2.0                                      # + x D_i^T (fidelity)
            B += lam * (2.0 * Mc[i] - mall)                             # Fisher target
            E, S = least_squares_form(H, B)
            out[m] = self._encode(S, E, tree, init=A[m])
        return out

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> "FisherDictionaryLearning":
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        check_classification_targets(y)
        classes, yi = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"need samples of at least 2 classes, got {classes.size} class")
        self.classes_ = classes
        names = [str(c) for c in classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class labels {list(classes)} are not distinct as strings")
        self.tree_ = self._make_tree(names)
        c, k = classes.size, int(self.n_atoms_per_class)
        atom_class = np.repeat(np.arange(c), k)
        self.atom_class_ = atom_class
        self.index_tree_ = self.tree_.index_tree(
            atom_class, names, atom_weight=float(self.w_atom), class_weight=float(self.w_class),
            node_weight=float(self.w_node), root_weight=float(self.w_root))
        tree = self._index_tree()                    # validates the tree (the core's type)
        S = self.tree_.relationship(names)
        self.relationship_ = S
        W = 1.0 - float(self.structure) * S          # between-class weights w_ij
        np.fill_diagonal(W, 1.0)                    # own block: fidelity weight 1
        rng = check_random_state(self.random_state)
        n, d = X.shape
        blocks = [np.flatnonzero(atom_class == i) for i in range(c)]
        members = [np.flatnonzero(yi == i) for i in range(c)]
        D = np.empty((c * k, d))
        for i in range(c):
            pick = rng.choice(members[i], size=k, replace=members[i].size < k)
            D[blocks[i]] = X[pick] + 1e-3 * rng.standard_normal((k, d)) * (np.std(X) + 1e-12)
        D = self._normalise(D, X, members, atom_class, rng)
        A = np.zeros((n, c * k))
        obj = []
        for _ in range(int(self.max_iter)):
            # --- coding step: the core's coder on the full FDDL objective (means at the last iterate)
            A = self._fisher_codes(X, D, A, members, blocks, W, tree)
            # --- dictionary step: block-wise closed-form update, then unit-norm atoms
            for i in range(c):
                bi = blocks[i]
                others = np.setdiff1d(np.arange(c * k), bi)
                R = X - A[:, others] @ D[others]
                Ai = A[:, bi]
                Aii = Ai[members[i]]
                wcol = W[yi, i].copy()
                wcol[members[i]] = 0.0
                M = Ai.T @ Ai + Aii.T @ Aii + (Ai * wcol[:, None]).T @ Ai
                rhs = Ai.T @ R + Aii.T @ X[members[i]]
                ridge = 1e-6 * (np.trace(M) / k + 1e-12)
                D[bi] = np.linalg.solve(M + ridge * np.eye(k), rhs)
            D = self._normalise(D, X, members, atom_class, rng)
            obj.append(self._objective(X, A, D, yi, members, blocks, W, tree))
        self.components_ = D
        self.train_codes_ = A
        self.objective_ = np.asarray(obj)
        self.n_iter_ = len(obj)
        return self

    @staticmethod
    def _normalise(D: np.ndarray, X: np.ndarray, members: list[np.ndarray], atom_class: np.ndarray,
                   rng: np.random.RandomState) -> np.ndarray:
        nrm = np.linalg.norm(D, axis=1)
        dead = nrm < 1e-10
        for a in np.flatnonzero(dead):
            cand = members[atom_class[a]]
            D[a] = X[cand[rng.randint(cand.size)]]
            if np.linalg.norm(D[a]) < 1e-10:
                D[a] = rng.standard_normal(D.shape[1])
        return D / np.linalg.norm(D, axis=1, keepdims=True)

    def _objective(self, X: np.ndarray, A: np.ndarray, D: np.ndarray, yi: np.ndarray,
                   members: list[np.ndarray], blocks: list[np.ndarray], W: np.ndarray, tree: IndexTree) -> float:
        f = 0.5 * float(np.sum((X - A @ D) ** 2))
        for i, m in enumerate(members):
            for j, b in enumerate(blocks):
                part = A[np.ix_(m, b)] @ D[b]
                if i == j:
                    f += 0.5 * float(np.sum((X[m] - part) ** 2))
                else:
                    f += 0.5 * W[i, j] * float(np.sum(part ** 2))
        mall = A.mean(axis=0)
        for m in members:
            mi = A[m].mean(axis=0)
            f += 0.5 * float(self.lambda_fisher) * (float(np.sum((A[m] - mi) ** 2))
                                                    - m.size * float(np.sum((mi - mall) ** 2))
                                                    + float(self.eta) * float(np.sum(A[m] ** 2)))
        f += float(self.alpha) * float(np.sum(tree.value(A)))
        return f

    # -- use ------------------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Tree-structured sparse codes (n, n_atoms) of X over the learned dictionary."""
        check_is_fitted(self, "components_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._code(X, self.components_)

    def class_residuals(self, X: Any, codes: np.ndarray | None = None) -> np.ndarray:
        """(n, n_classes) squared residuals ||x - a^i D_i||^2 of each sub-dictionary."""
        check_is_fitted(self, "components_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        A = self._code(X, self.components_) if codes is None else codes
        out = np.empty((X.shape[0], self.classes_.size))
        for i in range(self.classes_.size):
            b = self.atom_class_ == i
            out[:, i] = np.sum((X - A[:, b] @ self.components_[b]) ** 2, axis=1)
        return out

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
