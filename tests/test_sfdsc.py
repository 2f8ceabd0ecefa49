"""SFDSC: fault tree, structured Fisher dictionary learning, classifier, bundle/device path, CLI, CWRU."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6")  # validate_data

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from edgefault.device import sparse  # noqa: E402
from edgefault.device.bundle import load_bundle  # noqa: E402
from edgefault.cli import main  # noqa: E402
from edgefault.errors import BundleError, InputError  # noqa: E402
from edgefault.export import pack_bundle  # noqa: E402
from edgefault.device.faulttree import FaultTree, default_bearing_tree  # noqa: E402
from edgefault.kinds.sfdsc import ovr_from_ovo, svm_ovo_decision  # noqa: E402
from edgefault.device.runtime import Runtime  # noqa: E402
from edgefault.io.synth import bearing_signal  # noqa: E402
from edgefault.train.fisher_dl import FisherDictionaryLearning, least_squares_form  # noqa: E402
from edgefault.train.sfdsc import SFDSCClassifier, block_matrix, pack_sfdsc, sfdsc_spec, train_sfdsc  # noqa: E402

LABELS = ["normal", "ball@0.007", "ball@0.014", "inner_race@0.007", "inner_race@0.014", "outer_race_6@0.007"]


# -- fault tree ----------------------------------------------------------------------------------
def test_default_bearing_tree_structure_and_relationship() -> None:
    t = default_bearing_tree(LABELS)
    assert t.classes == tuple(LABELS)
    assert t.path("ball@0.014") == ["all", "ball", "ball@0.014"]
    assert t.path("normal") == ["all", "normal"]
    s = t.relationship(LABELS)
    np.testing.assert_array_equal(np.diag(s), 1.0)
    np.testing.assert_array_equal(s, s.T)
    assert s[1, 2] == 0.5          # two ball severities share the location
    assert s[1, 3] == 0.0          # ball vs inner race share only the root
    assert s[0, 5] == 0.0
    # location-only labels: a flat tree under the root
    flat = default_bearing_tree(["normal", "ball", "inner_race"])
    assert flat.path("ball") == ["all", "ball"]
    assert FaultTree.from_json(json.dumps(t.to_dict())).to_dict() == t.to_dict()


def test_index_tree_groups_nested_and_cover_atoms() -> None:
    t = default_bearing_tree(LABELS)
    k = 3
    ac = np.repeat(np.arange(len(LABELS)), k)
    parent, atom_node, w = t.index_tree(ac, LABELS, root_weight=0.5)
    core = sparse.IndexTree(parent, atom_node, w)       # the core accepts the tree
    groups, weights = core.groups(), core.weights       # indexed by node
    sets = [set(g.tolist()) for g in groups]

    def ancestors(v: int) -> list[int]:
        out = []
        while parent[v] != -1:
            v = int(parent[v])
            out.append(v)
        return out

    for i, a in enumerate(sets):                       # nested or disjoint; nesting follows the tree
        assert a and a <= (sets[int(parent[i])] if parent[i] != -1 else a)
        for j, b in enumerate(sets):
            assert a <= b or b <= a or not (a & b)
            if a < b:
                assert j in ancestors(i)
    assert set().union(*sets) == set(range(ac.size))
    root = int(np.flatnonzero(parent == -1)[0])
    assert sets[root] == set(range(ac.size)) and weights[root] == 0.5     # the root holds every atom
    for c in range(len(LABELS)):                                           # one group per class
        assert set(np.flatnonzero(ac == c).tolist()) in sets
    assert set(range(3, 9)) in sets                                        # the ball location node (2 classes)
    # the core's norm is the weighted sum of the group norms
    v = np.random.default_rng(0).normal(size=ac.size)
    ref = sum(wi * np.linalg.norm(v[g]) for g, wi in zip(groups, weights))
    assert float(core.value(v)) == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("bad", [
    {"name": "all", "children": [{"name": "a", "label": "x"}, {"name": "b", "label": "x"}]},   # label twice
    {"name": "all", "children": []},                                                          # empty inner node
    {"name": "all", "children": [{"name": "a", "label": "x", "children": []}]},               # leaf with children
    {"name": "all", "children": [{"name": "a", "lable": "x"}]},                               # unknown key
    ["not", "a", "tree"],
])
def test_bad_fault_tree(bad: object) -> None:
    with pytest.raises(InputError):
        FaultTree.from_dict(bad)


def test_fault_tree_missing_labels_and_bad_index_trees() -> None:
    t = default_bearing_tree(["normal", "ball"])
    with pytest.raises(InputError, match="lacks leaves"):
        t.relationship(["normal", "inner_race"])
    with pytest.raises(InputError):
        t.index_tree([0, 2], ["normal", "ball"])
    with pytest.raises(InputError, match="not a tree"):
        sparse.IndexTree(np.array([-1, 2, 1]), np.array([1, 2]), np.ones(3))   # cycle 1 <-> 2
    with pytest.raises(InputError, match="not a tree"):
        sparse.IndexTree(np.array([-1, -1]), np.array([0, 1]), np.ones(2))     # two roots


# -- the core's tree coding on fault-tree index trees -----------------------------------------------
def _random_problem(seed: int, n_atoms_per_class: int = 4, d: int = 40, n: int = 7):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    t = default_bearing_tree(LABELS)
    ac = np.repeat(np.arange(len(LABELS)), n_atoms_per_class)
    tree = t.index_tree(ac, LABELS, root_weight=0.3)
    D = rng.normal(size=(ac.size, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.normal(size=(n, d))
    return tree, D, X


def _omega(tree: sparse.IndexTree, A: np.ndarray) -> np.ndarray:
    """The tree norm per row, in float64 from the node groups."""
    return sum(w * np.linalg.norm(A[:, g], axis=1) for g, w in zip(tree.groups(), tree.weights.astype(np.float64)))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.floats(0.01, 3.0))
def test_core_tree_prox_on_fault_tree_is_the_minimiser(seed: int, t: float) -> None:
    tree, _, _ = _random_problem(seed)
    core = sparse.IndexTree(*tree)
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(3, tree[1].size)) * 2
    p = core.prox(v, t).astype(np.float64)
    # p minimises 0.5 ||p - v||^2 + t Omega(p): no better point nearby, at 0 or at v
    def f(q: np.ndarray) -> np.ndarray:
        return 0.5 * np.sum((q - v) ** 2, axis=1) + t * _omega(core, q)
    fp = f(p)
    for q in [np.zeros_like(v), v] + [p + s * rng.normal(size=v.shape) for s in (1e-3, 1e-2, 1e-1) for _ in range(5)]:
        assert np.all(fp <= f(q) + 1e-5 * (1 + np.abs(fp)))
    # the prox of 0 is 0; prox shrinks every group norm
    assert np.all(core.prox(np.zeros_like(v), t) == 0)
    assert np.all(np.linalg.norm(p, axis=1) <= np.linalg.norm(v, axis=1) + 1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_core_tree_group_lasso_is_optimal_on_fault_tree(seed: int) -> None:
    tree, D, X = _random_problem(seed)
    core = sparse.IndexTree(*tree)
    codes = sparse.tree_group_lasso(X, D.T, tree, 0.3, max_iter=3000, tol=1e-7).astype(np.float64)
    groups, weights = core.groups(), core.weights.astype(np.float64)
    # optimality: for every group g whose codes are all zero, the gradient there is small enough
    grad = (X - codes @ D) @ D.T
    for g, w in zip(groups, weights):
        if w == 0:
            continue
        zero = np.all(np.abs(codes[:, g]) < 1e-12, axis=1)
        # necessary condition: grad_g = sum_h w_h z_h|g with ||z_h|| <= 1 over the groups h meeting g
        bound = sum(wi for h, wi in zip(groups, weights) if set(g.tolist()) & set(h.tolist()))
        assert np.all(np.linalg.norm(grad[zero][:, g], axis=1) <= 0.3 * bound * (1 + 1e-3) + 1e-5)
    # the fixed point of the proximal gradient step (the minimiser's characterisation)
    L = np.linalg.eigvalsh(D @ D.T)[-1]
    step = core.prox(codes + grad / L, 0.3 / L).astype(np.float64)
    np.testing.assert_allclose(step, codes, atol=1e-4)
    # a warm start at the solution stays there
    again = sparse.tree_group_lasso(X, D.T, tree, 0.3, max_iter=3000, tol=1e-7, init=codes)
    np.testing.assert_allclose(again, codes, atol=1e-4)


# -- dictionary learning ----------------------------------------------------------------------------
def _synthetic_classes(n_per: int = 40, d: int = 64, seed: int = 0):  # type: ignore[no-untyped-def]
    """Each class: random combinations of its own 3 prototype signals plus noise."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c, lab in enumerate(LABELS[:4]):
        protos = rng.normal(size=(3, d))
        w = rng.normal(size=(n_per, 3))
        X.append(w @ protos + 0.1 * rng.normal(size=(n_per, d)))
        y += [lab] * n_per
    return np.concatenate(X), np.array(y)


