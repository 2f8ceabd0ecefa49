"""Fault trees: how class labels relate (root -> normal vs fault location -> severity).

A :class:`FaultTree` is a small JSON-able config. It gives

* the index tree used by tree-structured sparse coding over a dictionary made of one
  sub-dictionary per class (:meth:`FaultTree.groups`): one group per atom (optional), one per
  class, one per internal node (e.g. a fault location, the union of its severities) and the
  root; every pair of groups is nested or disjoint, so the tree-structured norm
  ``sum_g w_g ||a_g||_2`` has an exact proximal operator (group soft-thresholding applied
  leaves to root, Jenatton et al. 2011);
* the structured between-class relationship matrix used by Fisher dictionary learning
  (:meth:`FaultTree.relationship`): ``s_ij`` = depth of the deepest common ancestor of classes
  i and j divided by the leaf depth (1 on the diagonal, 0 when only the root is shared).

:func:`default_bearing_tree` builds the sensible bearing default from the labels alone:
labels ``normal`` / ``healthy`` hang under the root; ``<location>@<severity>`` labels (e.g.
``inner_race@0.007``) are grouped under their location; a label without ``@`` is a location.

Also here: a plain numpy proximal operator of the tree norm and a FISTA solver
(:func:`tree_prox`, :func:`tree_fista`), the reference that training and tests use; the device
codes with the C++ kernels of :mod:`edgefault.device.sparse` when they are available.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from edgefault.errors import InputError

HEALTHY = ("normal", "healthy")
SEVERITY_SEP = "@"


@dataclass
class TreeNode:
    name: str
    children: list["TreeNode"] = field(default_factory=list)
    label: str | None = None    # leaves carry a class label

    def to_dict(self) -> dict[str, Any]:
        if self.label is not None:
            return {"name": self.name, "label": self.label}
        return {"name": self.name, "children": [c.to_dict() for c in self.children]}


def _node_from(d: Any, where: str) -> TreeNode:
    if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
        raise InputError(f"fault tree {where}: expected an object with a non-empty 'name', got {d!r}")
    unknown = set(d) - {"name", "children", "label"}
    if unknown:
        raise InputError(f"fault tree {where} ({d['name']}): unknown keys {sorted(unknown)}; "
                         f"allowed: name, children, label")
    if "label" in d:
        if "children" in d:
            raise InputError(f"fault tree {where} ({d['name']}): a node has either a label (leaf) or "
                             f"children, not both")
        if not isinstance(d["label"], str) or not d["label"]:
            raise InputError(f"fault tree {where} ({d['name']}): label must be a non-empty string")
        return TreeNode(d["name"], label=d["label"])
    ch = d.get("children")
    if not isinstance(ch, list) or not ch:
        raise InputError(f"fault tree {where} ({d['name']}): an inner node needs a non-empty "
                         f"'children' list (or give it a 'label' to make it a leaf)")
    return TreeNode(d["name"], [_node_from(c, f"{where}.{i}") for i, c in enumerate(ch)])


class FaultTree:
    """A rooted tree whose leaves are the class labels (each exactly once)."""

    def __init__(self, root: TreeNode) -> None:
        self.root = root
        leaves: list[tuple[str, list[str]]] = []

        def walk(n: TreeNode, path: list[str]) -> None:
            if n.label is not None:
                leaves.append((n.label, path + [n.name]))
                return
            for c in n.children:
                walk(c, path + [n.name])

        walk(root, [])
        labels = [lab for lab, _ in leaves]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise InputError(f"fault tree: labels {dup} appear at more than one leaf (not a tree over "
                             f"the classes)")
        self.classes = tuple(labels)
        self._paths = {lab: p for lab, p in leaves}

    # -- construction / storage ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Any) -> "FaultTree":
        return cls(_node_from(d, "root"))

    @classmethod
    def from_json(cls, s: str) -> "FaultTree":
        try:
            return cls.from_dict(json.loads(s))
        except json.JSONDecodeError as e:
            raise InputError(f"fault tree: not valid JSON ({e})") from None

    def to_dict(self) -> dict[str, Any]:
        return self.root.to_dict()

    def path(self, label: str) -> list[str]:
        """Node names from the root to the label's leaf."""
        try:
            return list(self._paths[label])
        except KeyError:
            raise InputError(f"fault tree has no leaf for label {label!r} (leaves: {list(self.classes)})") from None

    def check_labels(self, labels: Sequence[str]) -> None:
        missing = sorted(set(labels) - set(self.classes))
        if missing:
            raise InputError(f"fault tree lacks leaves for labels {missing} (leaves: {list(self.classes)})")

    # -- what the coding and the learning use --------------------------------------------------
    def relationship(self, classes: Sequence[str]) -> np.ndarray:
        """(c, c) similarity of classes: depth of the deepest shared ancestor / leaf depth."""
        self.check_labels(classes)
        paths = [self._paths[c] for c in classes]
        c = len(classes)
        s = np.zeros((c, c))
        for i in range(c):
            for j in range(c):
                pi, pj = paths[i], paths[j]
                if i == j:
                    s[i, j] = 1.0
                    continue
                k = 0
                while k < min(len(pi), len(pj)) and pi[k] == pj[k]:
                    k += 1
                # k >= 1 (the root); shared depth below the root, over the deeper leaf's depth
                s[i, j] = (k - 1) / max(max(len(pi), len(pj)) - 1, 1)
        return s

    def index_tree(self, atom_classes: Sequence[int], classes: Sequence[str], *, atom_weight: float = 1.0,
                   class_weight: float = 1.0, node_weight: float = 1.0,
                   root_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The index tree over the atoms of a dictionary with one sub-dictionary per class, in
        the layout of :class:`edgefault.device.sparse.IndexTree`: ``(parent (n_nodes,) int32 with -1
        for the root, atom_node (n_atoms,) int32, weight (n_nodes,) float32)``.

        ``atom_classes[k]`` is the index into ``classes`` of atom k. Nodes: the root
        (``root_weight``), each inner node of this fault tree with more than one non-empty child
        (``node_weight``; single-child nodes are folded into their child), each class
        (``class_weight``) and, when ``atom_weight > 0``, one leaf per atom (``atom_weight``).
        The group of a node is the atoms in its subtree.
        """
        self.check_labels(classes)
        ac = np.asarray(atom_classes, dtype=np.int64)
        if ac.ndim != 1 or ac.size == 0 or ac.min() < 0 or ac.max() >= len(classes):
            raise InputError(f"atom_classes: expected class indices in [0, {len(classes)}), got {ac!r}")
        for name, w in (("atom_weight", atom_weight), ("class_weight", class_weight),
                        ("node_weight", node_weight), ("root_weight", root_weight)):
            if not (np.isfinite(w) and w >= 0):
                raise InputError(f"{name}: expected a finite weight >= 0, got {w!r}")
        cls_index = {c: i for i, c in enumerate(classes)}
        parent: list[int] = [-1]
        weight: list[float] = [float(root_weight)]
        class_node: dict[int, int] = {}

        def count(n: TreeNode) -> int:
            if n.label is not None:
                return int(np.sum(ac == cls_index[n.label])) if n.label in cls_index else 0
            return sum(count(c) for c in n.children)

        def place(n: TreeNode, par: int) -> None:
            if n.label is not None:
                if n.label in cls_index and count(n):
                    parent.append(par)
                    weight.append(float(class_weight))
                    class_node[cls_index[n.label]] = len(parent) - 1
                return
            live = [c for c in n.children if count(c)]
            if len(live) == 1:
                place(live[0], par)
                return
            parent.append(par)
            weight.append(float(node_weight))
            me = len(parent) - 1
            for c in live:
                place(c, me)

        for c in self.root.children:
            if count(c):
                place(c, 0)
        atom_node = np.empty(ac.size, dtype=np.int32)
        for k, ci in enumerate(ac):
            cn = class_node[int(ci)]
            if atom_weight > 0:
                parent.append(cn)
                weight.append(float(atom_weight))
                atom_node[k] = len(parent) - 1
            else:
                atom_node[k] = cn
        return (np.asarray(parent, dtype=np.int32), atom_node, np.asarray(weight, dtype=np.float32))

    def groups(self, atom_classes: Sequence[int], classes: Sequence[str],
               **weights: float) -> tuple[list[np.ndarray], np.ndarray]:
        """Groups of atom indices of the tree norm, leaves to root, and their weights (nodes of
        weight 0 left out); see :meth:`index_tree` and :func:`groups_from_index_tree`."""
        return groups_from_index_tree(*self.index_tree(atom_classes, classes, **weights))

    def __repr__(self) -> str:
        return f"FaultTree({json.dumps(self.to_dict())})"


def location_of(label: str) -> str:
    return label.split(SEVERITY_SEP, 1)[0]


def default_bearing_tree(labels: Sequence[str]) -> FaultTree:
    """Root -> normal (healthy labels) and one node per fault location -> severities."""
    labels = list(dict.fromkeys(str(x) for x in labels))
    if not labels:
        raise InputError("fault tree: no labels")
    children: list[TreeNode] = []
    by_loc: dict[str, list[str]] = {}
    for lab in labels:
        if lab.lower() in HEALTHY:
            children.append(TreeNode(lab, label=lab))
        else:
            by_loc.setdefault(location_of(lab), []).append(lab)
    for loc, labs in by_loc.items():
        if len(labs) == 1 and labs[0] == loc:
            children.append(TreeNode(loc, label=loc))
        else:
            children.append(TreeNode(loc, [TreeNode(lab, label=lab) for lab in labs]))
    return FaultTree(TreeNode("all", children))


# -- numpy reference of tree-structured coding -------------------------------------------------
def groups_from_index_tree(parent: np.ndarray, atom_node: np.ndarray,
                           weight: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Groups (atoms of each node's subtree) in post-order (children before parents) and their
    weights, nodes of weight 0 and empty nodes left out. Raises InputError if ``parent`` is not
    a tree with a single root."""
    parent = np.asarray(parent, dtype=np.int64)
    atom_node = np.asarray(atom_node, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    n = parent.size
    if n == 0 or weight.shape != (n,) or atom_node.ndim != 1:
        raise InputError(f"index tree: parent {parent.shape}, weight {weight.shape}, atom_node "
                         f"{atom_node.shape} do not describe a tree")
    roots = np.flatnonzero(parent == -1)
    if roots.size != 1 or np.any((parent < -1) | (parent >= n)):
        raise InputError(f"index tree: not a tree (roots {roots.tolist()}, parents must be in [-1, {n}))")
    if atom_node.size and (atom_node.min() < 0 or atom_node.max() >= n):
        raise InputError(f"index tree: atom_node must index nodes in [0, {n})")
    children: list[list[int]] = [[] for _ in range(n)]
    for v in range(n):
        if parent[v] >= 0:
            children[int(parent[v])].append(v)
    order: list[int] = []
    stack = [(int(roots[0]), False)]
    seen = 0
    while stack:
        v, done = stack.pop()
        if done:
            order.append(v)
            continue
        seen += 1
        if seen > n:
            break
        stack.append((v, True))
        stack.extend((c, False) for c in reversed(children[v]))
    if len(order) != n:
        raise InputError("index tree: not a tree (some nodes are not reachable from the root or lie on a cycle)")
    own: list[list[int]] = [[] for _ in range(n)]
    for k, v in enumerate(atom_node):
        own[int(v)].append(k)
    sub: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n
    groups, weights = [], []
    for v in order:
        parts = [np.asarray(own[v], dtype=np.int64)] + [sub[c] for c in children[v]]
        sub[v] = np.sort(np.concatenate(parts))
        if weight[v] > 0 and sub[v].size:
            groups.append(sub[v])
            weights.append(float(weight[v]))
    return groups, np.asarray(weights, dtype=np.float64)


def _prox_plan(groups: Sequence[np.ndarray], weights: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups batched by height (all groups of one height are disjoint, and every group comes
    after the groups it contains) and by size: a list of (index array (n_groups, size), weights)."""
    sets = [set(map(int, g)) for g in groups]
    height = []
    for i, g in enumerate(sets):
        h = 0
        for j in range(i):
            if sets[j] < g or (sets[j] == g and j < i):
                h = max(h, height[j] + 1)
        height.append(h)
    plan = []
    for h in sorted(set(height)):
        by_size: dict[int, list[int]] = {}
        for i, hi in enumerate(height):
            if hi == h:
                by_size.setdefault(len(groups[i]), []).append(i)
        for size, members in sorted(by_size.items()):
            plan.append((np.stack([np.asarray(groups[i], dtype=np.int64) for i in members]),
                         np.asarray([weights[i] for i in members], dtype=np.float64)))
    return plan


def tree_prox(A: np.ndarray, groups: Sequence[np.ndarray], weights: np.ndarray, t: float,
              plan: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Proximal operator of ``t * sum_g w_g ||a_g||_2`` for groups ordered leaves to root,
    applied to each row of ``A`` (n, k): group soft-thresholding, children before parents."""
    A = np.array(A, dtype=np.float64, copy=True)
    for idx, w in (plan if plan is not None else _prox_plan(groups, weights)):
        sub = A[:, idx]                                   # (n, n_groups, size)
        nrm = np.sqrt(np.einsum("igs,igs->ig", sub, sub))
        shrink = np.maximum(1.0 - t * w / np.maximum(nrm, 1e-300), 0.0)
        A[:, idx] = sub * shrink[:, :, None]
    return A


def tree_fista(X: np.ndarray, D: np.ndarray, groups: Sequence[np.ndarray], weights: np.ndarray,
               alpha: float, *, max_iter: int = 200, tol: float = 1e-6, A0: np.ndarray | None = None,
               smooth: tuple[Callable[[np.ndarray], np.ndarray], float] | None = None) -> np.ndarray:
    """Codes A (n, k) minimising ``0.5 ||x - a D||^2 + alpha * Omega(a)`` for each row x of X
    (n, d), dictionary D (k, d) with atoms as rows, by FISTA with the exact tree prox.

    ``smooth`` optionally adds a smooth term: ``(gradient function A -> dA, its Lipschitz constant)``.
    Step ``1 / (L (1 + 1e-4))``; a row stops when ``||a_new - a|| <= tol * max(||a_new||, 1e-12)``
    (the stopping rule of the core's coder).
    """
    X = np.asarray(X, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    G = D @ D.T
    XD = X @ D.T
    L = float(np.linalg.eigvalsh(G)[-1])
    extra_L = float(smooth[1]) if smooth is not None else 0.0
    step = 1.0 / max((L + extra_L) * (1.0 + 1e-4), 1e-12)
    A = np.zeros((X.shape[0], D.shape[0])) if A0 is None else np.array(A0, dtype=np.float64)
    Y = A.copy()
    tk = 1.0
    live = np.ones(X.shape[0], dtype=bool)
    plan = _prox_plan(groups, weights)
    for _ in range(max_iter):
        grad = Y @ G - XD
        if smooth is not None:
            grad = grad + smooth[0](Y)
        A_new = tree_prox(Y - step * grad, groups, weights, step * alpha, plan)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * tk * tk))
        Y_new = A_new + ((tk - 1.0) / t_new) * (A_new - A)
        done = np.linalg.norm(A_new - A, axis=1) <= tol * np.maximum(np.linalg.norm(A_new, axis=1), 1e-12)
        # rows that stopped keep their iterate (no further updates), as in a per-signal solver
        A = np.where(live[:, None], A_new, A)
        Y = np.where(live[:, None], Y_new, Y)
        live &= ~done
        tk = t_new
        if not live.any():
            break
    return A
