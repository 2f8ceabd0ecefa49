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

Training alternates (1) sparse coding of every sample by FISTA with the exact tree prox and
(2) a block update of each sub-dictionary (closed-form least squares of the quadratic terms,
then atoms renormalised), for ``max_iter`` rounds. Deterministic for a given ``random_state``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from edgefault.device.faulttree import FaultTree, default_bearing_tree, groups_from_index_tree, tree_fista


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
    w_atom, w_class, w_node, w_root : weights of the tree's groups (see
        :meth:`FaultTree.groups`).
    max_iter : alternations of coding and dictionary update; ``coding_iter`` FISTA iterations
        per coding step (and for ``transform``); ``tol`` FISTA's relative-change stop.
    random_state : seed of the atom initialisation (random training samples of each class).

    Attributes: ``components_`` (n_atoms, n_features) unit-norm atoms, ``atom_class_`` (class
    index of each atom), ``classes_``, ``tree_``, ``groups_`` / ``group_weights_`` (leaves to
    root), ``index_tree_`` (parent, atom_node, weight) in the layout of the core's index tree,
    ``relationship_``, ``objective_`` (per iteration), ``n_iter_``, ``n_features_in_``.
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

    def _code(self, X: np.ndarray, D: np.ndarray, smooth: Any = None, A0: np.ndarray | None = None,
              max_iter: int | None = None) -> np.ndarray:
        return tree_fista(X, D, self.groups_, self.group_weights_, float(self.alpha),
                          max_iter=int(max_iter or self.coding_iter), tol=float(self.tol), A0=A0, smooth=smooth)

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
        self.groups_, self.group_weights_ = groups_from_index_tree(*self.index_tree_)
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
        lam, eta = float(self.lambda_fisher), float(self.eta)
        A = np.zeros((n, c * k))
        obj = []
        for _ in range(int(self.max_iter)):
            # --- coding step: FISTA on the full FDDL objective (means fixed at the last iterate)
            Mc = np.stack([A[m].mean(axis=0) for m in members])           # class means of codes
            mall = A.mean(axis=0)
            own = np.zeros((n, c * k))                                     # x D_i^T in block i
            for i in range(c):
                own[np.ix_(members[i], blocks[i])] = X[members[i]] @ D[blocks[i]].T
            Gb = [D[b] @ D[b].T for b in blocks]
            Cw = W[yi]                                                     # (n, c) block weights
            fisher_target = 2.0 * Mc[yi] - mall

            def grad(Y: np.ndarray) -> np.ndarray:
                g = np.empty_like(Y)
                for j, b in enumerate(blocks):
                    g[:, b] = Cw[:, j:j + 1] * (Y[:, b] @ Gb[j])
                g -= own
                g += lam * ((1.0 + eta) * Y - fisher_target)
                return g

            Lb = max(float(np.linalg.eigvalsh(G)[-1]) for G in Gb) * float(W.max())
            A = self._code(X, D, smooth=(grad, Lb + lam * (1.0 + eta)), A0=A)
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
            obj.append(self._objective(X, A, D, yi, members, blocks, W))
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
                   members: list[np.ndarray], blocks: list[np.ndarray], W: np.ndarray) -> float:
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
        for g, w in zip(self.groups_, self.group_weights_):
            f += float(self.alpha) * w * float(np.sum(np.linalg.norm(A[:, g], axis=1)))
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