def test_fisher_dl_dictionary_and_class_residuals() -> None:
    X, y = _synthetic_classes()
    dl = FisherDictionaryLearning(4, max_iter=4, random_state=0).fit(X, y)
    assert dl.components_.shape == (16, X.shape[1])
    np.testing.assert_allclose(np.linalg.norm(dl.components_, axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(dl.atom_class_, np.repeat(np.arange(4), 4))
    assert list(dl.classes_) == sorted(set(y))
    assert dl.n_iter_ == 4 and np.all(np.isfinite(dl.objective_))
    assert dl.objective_[-1] < dl.objective_[0]
    Xt, yt = _synthetic_classes(seed=0)
    R = dl.class_residuals(Xt)
    assert np.mean(dl.classes_[R.argmin(axis=1)] == yt) > 0.95
    codes = dl.transform(Xt)
    assert codes.shape == (Xt.shape[0], 16)
    # deterministic for a seed, different for another
    again = FisherDictionaryLearning(4, max_iter=4, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.components_, dl.components_)
    other = FisherDictionaryLearning(4, max_iter=4, random_state=1).fit(X, y)
    assert not np.array_equal(other.components_, dl.components_)


def test_least_squares_form_reproduces_the_quadratic() -> None:
    rng = np.random.default_rng(3)
    M = rng.normal(size=(6, 9))
    for H in (M.T @ M + 0.1 * np.eye(9), M.T @ M):        # definite, and singular (rank 6)
        B = rng.normal(size=(4, 6)) @ M                   # rows in H's range
        E, S = least_squares_form(H, B)
        assert E.shape[1] == 9 and S.shape == (4, E.shape[0])
        np.testing.assert_allclose(E.T @ E, H, atol=1e-10)
        np.testing.assert_allclose(S @ E, B, atol=1e-10)


def test_fisher_dl_coding_step_minimises_the_fddl_objective() -> None:
    """The core's coder on the least-squares form solves the coding step: its codes are the
    fixed point of a proximal gradient step on the FDDL smooth part (its gradient written out
    here as in the objective), per sample, with the means held at the previous codes."""
    X, y = _synthetic_classes(n_per=12, d=24)
    dl = FisherDictionaryLearning(3, max_iter=2, coding_iter=4000, tol=1e-7, lambda_fisher=0.05,
                                  random_state=0).fit(X, y)
    D, yi = dl.components_, np.searchsorted(dl.classes_, y)
    c = dl.classes_.size
    blocks = [np.flatnonzero(dl.atom_class_ == i) for i in range(c)]
    members = [np.flatnonzero(yi == i) for i in range(c)]
    W = 1.0 - dl.structure * dl.relationship_
    np.fill_diagonal(W, 1.0)
    tree = sparse.IndexTree(*dl.index_tree_)
    A0 = dl.train_codes_
    A = dl._fisher_codes(X, D, A0, members, blocks, W, tree)
    lam, eta = dl.lambda_fisher, dl.eta
    Mc = np.stack([A0[m].mean(axis=0) for m in members])
    target = 2.0 * Mc[yi] - A0.mean(axis=0)
    grad = (A @ D - X) @ D.T + lam * ((1.0 + eta) * A - target)
    for j, b in enumerate(blocks):
        part = A[:, b] @ D[b]
        grad[:, b] += W[yi, j][:, None] * (part @ D[b].T)
        own = yi == j
        grad[np.ix_(own, b)] -= X[own] @ D[b].T
    L = 2.0 * np.linalg.eigvalsh(D @ D.T)[-1] + lam * (1 + eta)   # any step 1/L > 0 has the minimiser as fixed point
    step = tree.prox(A - grad / L, dl.alpha / L).astype(np.float64)
    np.testing.assert_allclose(step, A, atol=1e-4)


def test_fisher_dl_bad_params_and_tree() -> None:
    X, y = _synthetic_classes(n_per=10)
    with pytest.raises(ValueError, match="n_atoms_per_class"):
        FisherDictionaryLearning(0).fit(X, y)
    with pytest.raises(ValueError, match="structure"):
        FisherDictionaryLearning(2, structure=2.0).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        FisherDictionaryLearning(2).fit(X[:10], y[:10])
    with pytest.raises(InputError, match="lacks leaves"):
        FisherDictionaryLearning(2, tree={"name": "all", "children": [{"name": "n", "label": "normal"},
                                                                      {"name": "b", "label": "ball@0.007"}]}).fit(X, y)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError):
        FisherDictionaryLearning(2).fit(Xn, y)


# -- SVM in numpy == scikit-learn ---------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_numpy_svm_decision_matches_sklearn(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(60 * n_classes, 6))
    y = np.repeat(np.arange(n_classes), 60)
    X += y[:, None] * 0.7
    svm = SVC(kernel="poly", degree=2, coef0=1.0, gamma=0.2, C=3.0, decision_function_shape="ovo").fit(X, y)
    Z = rng.normal(size=(50, 6)) + 1.0
    dual, icpt = svm.dual_coef_, svm.intercept_
    if n_classes == 2:
        dual, icpt = -dual, -icpt
    dec = svm_ovo_decision(Z, svm.support_vectors_, dual, icpt, svm.n_support_, 0.2, 1.0, 2)
    ref = svm.decision_function(Z)
    if n_classes == 2:
        np.testing.assert_allclose(dec[:, 0], -ref, rtol=1e-9, atol=1e-9)   # sklearn: positive = class 1
    else:
        np.testing.assert_allclose(dec, ref, rtol=1e-9, atol=1e-9)
        svm.set_params(decision_function_shape="ovr")
        np.testing.assert_allclose(ovr_from_ovo(dec, n_classes), svm.decision_function(Z), rtol=1e-9, atol=1e-9)
        # predict = vote winner, vote ties broken by confidence: SVC's break_ties=True
        svm.set_params(break_ties=True)
        np.testing.assert_array_equal(np.argmax(ovr_from_ovo(dec, n_classes), axis=1), svm.predict(Z))


def test_classifier_proba_and_predict_consistent() -> None:
    X, y = _synthetic_classes(n_per=30)
    clf = SFDSCClassifier(4, max_iter=3, random_state=0).fit(X, y)
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[p.argmax(axis=1)])
    assert np.mean(clf.predict(X) == y) > 0.95
    # the numpy decision reproduces scikit-learn's on the same SVM inputs
    Z = (clf._features(X) - clf.feature_mean_) / clf.feature_scale_
    ref = clf.svm_.decision_function(Z)
    np.testing.assert_allclose(np.argmax(ovr_from_ovo(clf.ovo_decision(X), 4), axis=1), np.argmax(ref, axis=1))
    with pytest.raises(ValueError, match="n_passthrough"):
        SFDSCClassifier(2, n_passthrough=X.shape[1]).fit(X, y)


