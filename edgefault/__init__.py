"""edgefault: machine-fault detection and diagnosis at the edge.

    >>> import edgefault
    >>> rt = edgefault.Runtime("model.efb")
    >>> for event in rt.push(samples):
    ...     print(event.t, event.score, event.anomaly)
"""
from __future__ import annotations

__version__ = "0.1.0"


def _import_core() -> None:
    """Import the compiled core first, so a missing or unloadable build is reported as such (every
    module below needs it; without this check the first of them fails with a misleading
    "partially initialized module ... circular import")."""
    import importlib
    from pathlib import Path

    try:
        importlib.import_module("edgefault._core")
    except ImportError as e:
        here = Path(__file__).resolve().parent
        missing = isinstance(e, ModuleNotFoundError) and e.name == "edgefault._core"
        what = (f"the C++ core edgefault._core is not built: {here} has no _core extension module for this "
                f"Python" if missing else f"the C++ core edgefault._core in {here} cannot be loaded ({e}): it is not built "
                f"for this Python or platform, or the build is broken")
        raise ImportError(
            f"{what}. Install edgefault with `pip install .` (from the repository root), or build the core "
            f"in place with `tools/devbuild.sh`. Note that running Python from the repository root imports "
            f"the source tree ({here}) instead of the installed package: run from another directory to use "
            f"the installed one.", name="edgefault._core") from (None if missing else e)


_import_core()
del _import_core

from edgefault.device.bundle import Bundle, load_bundle
from edgefault.errors import BundleError, EdgefaultError, InputError, MissingDependencyError
from edgefault.device.runtime import Event, EventBatch, Runtime
from edgefault.device.spec import FeatureSpec

__all__ = [
    "__version__", "Runtime", "Event", "EventBatch", "Bundle", "load_bundle", "FeatureSpec",
    "EdgefaultError", "InputError", "BundleError", "MissingDependencyError",
]
