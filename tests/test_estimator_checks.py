"""scikit-learn's own estimator checks on the SFDSC estimators."""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn", minversion="1.6")  # validate_data

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from edgefault.train.fisher_dl import FisherDictionaryLearning  # noqa: E402
from edgefault.train.sfdsc import SFDSCClassifier  # noqa: E402

# Checks that cannot apply, by name, with the reason.
_TRAIN_SCORE = ("SFDSC centres each row and scales it to unit norm (a signal window's shape is what the "
                "dictionary codes; its level goes in through the mean/std columns): on the check's 2-feature "
                "3-blob data that keeps only sign(x1 - x2) of the shape, and training accuracy is 0.79, under "
                "the check's 0.83 (binary blobs: 0.92)")
EXPECTED_FAILED_CLASSIFIER: dict[str, str] = {
    "check_classifiers_train": _TRAIN_SCORE,
    "check_classifiers_train(readonly_memmap=True)": _TRAIN_SCORE,
    "check_classifiers_train(readonly_memmap=True,X_dtype=float32)": _TRAIN_SCORE,
}


def _small(est):  # type: ignore[no-untyped-def]
    return est.set_params(n_atoms_per_class=3, max_iter=3, coding_iter=30)


@parametrize_with_checks(
    [_small(FisherDictionaryLearning(random_state=0)), _small(SFDSCClassifier(random_state=0))],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CLASSIFIER if isinstance(est, SFDSCClassifier) else {},
)
def test_sklearn_compatible(estimator, check):  # type: ignore[no-untyped-def]
    check(estimator)
