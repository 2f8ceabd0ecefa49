"""Exception types edgefault raises on purpose. Messages name the input and what was expected."""


class EdgefaultError(Exception):
    """Base class for errors edgefault raises on purpose."""


class InputError(EdgefaultError, ValueError):
    """Bad user input: a file, array, packet or parameter that is not what was expected."""


class BundleError(EdgefaultError, ValueError):
    """A model bundle that is missing, corrupt, tampered with or of an unknown version."""


class MissingDependencyError(EdgefaultError, ImportError):
    """An optional package needed for this feature is not installed."""
