"""Fault trees: how class labels relate (root -> normal vs fault location -> severity).

A :class:`FaultTree` is a small JSON-able config. It gives

* the index tree used by tree-structured sparse coding over a dictionary made of one
  sub-dictionary per class (:meth:`FaultTree.index_tree`): one group per atom (optional), one per
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

A fault tree is the label hierarchy only: the runtime structure of the tree norm is the
:class:`edgefault.device.sparse.IndexTree` built from :meth:`FaultTree.index_tree`, and coding
(training and device alike) is the core's :class:`edgefault.device.sparse.TreeLassoCoder`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from edgefault.errors import InputError
from edgefault.io.manifest import is_healthy

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
        if is_healthy(lab):
            children.append(TreeNode(lab, label=lab))
        else:
            by_loc.setdefault(location_of(lab), []).append(lab)
    for loc, labs in by_loc.items():
        if len(labs) == 1 and labs[0] == loc:
            children.append(TreeNode(loc, label=loc))
        else:
            children.append(TreeNode(loc, [TreeNode(lab, label=lab) for lab in labs]))
    return FaultTree(TreeNode("all", children))


