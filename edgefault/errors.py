"""Exception types shared by every part of edgefault.

Catch :class:`EdgefaultError` to handle every error edgefault raises on purpose.  The concrete
types also derive from the matching built-in (``ValueError`` / ``ImportError``) so that code
written against the built-ins keeps working.  Messages name the input (file path, variable,
argument), say what was expected and, where useful, what to do.
"""

from __future__ import annotations

__all__ = ["EdgefaultError", "InputError", "RateUnknownError", "BundleError", "MissingDependencyError"]


class EdgefaultError(Exception):
    "Base class for errors edgefault raises on purpose."


class InputError(EdgefaultError, ValueError):
    "Bad user input: a file, array, packet or parameter that is not what was expected."


class RateUnknownError(InputError):
    """A recording whose sample rate nothing tells (not the file, a manifest, an option or its
    name). ``path``, ``format`` and ``model_fs`` (the model rate it would feed, or None) let a
    front end (the CLI) say what to pass in its own words; the message uses the API's."""

    def __init__(self, message: str, *, path: str, format: str, model_fs: float | None) -> None:
        super().__init__(message)
        self.path = path
        self.format = format
        self.model_fs = model_fs


class BundleError(EdgefaultError, ValueError):
    "A model bundle that is missing, corrupt, tampered with or of an unknown version."


class MissingDependencyError(EdgefaultError, ImportError):
    "An optional package needed for this feature is not installed."
