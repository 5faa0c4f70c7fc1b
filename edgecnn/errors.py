"""The one exception family of edgecnn (DESIGN rule 8).

Every message names the value at fault and the fix. The CLI prints ``Error: <message>`` and
exits 2 for any of these, with no traceback.
"""


class EdgecnnError(Exception):
    """Base class of every error edgecnn raises on purpose."""


class DataError(EdgecnnError):
    """A dataset folder, an image file or a split is unusable."""


class ModelError(EdgecnnError):
    """A model, a backbone or weights cannot be built or loaded."""


class RunError(EdgecnnError):
    """A RUN_DIR is missing, incomplete, or conflicts with the arguments given."""


class ConversionError(EdgecnnError):
    """A TFLite conversion or its verification failed."""


class BundleError(EdgecnnError):
    """A bundle is missing files, fails its sha256 check or its self-test."""


class DeviceError(EdgecnnError):
    """The board runtime cannot load an interpreter, a delegate or a frame source."""


class MissingDependencyError(EdgecnnError):
    """An optional dependency (an extra) is not installed."""


def require(module: str, extra: str):
    """Import ``module`` or raise a MissingDependencyError naming the extra to install.

    Args:
        module: dotted module name, e.g. ``"tensorflow"``.
        extra: the edgecnn extra that provides it, e.g. ``"train-cpu"``.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this command needs '{module}', which is not installed ({exc}). "
            f"Install it with: pip install 'edgecnn[{extra}]'"
        ) from None
