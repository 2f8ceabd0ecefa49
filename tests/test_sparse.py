"""Sparse coding kernels (edgefault.device.sparse): OMP against scikit-learn, the tree prox and FISTA
against plain numpy references written here, property tests, and bad input."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault import _core
from edgefault.device import sparse
from edgefault.errors import InputError

linear_model = pytest.importorskip("sklearn.linear_model")

SETTINGS = settings(max_examples=40, deadline=None)


@pytest.fixture(params=["default", "portable"])
def kernels(request: pytest.FixtureRequest):
    """Runs a test with the default kernels (AVX2+FMA where the CPU has them) and again with the
    portable ones."""
    if request.param == "portable":
        _core.sparse_allow_simd(False)
    try:
        yield request.param
    finally:
        _core.sparse_allow_simd(True)


def unit_dict(n_features: int, n_atoms: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((n_features, n_atoms))
    d /= np.linalg.norm(d, axis=0)
    return d.astype(np.float32)


# ---- OMP vs scikit-learn ---------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5, 8, 12])
@pytest.mark.parametrize("shape", [(64, 40), (200, 120), (30, 30)])
def test_omp_matches_sklearn_orthogonal_mp(shape: tuple[int, int], k: int, kernels: str) -> None:
    nf, na = shape
    D = unit_dict(nf, na, seed=nf + na)
    if kernels == "portable":
        assert sparse.OmpCoder(D, 1).kernel == "portable"
    X = np.random.default_rng(k).standard_normal((25, nf)).astype(np.float32)
    ours, r2 = sparse.omp(X, D, n_nonzero_coefs=k, return_residuals=True)
    D64, X64 = D.astype(np.float64), X.astype(np.float64)
    ref = linear_model.orthogonal_mp(D64, X64.T, n_nonzero_coefs=k).T
    G = D64.T @ D64
    ref_gram = linear_model.orthogonal_mp_gram(G, D64.T @ X64.T, n_nonzero_coefs=k).T
    np.testing.assert_allclose(ref, ref_gram, atol=1e-8)
    assert ours.dtype == np.float32 and ours.shape == (25, na)
    np.testing.assert_array_equal(ours != 0, ref != 0)
    assert np.all((ours != 0).sum(axis=1) == k)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-5 * np.abs(ref).max())
    np.testing.assert_allclose(r2, np.sum((X64 - ours.astype(np.float64) @ D64.T) ** 2, axis=1), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("seed", range(4))
def test_omp_tol_stopping_matches_sklearn(seed: int) -> None:
    nf, na = 80, 50
    D = unit_dict(nf, na, seed=100 + seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, nf)).astype(np.float32)
    D64, X64 = D.astype(np.float64), X.astype(np.float64)
    norms = np.sum(X64**2, axis=1)
    # residuals after every k, to place tol strictly between two consecutive values per signal
    path = np.stack([sparse.omp(X, D, n_nonzero_coefs=k, return_residuals=True)[1] for k in range(1, 31)], axis=1)
    kstop = rng.integers(3, 25, size=20)
    tol_per = 0.5 * (path[np.arange(20), kstop - 1] + path[np.arange(20), kstop - 2])
    for i in range(20):
        ours, r2 = sparse.omp(X[i], D, tol=float(tol_per[i]), return_residuals=True)
        ref = linear_model.orthogonal_mp_gram(D64.T @ D64, D64.T @ X64[i], tol=float(tol_per[i]),
                                              norms_squared=norms[i:i + 1])
        ref2 = linear_model.orthogonal_mp(D64, X64[i], tol=float(tol_per[i]))
        np.testing.assert_allclose(ref, ref2, atol=1e-8)
        assert np.count_nonzero(ours) == kstop[i]
        np.testing.assert_array_equal(ours != 0, ref != 0)
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-5 * np.abs(ref).max())
        assert r2 <= tol_per[i]
    # tol and n_nonzero_coefs together: whichever comes first
    codes = sparse.omp(X, D, n_nonzero_coefs=4, tol=1e-9)
    assert np.all(np.count_nonzero(codes, axis=1) == 4)


def test_omp_coder_batch_equals_one_by_one_and_gram(kernels: str) -> None:
    D = unit_dict(100, 70, seed=5)
    X = np.random.default_rng(6).standard_normal((37, 100))  # float64 input, odd batch size
    coder = sparse.OmpCoder(D, max_k=10)
    res = coder.encode(X)
    assert res.codes.shape == (37, 70) and res.residual_sq.shape == (37,) and res.n_active.dtype == np.int32
    np.testing.assert_allclose(coder.gram, D.astype(np.float64).T @ D, atol=1e-6)
    for i in (0, 5, 36):
        one = coder.encode(X[i])
        np.testing.assert_array_equal(one.codes, res.codes[i])
        assert one.residual_sq == res.residual_sq[i] and one.n_active == 10
    small = coder.encode(X, n_nonzero_coefs=3)
    np.testing.assert_array_equal(small.n_active, np.full(37, 3))
    np.testing.assert_array_equal(coder.encode(np.zeros((0, 100))).codes.shape, (0, 70))
    with pytest.raises(InputError, match="max_k=10"):
        coder.encode(X, n_nonzero_coefs=11)


def test_omp_default_k_is_sklearns() -> None:
    D = unit_dict(64, 40, seed=7)
    X = np.random.default_rng(8).standard_normal((5, 64))
    ours = sparse.omp(X, D)
    ref = linear_model.orthogonal_mp(D.astype(np.float64), X.T).T
    np.testing.assert_array_equal(ours != 0, ref != 0)
    assert np.all(np.count_nonzero(ours, axis=1) == 4)


def test_omp_zero_signal_and_exact_ties() -> None:
    D = np.eye(6, dtype=np.float32)
    codes, r2 = sparse.omp(np.zeros((2, 6)), D, n_nonzero_coefs=3, return_residuals=True)
    assert not codes.any() and not r2.any()
    # exact ties in |D^T x|: lowest atom index first
    x = np.array([0.0, 2.0, -2.0, 2.0, 1.0, 0.0])
    np.testing.assert_array_equal(sparse.omp(x, D, n_nonzero_coefs=1), [0, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(sparse.omp(x, D, n_nonzero_coefs=2), [0, 2, -2, 0, 0, 0])


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), nf=st.integers(8, 60), na=st.integers(4, 50))
def test_omp_residual_non_increasing_in_k(seed: int, nf: int, na: int) -> None:
    D = unit_dict(nf, na, seed)
    x = np.random.default_rng(seed + 1).standard_normal((3, nf))
    kmax = min(nf, na)
    coder = sparse.OmpCoder(D, kmax)
    prev = np.full(3, np.inf)
    for k in range(1, kmax + 1):
        res = coder.encode(x, k)
        assert np.all(res.residual_sq <= prev * (1 + 1e-5) + 1e-5)
        direct = np.sum((x - res.codes.astype(np.float64) @ D.T.astype(np.float64)) ** 2, axis=1)
        # the reported residual is that of the exact coefficients; near k = n_features the active
        # set is ill-conditioned and rounding the code to float32 moves its residual by more
        atol = (1e-5 if k <= nf // 2 else 2e-3) * np.sum(x**2, axis=1)
        np.testing.assert_allclose(res.residual_sq, direct, rtol=1e-4, atol=atol.max())
        prev = res.residual_sq


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 8))
def test_omp_exact_recovery_of_k_sparse_signals(seed: int, k: int) -> None:
    D = unit_dict(256, 64, seed)  # mutual coherence ~0.3: recovery of k <= 8 holds for these draws
    rng = np.random.default_rng(seed + 7)
    support = rng.choice(64, size=k, replace=False)
    coef = rng.uniform(0.5, 2.0, size=k) * rng.choice([-1.0, 1.0], size=k)
    truth = np.zeros(64)
    truth[support] = coef
    x = D.astype(np.float64) @ truth
    codes, r2 = sparse.omp(x, D, n_nonzero_coefs=k, return_residuals=True)
    np.testing.assert_array_equal(np.flatnonzero(codes), np.sort(support))
    np.testing.assert_allclose(codes, truth, atol=1e-4)
    # float32 D^T x: the residual is known to ~1e-6 ||x||^2 (cancellation floor)
    assert r2 <= 1e-5 * np.sum(x**2)
    # tol stop just above that floor finds the same code without being told k
    np.testing.assert_allclose(sparse.omp(x, D, tol=1e-4 * np.sum(x**2)), truth, atol=1e-4)


# ---- OMP bad input ---------------------------------------------------------------------------

def test_omp_bad_dictionaries_name_the_atom() -> None:
    D = unit_dict(20, 10, seed=9)
    x = np.ones(20)
    Z = D.copy()
    Z[:, 4] = 0
    with pytest.raises(InputError, match=r"atom \(column\) 4 is zero"):
        sparse.omp(x, Z, 2)
    dup = D.copy()
    dup[:, 7] = -D[:, 2]
    with pytest.raises(InputError, match="2 and 7 are duplicates"):
        sparse.omp(x, dup, 2)
    assert sparse.omp(x, dup, 2, allow_duplicates=True).shape == (10,)
    near = D.copy()
    near[:, 8] = D[:, 1] + 1e-5 * D[:, 3]
    near[:, 8] /= np.linalg.norm(near[:, 8])
    with pytest.raises(InputError, match="1 and 8 are duplicates"):
        sparse.OmpCoder(near, 2)
    big = D.copy()
    big[:, 3] *= 3
    with pytest.raises(InputError, match=r"column\) 3 has norm 3"):
        sparse.omp(x, big, 2)
    bad = D.copy()
    bad[11, 6] = np.nan
    with pytest.raises(InputError, match=r"row 11, column \(atom\) 6"):
        sparse.omp(x, bad, 2)
    bad[11, 6] = np.inf
    with pytest.raises(InputError, match="non-finite"):
        sparse.OmpCoder(bad, 2)
    with pytest.raises(InputError, match="larger than the number of atoms"):
        sparse.omp(x, D, 11)
    with pytest.raises(InputError, match="larger than the number of features"):
        sparse.omp(np.ones(5), unit_dict(5, 10, 1), 6)
    for k in (0, -1, 2.5, True, "3"):
        with pytest.raises(InputError, match="n_nonzero_coefs"):
            sparse.omp(x, D, k)
    for d in (np.zeros((0, 3)), np.ones(5), np.ones((2, 2, 2)), D.astype(np.complex64), D.astype(object),
              [["a", "b"]], [[1.0, 2.0], [3.0]]):
        with pytest.raises(InputError, match="dictionary"):
            sparse.omp(x, d, 1)


def test_omp_bad_signals_name_the_row() -> None:
    D = unit_dict(20, 10, seed=10)
    X = np.ones((4, 20))
    X[2, 13] = np.nan
    with pytest.raises(InputError, match="signal row 2"):
        sparse.omp(X, D, 2)
    X[2, 13] = -np.inf
    with pytest.raises(InputError, match="signal row 2"):
        sparse.OmpCoder(D, 3).encode(X)
    X[2, 13] = 1e300  # finite in float64, inf in float32
    with pytest.raises(InputError, match="signal row 2"):
        sparse.omp(X, D, 2)
    for bad in (np.ones((3, 19)), np.ones(21), np.ones((2, 2, 20)), np.ones((3, 20), dtype=complex),
                np.array(["x"] * 20), np.ones((3, 20), dtype=bool)):
        with pytest.raises(InputError, match="X"):
            sparse.omp(bad, D, 2)
    for tol in (-1.0, np.nan, "a", np.inf):
        with pytest.raises(InputError, match="tol"):
            sparse.omp(np.ones(20), D, tol=tol)


# ---- tree prox -------------------------------------------------------------------------------

def numpy_groups(parent: np.ndarray, atom_node: np.ndarray) -> list[np.ndarray]:
    """Atoms of every node's subtree, by walking each atom's ancestors."""
    groups: list[list[int]] = [[] for _ in parent]
    for j, v in enumerate(atom_node):
        while v != -1:
            groups[v].append(j)
            v = parent[v]
    return [np.array(g, dtype=int) for g in groups]


def numpy_tree_prox(v: np.ndarray, groups: list[np.ndarray], weights: np.ndarray, lam: float,
                    return_parts: bool = False):
    """Reference prox: group soft-thresholding applied to groups sorted by size (children before
    parents for nested-or-disjoint groups), in float64. With return_parts, also the part each group
    removed (xi_g / L in the optimality conditions)."""
    u = np.array(v, dtype=np.float64)
    parts = {}
    for g in sorted(range(len(groups)), key=lambda i: len(groups[i])):
        idx = groups[g]
        if idx.size == 0:
            parts[g] = np.zeros(0)
            continue
        nrm = np.linalg.norm(u[idx])
        thr = lam * weights[g]
        new = np.zeros(idx.size) if nrm <= thr else u[idx] * (1 - thr / nrm)
        parts[g] = u[idx] - new
        u[idx] = new
    return (u, parts) if return_parts else u


@st.composite
def random_trees(draw, max_nodes: int = 12, max_atoms: int = 24):
    n_nodes = draw(st.integers(1, max_nodes))
    parent = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, n_nodes)]
    n_atoms = draw(st.integers(1, max_atoms))
    atom_node = [draw(st.integers(0, n_nodes - 1)) for _ in range(n_atoms)]
    weights = draw(st.lists(st.floats(0.0, 3.0, width=32), min_size=n_nodes, max_size=n_nodes))
    # relabel nodes by a random permutation so the root is not always node 0
    perm = draw(st.permutations(range(n_nodes)))
    inv = np.argsort(perm)
    p = np.array([-1 if parent[inv[i]] == -1 else perm[parent[inv[i]]] for i in range(n_nodes)])
    an = np.array([perm[a] for a in atom_node])
    w = np.array(weights, dtype=np.float32)[inv]
    return p, an, w


@SETTINGS
@given(tree=random_trees(), seed=st.integers(0, 2**31 - 1), lam=st.floats(0.0, 2.0))
def test_tree_prox_matches_numpy_reference(tree, seed: int, lam: float) -> None:
    parent, atom_node, w = tree
    t = sparse.IndexTree(parent, atom_node, w)
    v = np.random.default_rng(seed).standard_normal((3, atom_node.size)).astype(np.float32) * 2
    ours = t.prox(v, lam)
    groups = numpy_groups(parent, atom_node)
    for i in range(3):
        ref = numpy_tree_prox(v[i], groups, w.astype(np.float64), lam)
        np.testing.assert_allclose(ours[i], ref, rtol=1e-5, atol=1e-5)
    for g_ours, g_ref in zip(t.groups(), groups):
        np.testing.assert_array_equal(g_ours, np.sort(g_ref))
    # the same through the functional API with groups as index arrays
    np.testing.assert_allclose(sparse.tree_prox(v, [g for g in groups if g.size], w[[g.size > 0 for g in groups]],
                                                lam), ours, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sparse.tree_prox(v, t, lam=lam), ours)
    np.testing.assert_allclose(t.value(v), [sum(float(w[g]) * np.linalg.norm(v[i, idx].astype(np.float64))
                                                for g, idx in enumerate(groups)) for i in range(3)], rtol=1e-5)


@SETTINGS
@given(tree=random_trees(), seed=st.integers(0, 2**31 - 1), lam=st.floats(0.01, 2.0))
def test_tree_prox_properties(tree, seed: int, lam: float) -> None:
    parent, atom_node, w = tree
    t = sparse.IndexTree(parent, atom_node, w)
    n = atom_node.size
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, n)) * 2
    pu, pv = t.prox(u, lam).astype(np.float64), t.prox(v, lam).astype(np.float64)
    # zero is a fixed point; lam = 0 is the identity (every point a fixed point)
    np.testing.assert_array_equal(t.prox(np.zeros(n), lam), np.zeros(n))
    np.testing.assert_array_equal(t.prox(u, 0.0), u.astype(np.float32))
    # firmly non-expansive: ||P u - P v||^2 <= <P u - P v, u - v>
    assert np.sum((pu - pv) ** 2) <= np.dot(pu - pv, u - v) + 1e-5 * (1 + np.sum((u - v) ** 2))
    # positively homogeneous: P_{c lam}(c u) = c P_lam(u)
    np.testing.assert_allclose(t.prox(3.0 * u, 3.0 * lam), 3.0 * pu, rtol=1e-5, atol=1e-5)
    # P u minimises 0.5 ||p - u||^2 + lam Omega(p): no random perturbation does better
    def obj(p: np.ndarray) -> float:
        return 0.5 * np.sum((p - u) ** 2) + lam * float(t.value(p.astype(np.float32)))
    best = obj(pu)
    for _ in range(20):
        d = rng.standard_normal(n) * rng.choice([1e-1, 1e-2])
        assert best <= obj(pu + d) + 1e-5
    # the output is a fixed point of the prox-gradient map of min 0.5||p - u||^2 + lam Omega(p)
    np.testing.assert_allclose(t.prox(pu - (pu - u), lam), pu, atol=1e-5)
    # no fixed point other than zero when every atom is in a group of positive weight: the norm
    # shrinks (by at least lam * min w, measurable in float32 for the weights drawn here)
    if np.all(w >= 1e-3) and np.any(u):
        assert np.linalg.norm(pu) < np.linalg.norm(u.astype(np.float32))


def test_tree_prox_zero_vector_and_known_values() -> None:
    t = sparse.IndexTree.from_groups([[0, 1, 2, 3], [0, 1]])
    np.testing.assert_array_equal(t.prox(np.zeros(4), 5.0), np.zeros(4))
    np.testing.assert_allclose(sparse.tree_prox(np.ones(4), [[0, 1, 2, 3], [0, 1]], [1, 1], 0.5),
                               [0.4545064, 0.4545064, 0.7030842, 0.7030842], rtol=1e-6)
    # a group of norm exactly below the threshold is zeroed, the root then shrinks the rest
    np.testing.assert_allclose(t.prox([0.3, 0.35, 3.0, 4.0], 0.5), [0, 0, 2.7, 3.6], rtol=1e-6)


def test_index_tree_constructors() -> None:
    t = sparse.IndexTree.from_groups([[0, 1], [2]], weights=[2.0, 3.0], n_atoms=4)
    np.testing.assert_array_equal(t.parent, [2, 2, -1])  # virtual root with weight 0
    np.testing.assert_array_equal(t.atom_node, [0, 0, 1, 2])
    np.testing.assert_array_equal(t.weights, [2, 3, 0])
    n = sparse.IndexTree.from_nested({"name": "all", "weight": 0, "children": [
        {"name": "normal", "atoms": [0, 1]},
        {"name": "inner", "atoms": [2], "children": [{"name": "inner@7", "atoms": [3]}]}]})
    np.testing.assert_array_equal(n.parent, [-1, 0, 0, 2])
    np.testing.assert_array_equal(n.atom_node, [1, 1, 2, 3])
    assert n.names == ["all", "normal", "inner", "inner@7"]
    assert [g.tolist() for g in n.groups()] == [[0, 1, 2, 3], [0, 1], [2, 3], [3]]
    same = sparse.IndexTree.from_groups([[0, 1, 2, 3], [0, 1], [2, 3], [3]], [0, 1, 1, 1])
    np.testing.assert_array_equal(same.parent, n.parent)
    np.testing.assert_array_equal(same.atom_node, n.atom_node)
    # identical groups chain in index order
    eq = sparse.IndexTree.from_groups([[0, 1], [0, 1], [0]])
    np.testing.assert_array_equal(eq.parent, [-1, 0, 1])
    np.testing.assert_array_equal(eq.atom_node, [2, 1])
    # (parent, atom_node, weights) tuples as FaultTree.index_tree returns them
    tup = (np.array([-1, 0], np.int32), np.array([1, 1, 0], np.int32), np.array([0.5, 1.0], np.float32))
    assert sparse.IndexTree.coerce(tup).n_atoms == 3


@pytest.mark.parametrize("parent, atom_node, match", [
    ([-1, 2, 3, 1], [0, 1], r"not a tree: cycle through nodes 1 -> 2 -> 3 -> 1"),
    ([-1, 0, -1], [0, 1], r"not a tree: expected exactly one root .* found 2 \(nodes 0, 2\)"),
    ([1, 0], [0, 1], r"not a tree: cycle through nodes 0 -> 1 -> 0"),
    ([-1, 1], [0], r"not a tree: cycle through nodes 1 -> 1"),
    ([-1, 5], [0], r"not a tree: parent\[1\]=5 is out of range"),
    ([-1, -2], [0], r"out of range"),
    ([-1, 0], [0, 2], r"atom_node\[1\]=2"),
    ([], [0], r"not a tree: no nodes"),
    ([-1], [], r"no atoms"),
])
def test_index_tree_rejects_non_trees(parent, atom_node, match: str) -> None:
    with pytest.raises(InputError, match=match):
        sparse.IndexTree(np.array(parent, dtype=np.int64), np.array(atom_node, dtype=np.int64))


def test_index_tree_bad_input() -> None:
    with pytest.raises(InputError, match=r"not a tree: groups \(nodes\) 0 and 2 overlap"):
        sparse.IndexTree.from_groups([[0, 1, 2], [3], [2, 3]])
    with pytest.raises(InputError, match="weight of node 1"):
        sparse.IndexTree([-1, 0], [0, 1], [1.0, -1.0])
    with pytest.raises(InputError, match="weight of node 0"):
        sparse.IndexTree([-1, 0], [0, 1], [np.nan, 1.0])
    with pytest.raises(InputError, match="weights has 1 values"):
        sparse.IndexTree([-1, 0], [0, 1], [1.0])
    with pytest.raises(InputError, match="parent: expected an integer array"):
        sparse.IndexTree(["a", "b"], [0, 1])
    with pytest.raises(InputError, match="parent: expected a 1-D"):
        sparse.IndexTree([[-1, 0]], [0, 1])
    with pytest.raises(InputError, match=r"groups\[1\] is empty"):
        sparse.IndexTree.from_groups([[0], []])
    with pytest.raises(InputError, match=r"groups\[0\] repeats"):
        sparse.IndexTree.from_groups([[0, 0]])
    with pytest.raises(InputError, match=r"groups\[0\] has a negative"):
        sparse.IndexTree.from_groups([[-1, 0]])
    with pytest.raises(InputError, match="out of range for n_atoms=2"):
        sparse.IndexTree.from_groups([[0, 5]], n_atoms=2)
    with pytest.raises(InputError, match="one weight per group"):
        sparse.IndexTree.from_groups([[0], [1]], weights=[1.0])
    with pytest.raises(InputError, match="already belongs to node"):
        sparse.IndexTree.from_nested({"atoms": [0], "children": [{"atoms": [0]}]})
    with pytest.raises(InputError, match=r"atoms \[1\] are not attached"):
        sparse.IndexTree.from_nested({"atoms": [0, 2]})
    with pytest.raises(InputError, match="unknown keys"):
        sparse.IndexTree.from_nested({"atom": [0]})
    t = sparse.IndexTree([-1], [0, 0, 0])
    with pytest.raises(InputError, match="lam"):
        t.prox(np.ones(3), -1.0)
    with pytest.raises(InputError, match="v: expected 3 features"):
        t.prox(np.ones(4), 1.0)
    with pytest.raises(InputError, match="v"):
        sparse.tree_prox(np.ones((2, 2, 3)), [[0, 1]])
    with pytest.raises(InputError, match="weights through the IndexTree"):
        sparse.tree_prox(np.ones(3), t, weights=[1.0])


# ---- tree group lasso ------------------------------------------------------------------------

def small_problem(seed: int, nf: int = 30, na: int = 12):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((nf, na)).astype(np.float32)
    D /= np.linalg.norm(D, axis=0)
    # root (w 0.2) -> 3 class nodes (w 1) -> one leaf per atom (w 0.3)
    parent = [-1, 0, 0, 0] + [1 + j // 4 for j in range(na)]
    atom_node = [4 + j for j in range(na)]
    w = [0.2, 1.0, 1.0, 1.0] + [0.3] * na
    tree = sparse.IndexTree(parent, atom_node, w)
    # signals mostly from class 1's atoms
    codes = np.zeros((6, na))
    codes[:, 4:8] = rng.standard_normal((6, 4))
    X = (codes @ D.T.astype(np.float64) + 0.05 * rng.standard_normal((6, nf))).astype(np.float32)
    return D, tree, X


def numpy_ista(x: np.ndarray, D: np.ndarray, tree: sparse.IndexTree, lam: float, iters: int = 20000) -> np.ndarray:
    """Slow float64 reference: plain ISTA with step 1/lambda_max(D^T D) and the numpy tree prox."""
    D = D.astype(np.float64)
    G, b = D.T @ D, D.T @ x.astype(np.float64)
    L = np.linalg.eigvalsh(G)[-1]
    groups, w = tree.groups(), tree.weights.astype(np.float64)
    a = np.zeros(D.shape[1])
    for _ in range(iters):
        new = numpy_tree_prox(a - (G @ a - b) / L, groups, w, lam / L)
        if np.linalg.norm(new - a) <= 1e-12 * max(np.linalg.norm(new), 1e-300):
            return new
        a = new
    return a


@pytest.mark.parametrize("lam", [0.05, 0.3, 1.0])
def test_tree_lasso_matches_numpy_ista(lam: float, kernels: str) -> None:
    D, tree, X = small_problem(1)
    if kernels == "portable":
        assert sparse.TreeLassoCoder(D, tree).kernel == "portable"
    codes, iters = sparse.tree_group_lasso(X, D, tree, lam, max_iter=20000, tol=1e-7, return_n_iter=True)
    assert codes.shape == (6, 12) and iters.shape == (6,) and np.all(iters < 20000)
    for i in range(6):
        ref = numpy_ista(X[i], D, tree, lam)
        np.testing.assert_allclose(codes[i], ref, atol=2e-4 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("seed", range(3))
def test_tree_lasso_optimality_conditions_per_group(seed: int) -> None:
    """At the solution a, z = D^T (x - D a) splits into xi_g (supported on g) with
    ||xi_g|| <= lam w_g, and xi_g = lam w_g a_g / ||a_g|| wherever a_g != 0."""
    D, tree, X = small_problem(seed)
    lam = 0.2
    coder = sparse.TreeLassoCoder(D, tree)
    codes = coder.encode(X, lam, max_iter=50000, tol=1e-8)
    D64 = D.astype(np.float64)
    L = coder.lipschitz
    assert np.linalg.eigvalsh(D64.T @ D64)[-1] <= L <= np.linalg.eigvalsh(D64.T @ D64)[-1] * (1 + 1e-3)
    groups, w = tree.groups(), tree.weights.astype(np.float64)
    for i in range(6):
        a = codes[i].astype(np.float64)
        z = D64.T @ (X[i].astype(np.float64) - D64 @ a)
        p, parts = numpy_tree_prox(a + z / L, groups, w, lam / L, return_parts=True)
        np.testing.assert_allclose(p, a, atol=1e-4)  # fixed point of the prox-gradient map
        for g, idx in enumerate(groups):
            xi = L * parts[g]
            assert np.linalg.norm(xi) <= lam * w[g] * (1 + 1e-4) + 1e-6
            ag = a[idx]
            if np.linalg.norm(ag) > 1e-4:
                np.testing.assert_allclose(xi, lam * w[g] * ag / np.linalg.norm(ag), atol=2e-3)


def test_tree_lasso_group_sparsity_warm_start_and_limits(kernels: str) -> None:
    D, tree, X = small_problem(4)
    codes = sparse.tree_group_lasso(X, D, tree, 0.5, tol=1e-6, max_iter=5000)
    # signals built from class-1 atoms: the other classes' groups are switched off entirely
    assert np.all(codes[:, :4] == 0) and np.all(codes[:, 8:] == 0) and np.all(np.any(codes[:, 4:8], axis=1))
    coder = sparse.TreeLassoCoder(D, tree)
    _, cold = coder.encode(X, 0.5, tol=1e-6, max_iter=5000, return_n_iter=True)
    warm, n_warm = coder.encode(X, 0.5, tol=1e-6, max_iter=5000, init=codes, return_n_iter=True)
    assert np.all(n_warm <= 3) and np.all(cold > n_warm)
    np.testing.assert_allclose(warm, codes, atol=1e-5)
    # any warm start reaches the same solution
    far = coder.encode(X, 0.5, tol=1e-7, max_iter=20000, init=np.full((6, 12), 5.0))
    np.testing.assert_allclose(far, codes, atol=1e-3)
    # alpha = 0: least squares
    ls = coder.encode(X, 0.0, tol=1e-9, max_iter=100000)
    ref = np.linalg.lstsq(D.astype(np.float64), X.T.astype(np.float64), rcond=None)[0].T
    np.testing.assert_allclose(ls, ref, atol=1e-3)
    # huge alpha: zero after one iteration
    z, it = coder.encode(X, 1e6, return_n_iter=True)
    assert not z.any() and np.all(it == 1)
    # max_iter is respected
    _, it = coder.encode(X, 0.01, tol=0.0, max_iter=7, return_n_iter=True)
    assert np.all(it == 7)
    # one signal, groups as index arrays, tuple trees
    one = sparse.tree_group_lasso(X[0], D, tree, 0.5, tol=1e-6, max_iter=5000)
    np.testing.assert_allclose(one, codes[0], atol=1e-6)
    tup = sparse.tree_group_lasso(X, D, (tree.parent, tree.atom_node, tree.weights), 0.5, tol=1e-6, max_iter=5000)
    np.testing.assert_array_equal(tup, codes)


def test_tree_lasso_bad_input() -> None:
    D, tree, X = small_problem(5)
    coder = sparse.TreeLassoCoder(D, tree)
    for alpha in (-1.0, np.nan, np.inf, "x"):
        with pytest.raises(InputError, match="alpha"):
            coder.encode(X, alpha)
    for tol in (-1e-3, np.nan):
        with pytest.raises(InputError, match="tol"):
            coder.encode(X, 0.1, tol=tol)
    for mi in (0, -3, 2.5):
        with pytest.raises(InputError, match="max_iter"):
            coder.encode(X, 0.1, max_iter=mi)
    bad = X.copy()
    bad[4, 3] = np.nan
    with pytest.raises(InputError, match="signal row 4"):
        coder.encode(bad, 0.1)
    init = np.zeros((6, 12))
    init[2, 1] = np.inf
    with pytest.raises(InputError, match="init row 2"):
        coder.encode(X, 0.1, init=init)
    with pytest.raises(InputError, match=r"init: expected shape \(6, 12\)"):
        coder.encode(X, 0.1, init=np.zeros((6, 11)))
    with pytest.raises(InputError, match="X: expected 30 features"):
        coder.encode(X[:, :29], 0.1)
    with pytest.raises(InputError, match="tree: covers 12 atoms, expected 13"):
        sparse.TreeLassoCoder(np.hstack([D, D[:, :1]]), tree)
    with pytest.raises(InputError, match="all zeros"):
        sparse.TreeLassoCoder(np.zeros((30, 12)), tree)
    with pytest.raises(InputError, match=r"atom \(column\) 0 has squared norm .* too large"):
        sparse.TreeLassoCoder(D * np.float32(1e18), tree)
    with pytest.raises(InputError, match="too small for float32"):
        sparse.TreeLassoCoder(D * np.float32(1e-20), tree)
    Dn = D.copy()
    Dn[7, 2] = np.inf
    with pytest.raises(InputError, match=r"row 7, column \(atom\) 2"):
        sparse.TreeLassoCoder(Dn, tree)
    with pytest.raises(InputError, match="not a tree"):
        sparse.tree_group_lasso(X, D, [[0, 1, 2], [2, 3]], 0.1)


# ---- robustness ------------------------------------------------------------------------------

def test_coders_shared_between_threads_give_serial_results() -> None:
    D = unit_dict(128, 48, seed=11)
    X = np.random.default_rng(12).standard_normal((300, 128)).astype(np.float32)
    omp_coder = sparse.OmpCoder(D, 8)
    tree = sparse.IndexTree.from_groups([np.arange(i, i + 8) for i in range(0, 48, 8)])
    tl_coder = sparse.TreeLassoCoder(D, tree)
    want_omp = omp_coder.encode(X).codes
    want_tl = tl_coder.encode(X, 0.3)
    errors: list[str] = []

    def work() -> None:
        for _ in range(5):
            if not np.array_equal(omp_coder.encode(X).codes, want_omp):
                errors.append("omp")
            if not np.array_equal(tl_coder.encode(X, 0.3), want_tl):
                errors.append("tree")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


_junk = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -0.0, 1e30, -1e30, 1e-30, np.nan, np.inf]),
)


@SETTINGS
@given(rows=st.integers(0, 4), cols=st.integers(1, 12), atoms=st.integers(1, 8), k=st.integers(-1, 10),
       values=st.lists(_junk, min_size=1, max_size=40), alpha=st.floats(allow_nan=True, allow_infinity=True),
       tol=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_arbitrary_input_never_crashes(rows, cols, atoms, k, values, alpha, tol) -> None:
    vals = np.resize(np.array(values, dtype=np.float64), rows * cols + cols * atoms)
    X = vals[:rows * cols].reshape(rows, cols)
    D = vals[rows * cols:].reshape(cols, atoms)
    with np.errstate(all="ignore"):
        Dn = D / np.linalg.norm(D, axis=0)
    for dictionary in (D, Dn):
        try:
            codes = sparse.omp(X, dictionary, n_nonzero_coefs=k if k > 0 else None, tol=tol)
            assert codes.shape == (rows, atoms) and np.all(np.isfinite(codes))
        except InputError:
            pass
        try:
            codes = sparse.tree_group_lasso(X, dictionary, [list(range(atoms))], alpha, max_iter=20,
                                            tol=1e-4 if tol is None else tol)
            assert codes.shape == (rows, atoms) and np.all(np.isfinite(codes))
        except InputError:
            pass