def test_svm_cv_selects_on_contiguous_training_folds() -> None:
    X, y = _synthetic_classes(n_per=30)
    clf = SFDSCClassifier(4, max_iter=3, C=10.0, svm_cv=3, random_state=0).fit(X, y)
    assert len(clf.cv_scores_) == 9 and all(0.0 <= v <= 1.0 for v in clf.cv_scores_.values())
    assert clf.C_ in (1.0, 10.0, 100.0)
    nf = clf.feature_mean_.size
    assert any(np.isclose(clf.gamma_, m / nf) for m in (0.25, 1.0, 4.0))
    key = f"C={clf.C_:g},gamma={clf.gamma_ * nf:g}/n_features"
    assert clf.cv_scores_[key] == max(clf.cv_scores_.values())
    # independent check of one grid point: scikit-learn's SVC on the same contiguous folds
    Z = (clf._features(X) - clf.feature_mean_) / clf.feature_scale_
    yi = np.searchsorted(clf.classes_, y)
    fold = np.empty(y.size, dtype=int)
    for c in range(clf.classes_.size):
        idx = np.flatnonzero(yi == c)
        fold[idx] = np.arange(idx.size) * 3 // idx.size
    acc = [np.mean(SVC(kernel="poly", degree=2, coef0=1.0, gamma=1.0 / nf, C=10.0).fit(Z[fold != f], yi[fold != f])
                   .predict(Z[fold == f]) == yi[fold == f]) for f in range(3)]
    assert clf.cv_scores_["C=10,gamma=1/n_features"] == pytest.approx(np.mean(acc))
    # the chosen SVM is the one stored for the device
    assert clf.svm_.C == clf.C_ and clf.svm_.gamma == clf.gamma_
    # too few rows per class for the folds: the given C and 1/n_features, no scores
    small = SFDSCClassifier(2, max_iter=2, C=3.0, svm_cv=20, random_state=0).fit(X, y)
    assert (small.C_, small.gamma_, small.cv_scores_) == (3.0, 1.0 / nf, {})
    for bad in (1, -1, True, 2.5):
        with pytest.raises(ValueError, match="svm_cv"):
            SFDSCClassifier(2, max_iter=2, svm_cv=bad).fit(X, y)


