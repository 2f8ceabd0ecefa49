"""edgefault: machine-fault detection and diagnosis at the edge.

    >>> import edgefault
    >>> rt = edgefault.Runtime("model.efb")
    >>> for event in rt.push(samples):
    ...     print(event.t, event.score, event.anomaly)
"""
from __future__ import annotations

__version__ = "0.1.0"

from edgefault.device.bundle import Bundle, load_bundle
from edgefault.errors import BundleError, EdgefaultError, InputError, MissingDependencyError
from edgefault.device.runtime import Event, Runtime
from edgefault.device.spec import FeatureSpec

__all__ = [
    "__version__", "Runtime", "Event", "Bundle", "load_bundle", "FeatureSpec",
    "EdgefaultError", "InputError", "BundleError", "MissingDependencyError",
]
