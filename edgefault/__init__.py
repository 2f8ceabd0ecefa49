"""edgefault: machine-fault detection and diagnosis at the edge.

    >>> import edgefault
    >>> rt = edgefault.Runtime("model.efb")
    >>> for event in rt.push(samples):
    ...     print(event.t, event.score, event.anomaly)
"""
from __future__ import annotations

__version__ = "0.1.0"

from .bundle import Bundle, load_bundle
from .errors import BundleError, EdgefaultError, InputError, MissingDependencyError
from .runtime import Event, Runtime
from .spec import FeatureSpec

__all__ = [
    "__version__", "Runtime", "Event", "Bundle", "load_bundle", "FeatureSpec",
    "EdgefaultError", "InputError", "BundleError", "MissingDependencyError",
]