# -- product path: train -> bundle -> Runtime ---------------------------------------------------------
FS = 12000.0


@pytest.fixture(scope="module")
def synth_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    recs = {"normal": bearing_signal(6.0, FS, seed=1),
            "inner_race": bearing_signal(6.0, FS, fault="inner_race", severity=1.0, seed=2),
            "outer_race": bearing_signal(6.0, FS, fault="outer_race", severity=1.0, seed=3)}
    spec = sfdsc_spec(FS, ["DE"], window=1024, representation="log_power")
    half = {k: v.shape[0] // 2 for k, v in recs.items()}
    blocks = [(v[:half[k]], k, k) for k, v in recs.items()]
    res = train_sfdsc(blocks, spec, n_atoms_per_class=4, max_iter=3)
    path = tmp_path_factory.mktemp("sfdsc") / "m.efb"
    bundle = pack_sfdsc(res, path)
    test = {k: v[half[k] + 1024:] for k, v in recs.items()}
    return res, bundle, path, test


def test_bundle_roundtrip_runtime_matches_estimator(synth_bundle) -> None:  # type: ignore[no-untyped-def]
    res, bundle, path, test = synth_bundle
    assert bundle.kind == "sfdsc" and bundle.labels == ["inner_race", "normal", "outer_race"]
    assert "sklearn" not in json.dumps(bundle.manifest["model"])
    rt = Runtime(path)
    for label, x in test.items():
        rt.reset()
        ev = []
        for s in range(0, x.shape[0], 3000):
            ev += rt.push(np.ascontiguousarray(x[s:s + 3000]))
        X = block_matrix(res.spec, x, use_raw=False)
        assert len(ev) == X.shape[0] > 0
        P = np.array([[e.proba[lab] for lab in rt.labels] for e in ev])
        np.testing.assert_allclose(P, res.classifier.predict_proba(X), atol=1e-5)
        assert np.mean([e.label == label for e in ev]) > 0.95
        sc = np.array([e.score for e in ev])
        np.testing.assert_allclose(sc, 1.0 - P[:, rt.labels.index("normal")], atol=1e-6)
        assert all(e.anomaly == (e.score > 0.5) for e in ev)


def test_two_channel_log_power_bundle_through_runtime(tmp_path: Path) -> None:
    """The configuration of the CWRU figures (DE + FE log-power spectra, no window statistics in
    the SVM): Runtime.push on (n, 2) chunks gives the estimator's probabilities and labels."""
    def rec(fault: str | None, seed: int) -> np.ndarray:
        a = bearing_signal(4.0, FS, fault=fault, severity=1.0, seed=seed)
        b = 0.5 * bearing_signal(4.0, FS, fault=fault, severity=0.5, seed=seed + 100)
        return np.stack([a, b], axis=1).astype(np.float32)

    recs = {"normal": rec(None, 11), "inner_race": rec("inner_race", 12), "outer_race": rec("outer_race", 13)}
    spec = sfdsc_spec(FS, ["DE", "FE"], window=1024, representation="log_power")
    assert spec.feature_dim == 2 * (2 + 513)
    half = {k: v.shape[0] // 2 for k, v in recs.items()}
    res = train_sfdsc([(v[:half[k]], k, k) for k, v in recs.items()], spec, n_atoms_per_class=3, max_iter=2,
                      use_extra=False)
    assert res.classifier.dictionary_.shape == (9, 2 * 513)
    assert res.info["svm"]["cv_accuracy"]                      # C / gamma chosen inside the training data
    rt = Runtime(pack_sfdsc(res, tmp_path / "two.efb"))
    for label, x in recs.items():
        x = np.ascontiguousarray(x[half[label] + 1024:])
        rt.reset()
        ev = rt.push(x[:5000]) + rt.push(x[5000:])
        X = block_matrix(spec, x, use_raw=False)
        assert len(ev) == X.shape[0] > 0
        P = np.array([[e.proba[lab] for lab in rt.labels] for e in ev])
        np.testing.assert_allclose(P, res.classifier.predict_proba(X), atol=1e-5)
        assert [e.label for e in ev] == list(res.classifier.predict(X))
        assert np.mean([e.label == label for e in ev]) > 0.9


def test_runtime_marks_nonfinite_windows_invalid(synth_bundle) -> None:  # type: ignore[no-untyped-def]
    _, _, path, test = synth_bundle
    x = np.array(test["normal"][:4096], dtype=np.float32)
    x[100] = np.nan
    ev = Runtime(path).push(x)
    assert not ev[0].valid and ev[0].proba is None and ev[0].label is None
    assert ev[-1].valid and ev[-1].label is not None


def test_raw_representation_uses_raw_windows(tmp_path: Path) -> None:
    a = bearing_signal(3.0, FS, seed=4)
    b = bearing_signal(3.0, FS, fault="ball", severity=1.0, seed=5)
    spec = sfdsc_spec(FS, ["DE"], window=512, representation="raw")
    res = train_sfdsc([(a, "normal", "a"), (b, "ball", "b")], spec, n_atoms_per_class=3, max_iter=2,
                      max_windows_per_class=60)
    bundle = pack_sfdsc(res, tmp_path / "raw.efb")
    assert bundle.model["input"] == "raw"
    rt = Runtime(bundle)
    assert rt.model.needs_raw
    ev = rt.push(np.ascontiguousarray(b[:4096]))
    P = np.array([[e.proba[lab] for lab in rt.labels] for e in ev])
    np.testing.assert_allclose(P, res.classifier.predict_proba(block_matrix(spec, b[:4096], use_raw=True)), atol=1e-5)


def test_bundle_with_bad_arrays_is_refused(synth_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res, bundle, _, _ = synth_bundle
    arrays = dict(bundle.arrays)
    arrays["dictionary"] = arrays["dictionary"][:, :10]
    bad = pack_bundle(tmp_path / "bad.efb", spec=bundle.spec, model=bundle.model, arrays=arrays,
                      labels=bundle.labels, thresholds=bundle.thresholds)
    with pytest.raises(BundleError, match="do not fit"):
        Runtime(bad)
    arrays = dict(bundle.arrays)
    del arrays["support_vectors"]
    bad = pack_bundle(tmp_path / "bad2.efb", spec=bundle.spec, model=bundle.model, arrays=arrays,
                      labels=bundle.labels, thresholds=bundle.thresholds)
    with pytest.raises(BundleError, match="support_vectors"):
        Runtime(bad)
    arrays = dict(bundle.arrays)
    arrays["tree_parent"] = np.full_like(arrays["tree_parent"], -1)
    bad = pack_bundle(tmp_path / "bad3.efb", spec=bundle.spec, model=bundle.model, arrays=arrays,
                      labels=bundle.labels, thresholds=bundle.thresholds)
    with pytest.raises(BundleError, match="not a tree"):
        Runtime(bad)


@pytest.mark.parametrize("what, change, match", [
    # coder / SVM parameters out of range (were refused mid-stream by sparse.py without the bundle's name)
    ("model", {"alpha": -1.0}, r"model entry 'alpha' must be a finite number >= 0, got -1.0"),
    ("model", {"tol": -1e-4}, r"'tol' must be a finite number >= 0"),
    ("model", {"max_iter": 0}, r"'max_iter' must be an integer >= 1 and <= 10000, got 0"),
    ("model", {"max_iter": 10 ** 9}, r"'max_iter' must be an integer"),  # slow input: minutes per window
    ("model", {"max_iter": 2.5}, r"'max_iter' must be an integer"),
    ("model", {"degree": 400}, r"'degree' must be an integer"),
    ("model", {"temperature": 0.0}, r"'temperature' must be a finite number > 0"),
    ("model", {"gamma": "x"}, r"'gamma' must be a finite number"),
    ("model", {"use_extra": "yes"}, r"'use_extra' must be true or false"),
    ("model", {"input": 3}, r"'input' must be a string"),
    ("model", {"normal_label": 1}, r"'normal_label' must be a string or null"),
    # arrays that do not fit each other (were ValueError / IndexError in score())
    ("arrays", {"feature_mean": lambda a: a[:-1]}, r"array 'feature_mean' has shape \(\d+,\), expected \(\d+,\)"),
    ("arrays", {"feature_scale": lambda a: 0 * a}, r"array 'feature_scale' must hold values > 0, got 0"),
    ("arrays", {"support_vectors": lambda a: a[:, :-1]}, r"array 'support_vectors' has shape"),
    ("arrays", {"support_vectors": lambda a: np.where(a == a.max(), np.nan, a)}, r"'support_vectors' has non-finite"),
    ("arrays", {"dual_coef": lambda a: a[:, :-1]}, r"array 'dual_coef' has shape"),
    ("arrays", {"intercept": lambda a: a[:-1]}, r"array 'intercept' has shape \(2,\), expected \(3,\)"),
    ("arrays", {"n_support": lambda a: a + 1}, r"array 'support_vectors' has shape"),
    ("arrays", {"n_support": lambda a: a.astype(np.float64)}, r"array 'n_support' must hold integers"),
    ("arrays", {"n_support": lambda a: np.array([-1, *a[1:-1], a[-1] + 1 + a[0]], a.dtype)},
     r"array 'n_support' must hold values >= 0"),
    ("arrays", {"input_mean": lambda a: np.zeros(7)}, r"input_mean / input_scale must both be present"),
    # class indices: a huge atom_class value made score() loop over that many classes (slow input)
    ("arrays", {"atom_class": lambda a: np.where(np.arange(a.size) == 0, 10 ** 9, a).astype(np.int64)},
     r"array 'atom_class' must hold values >= 0 and <= 2, got 1e\+09"),
    ("arrays", {"atom_class": lambda a: a.astype(np.float32)}, r"array 'atom_class' must hold integers"),
    ("arrays", {"atom_class": lambda a: a[:-1]}, r"array 'atom_class' has shape"),
    ("arrays", {"dictionary": lambda a: np.where(a == a.max(), np.inf, a)}, r"array 'dictionary' has non-finite"),
    ("arrays", {"tree_weight": lambda a: -a}, r"array 'tree_weight' must hold values >= 0"),
])
def test_inconsistent_bundle_is_refused_at_load_naming_the_entry(  # type: ignore[no-untyped-def]
        synth_bundle, tmp_path: Path, what: str, change: dict, match: str) -> None:  # type: ignore[type-arg]
    """A bundle whose model entries or arrays do not fit each other (a buggy packing tool, or a
    tampered and re-sealed bundle) is refused when the Runtime is built: BundleError naming the
    bundle, the entry and what was expected; never an exception from numpy while scoring."""
    _, bundle, _, _ = synth_bundle
    model, arrays = dict(bundle.model), dict(bundle.arrays)
    if what == "model":
        model.update(change)
    else:
        for k, f in change.items():
            arrays[k] = f(arrays.get(k, arrays["feature_mean"]))
    path = tmp_path / "bad.efb"
    bad = pack_bundle(path, spec=bundle.spec, model=model, arrays=arrays, labels=bundle.labels,
                      thresholds=bundle.thresholds)
    t0 = time.perf_counter()
    with pytest.raises(BundleError, match=f"^bundle {re.escape(str(path))}: .*{match}"):
        Runtime(bad)
    assert time.perf_counter() - t0 < 5.0
    with pytest.raises(BundleError, match=f"^bundle {bad.bundle_id}: "):  # from bytes: named by its id
        Runtime(load_bundle(path.read_bytes()))


def test_train_sfdsc_bad_input() -> None:
    spec = sfdsc_spec(FS, ["DE"], window=1024)
    with pytest.raises(InputError, match="no training"):
        train_sfdsc([], spec)
    with pytest.raises(InputError, match="at least 2 labels"):
        train_sfdsc([(np.random.default_rng(0).normal(size=8000), "normal", "a")], spec)
    with pytest.raises(InputError, match="no complete finite window"):
        train_sfdsc([(np.zeros(100), "normal", "a"), (np.ones(5000), "b", "b")], spec)
    with pytest.raises(InputError, match="representation"):
        sfdsc_spec(FS, ["DE"], representation="wavelet")


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_train_classify_and_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["path,fault,diameter_in,fs_hz"]
    for i, (fault, sev) in enumerate([(None, "0"), ("inner_race", "0.007"), ("ball", "0.007")]):
        x = bearing_signal(4.0, FS, fault=fault, severity=1.0, seed=10 + i)
        np.savez(tmp_path / f"r{i}.npz", data=x[:, None], fs=np.float64(FS), channels=np.array(["DE"]))
        rows.append(f"r{i}.npz,{fault or 'normal'},{sev},12000")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "c.efb"
    rc = main(["train", "classify", "--method", "sfdsc", "--manifest", str(tmp_path / "m.csv"), "--out", str(out),
               "--label-columns", "fault,diameter_in", "--atoms", "3", "--max-windows", "40"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["labels"] == ["ball@0.007", "inner_race@0.007", "normal"]
    assert load_bundle(out).kind == "sfdsc"
    assert main(["score", str(out), str(tmp_path / "r1.npz")]) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert lines and all(ln["label"] in info["labels"] + ["unknown"] for ln in lines)
    assert np.mean([ln["label"] == "inner_race@0.007" for ln in lines]) > 0.9
    # decisions calibrated on the held-out later quarter of every recording
    cal = info["calibration"]
    th = load_bundle(out).thresholds
    assert th["calibrated"] and th["threshold"] == cal["threshold"] and th["unknown_below"] == cal["unknown_below"]
    assert 0 < cal["unknown_below"] < 1 and cal["n_windows"] > 0 and cal["n_normal_windows"] > 0
    assert cal["far_on_calibration"] <= 0.05 and "n_calib_effective" in cal
    out2 = tmp_path / "c2.efb"
    assert main(["train", "classify", "--method", "sfdsc", "--manifest", str(tmp_path / "m.csv"), "--out", str(out2),
                 "--atoms", "3", "--max-windows", "40", "--no-window-stats", "--representation", "bands"]) == 0
    capsys.readouterr()
    b2 = load_bundle(out2)
    assert b2.model["use_extra"] is False and b2.labels == ["ball", "inner_race", "normal"]
    assert b2.spec.blocks[1]["kind"] == "band_energy"
    assert main(["train", "classify", "--method", "vae", "--manifest", str(tmp_path / "m.csv"), "--out",
                 str(out)]) == 2
    assert main(["eval", "--manifest", str(tmp_path / "m.csv"), "--task", "anomaly", "--method", "sfdsc"]) == 2


# -- real data: one protocol, one seed ------------------------------------------------------------
@pytest.mark.data
def test_cwru_same_load_split_one_seed(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0 hp, healthy + inner race / ball / outer race @ 0.007 in, first half of each recording for
    training, second half (after a one-window gap) for testing, scored through Runtime.push."""
    rc = main(["eval", "--task", "classify", "--method", "sfdsc", "--manifest",
               str(shared_data / "cwru" / "manifest.csv"), "--include-labels", "normal,ball,inner_race,outer_race_6",
               "--where", "diameter_in=0.000,0.007", "--where", "load_hp=0", "--label-columns", "fault,diameter_in",
               "--protocol", "split", "--seeds", "1"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    fold = rep["folds"]["all"]
    assert rep["labels"] == ["ball@0.007", "inner_race@0.007", "normal", "outer_race_6@0.007"]
    assert fold["accuracy_mean"] >= 0.99
    assert fold["seeds"][0]["n_test_windows"] > 300
    for tr, te in zip(fold["train"], fold["test"]):           # leak-safe: halves with a gap
        s0, e0 = map(int, tr.split("[")[1].rstrip("]").split(":"))
        s1, e1 = map(int, te.split("[")[1].rstrip("]").split(":"))
        assert s0 == 0 and s1 >= e0 + rep["window"]


@pytest.mark.parametrize("params", [{"standardize": True}, {"standardize": True, "row_norm": False, "use_extra": False}])
def test_preprocessing_options_roundtrip_through_bundle(tmp_path: Path, params: dict) -> None:  # type: ignore[type-arg]
    a = bearing_signal(3.0, FS, seed=6)
    b = bearing_signal(3.0, FS, fault="outer_race", severity=1.0, seed=7)
    spec = sfdsc_spec(FS, ["DE"], window=512, representation="bands", n_bands=24)
    res = train_sfdsc([(a, "normal", "a"), (b, "outer_race", "b")], spec, n_atoms_per_class=3, max_iter=2, **params)
    bundle = pack_sfdsc(res, tmp_path / "p.efb")
    assert ("input_mean" in bundle.arrays) == params["standardize"]
    assert bundle.model["row_norm"] == params.get("row_norm", True)
    rt = Runtime(bundle)
    x = np.ascontiguousarray(b[-6000:])
    ev = rt.push(x)
    P = np.array([[e.proba[lab] for lab in rt.labels] for e in ev])
    np.testing.assert_allclose(P, res.classifier.predict_proba(block_matrix(spec, x, use_raw=False)), atol=1e-5)
    if params.get("row_norm", True):  # without row normalisation this small synthetic case reaches only ~0.7
        assert np.mean([e.label == "outer_race" for e in ev]) > 0.9


def test_runtime_sensor_fault_windows_are_not_classified(synth_bundle) -> None:  # type: ignore[no-untyped-def]
    """The model-scored path (SFDSC) runs the sensor-health checks like the fused one: a flat-lined
    channel's windows come back unscored with the flag sensor_fault, no label or proba, and the
    rest are classified exactly as without the fault."""
    _, _, path, test = synth_bundle
    x = np.array(test["inner_race"][:12 * 1024], dtype=np.float32)
    ref = Runtime(path).push(x)
    y = x.copy()
    y[4 * 1024:6 * 1024] = 0.25  # stuck sensor
    got = Runtime(path).push(y)
    bad = [e for e in got if not e.valid]
    assert bad and all(e.flags == ("sensor_fault",) and e.health == {"DE": ["flat"]} and e.label is None
                       and e.proba is None and not e.anomaly for e in bad)
    assert all(e.to_dict()["health"] == {"DE": ["flat"]} for e in bad)
    clean = 0
    for e, r in zip(got, ref):
        end = round(e.t * FS)
        if end <= 4 * 1024 or end - 1024 >= 6 * 1024:  # windows that do not touch the stuck samples
            assert e.valid and e.label == r.label and e.proba == pytest.approx(r.proba)
            clean += 1
    assert clean >= 6


def test_calibrated_classifier_batches_carry_labels_unknown_and_not_normal(tmp_path: Path) -> None:
    recs = {"normal": bearing_signal(8.0, FS, seed=1),
            "inner_race": bearing_signal(8.0, FS, fault="inner_race", severity=1.0, seed=2),
            "outer_race": bearing_signal(8.0, FS, fault="outer_race", severity=1.0, seed=3)}
    spec = sfdsc_spec(FS, ["DE"], window=1024, representation="log_power")
    n_train = {k: v.shape[0] * 3 // 4 for k, v in recs.items()}
    res = train_sfdsc([(v[:n_train[k]], k, k) for k, v in recs.items()], spec, n_atoms_per_class=4, max_iter=3,
                      calib_fraction=0.3, target_far=0.05, unknown_rate=0.2)
    cal = res.info["calibration"]
    # held out = the later 30 % of each block, after a one-window gap: no shared sample with training
    for d in res.info["blocks"]:
        assert d["train_stop"] + spec.window + round(0.3 * d["n_samples"]) == d["n_samples"]
    assert 0 < cal["unknown_below"] < 1 and 0.1 <= cal["unknown_rate"] <= 0.3
    assert cal["threshold"] < 1 and cal["far_on_calibration"] <= 0.1
    bundle = pack_sfdsc(res, tmp_path / "c.efb")
    assert bundle.thresholds["calibrated"] and bundle.thresholds["unknown_below"] == cal["unknown_below"]
    rt = Runtime(bundle)
    assert rt.threshold == pytest.approx(cal["threshold"])
    later = {k: v[n_train[k] + 1024:] for k, v in recs.items()}
    for label, x in later.items():
        rt.reset()
        b = rt.push(np.ascontiguousarray(x))
        ev = list(b)
        assert b.labels == tuple(rt.labels) and b.label == [e.label for e in ev]
        assert b.unknown.tolist() == [e.label == "unknown" for e in ev]
        assert ((b.label_index == -1) == (b.unknown | ~b.valid)).all()
        np.testing.assert_allclose(b.proba, [[e.proba[k] for k in rt.labels] for e in ev], atol=1e-7)
        assert b.anomaly.tolist() == [e.score > rt.threshold for e in ev]
        known = [e.label for e in ev if e.label != "unknown"]
        assert known and np.mean([lab == label for lab in known]) > 0.9
        assert np.mean(b.anomaly) > 0.9 if label != "normal" else np.mean(b.anomaly) < 0.2
    # push_into on a kind scored in Python: the same windows, copied into the reused batch
    rt.reset()
    x = np.ascontiguousarray(later["inner_race"])
    ref = Runtime(bundle).push(x)
    out = rt.new_batch(16)
    labels: list = []
    for s in range(0, x.shape[0], 4096):
        labels += rt.push_into(x[s:s + 4096], out).label
    assert labels == ref.label
    seen = rt.samples_seen
    with pytest.raises(InputError, match=r"completes \d+ windows but out holds 2.*nothing was accepted"):
        rt.push_into(x, rt.new_batch(2))
    assert rt.samples_seen == seen


def test_a_label_named_unknown_is_refused() -> None:
    spec = sfdsc_spec(FS, ["DE"], window=1024)
    x = bearing_signal(2.0, FS, seed=1)
    with pytest.raises(InputError, match="'unknown' is the runtime's label"):
        train_sfdsc([(x, "normal", "a"), (x, "unknown", "b")], spec)
