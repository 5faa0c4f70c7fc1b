"""The one door through which a Keras model file is loaded: its config is read and checked as data
before Keras deserializes anything.

Why not trust ``load_model(..., safe_mode=True)``: tf_keras honours ``safe_mode`` only for zip
``.keras`` files. An HDF5 file goes to the legacy loader, which unmarshals a Lambda layer's Python
bytecode and runs it. And even in a ``.keras`` file, a config entry's ``module`` is passed to
``importlib.import_module`` (the gadget behind CVE-2025-1550). So every model edgecnn loads (a run's
``model.keras``, a ``--base`` feature extractor, an ``--against`` model) goes through
:func:`check_model_file`, which reads ``config.json`` (zip) or the ``model_config`` attribute (HDF5)
as JSON, without deserializing it, and refuses:

- a ``Lambda`` layer and any serialized Python function (``__lambda__``): they carry code;
- a ``module`` outside Keras and tensorflow-model-optimization: it would be imported;
- a TF-op layer (``TFOpLambda``) calling anything but plain math, array and image ops;
- a layer class that is not a built-in Keras layer, nor a tfmot wrapper (custom code);
- a SavedModel folder or any other format: edgecnn reads ``.keras`` and ``.h5`` only.
"""

import json
import zipfile
from pathlib import Path

from edgecnn.errors import ModelError

# Modules that Keras itself would import for an entry; anything else is refused.
TRUSTED_MODULES = ("keras", "tf_keras", "tensorflow_model_optimization", "builtins")
# What a TF-op layer may call (tf.math.add, tf.nn.relu, x[..., :3], tf.reshape...): ops with no
# side effect. tf.io.write_file, tf.py_function and friends are not in the list.
TF_OP_PREFIXES = ("math.", "nn.", "__operators__.", "image.", "linalg.")
TF_OPS = {"reshape", "concat", "stack", "split", "squeeze", "expand_dims", "transpose", "cast",
          "clip_by_value", "identity", "compat.v1.transpose", "compat.v1.squeeze", "zeros_like",
          "ones_like", "broadcast_to", "gather", "where", "maximum", "minimum", "pad", "tile"}
TF_OP_LAYERS = {"TFOpLambda", "SlicingOpLambda"}
# Layers that are not in keras.layers but that Keras or tfmot write for models built here.
EXTRA_LAYERS = {"Functional", "Model", "Sequential", "InputLayer", "QuantizeWrapper",
                "QuantizeWrapperV2", "QuantizeLayer", "PruneLowMagnitude"}


def check_model_file(path, role: str = "model") -> str:
    """Check that ``path`` is a Keras model edgecnn may deserialize; return its format.

    Args:
        path: a ``.keras`` (zip) or ``.h5`` (HDF5) file.
        role: how the user named it, for the message (``"--base"``, ``"model"``...).

    Returns:
        ``"keras"`` or ``"h5"``.

    Raises:
        ModelError: naming the file, what in it is refused and what to do instead.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{role} '{path}' is a folder (a TensorFlow SavedModel?). edgecnn loads Keras "
                         "models saved as .keras or .h5 files only: load it in Keras and "
                         "model.save('model.keras').")
    if not path.is_file():
        raise ModelError(f"{role} '{path}' does not exist.")
    fmt, config = _read_config(path, role)
    _check_entries(config, path, role)
    return fmt


def _read_config(path: Path, role: str):
    """``(format, config dict)`` read as plain JSON from a zip ``.keras`` or an HDF5 file."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                return "keras", json.loads(archive.read("config.json"))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ModelError(f"{role} '{path}' is not a readable .keras file ({exc}). Save the model "
                             "again with model.save('model.keras').") from None
    if magic == b"\x89HDF\r\n\x1a\n":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
        except OSError as exc:
            raise ModelError(f"{role} '{path}' is not a readable HDF5 file ({exc}).") from None
        if raw is None:
            raise ModelError(f"{role} '{path}' holds weights only, no model config. Pass a whole model "
                             "saved with model.save('model.keras'), or weights with --weights.")
        try:
            return "h5", json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except ValueError as exc:
            raise ModelError(f"{role} '{path}' has an unreadable model config ({exc}).") from None
    raise ModelError(f"{role} '{path}' is neither a .keras (zip) nor an .h5 (HDF5) Keras model. Save it "
                     "with model.save('model.keras').")


def _check_entries(node, path: Path, role: str, in_layers: bool = False) -> None:
    """Walk the config; raise on the first entry that would run or import code."""
    if isinstance(node, list):
        for item in node:
            _check_entries(item, path, role, in_layers)
        return
    if not isinstance(node, dict):
        return
    name = node.get("class_name")
    if isinstance(name, str):
        _check_entry(node, name, path, role, in_layers)
    for key, value in node.items():
        _check_entries(value, path, role, in_layers=key == "layers")


def _check_entry(node: dict, name: str, path: Path, role: str, is_layer: bool) -> None:
    refuse = f"{role} '{path}' contains"
    if name == "Lambda":
        raise ModelError(f"{refuse} a Lambda layer ({_layer_name(node)}), which runs arbitrary Python code "
                         "when loaded; edgecnn refuses it. Replace the Lambda with a built-in layer "
                         "and save the model again.")
    if name == "__lambda__":
        raise ModelError(f"{refuse} a serialized Python function ({_layer_name(node)}), which runs code when "
                         "loaded; edgecnn refuses it. Use a built-in activation or layer.")
    module = node.get("module")
    if isinstance(module, str) and not _trusted(module):
        raise ModelError(f"{refuse} an entry '{name}' from module '{module}', which Keras would import; "
                         "edgecnn loads only built-in Keras and tensorflow-model-optimization objects.")
    if name in TF_OP_LAYERS:
        function = str(node.get("config", {}).get("function", ""))
        if not (function.startswith(TF_OP_PREFIXES) or function in TF_OPS):
            raise ModelError(f"{refuse} a TensorFlow op layer calling 'tf.{function}' "
                             f"({_layer_name(node)}); edgecnn allows only math, array and image ops there.")
    elif is_layer and name not in _known_layers():
        raise ModelError(f"{refuse} a layer of class '{name}' ({_layer_name(node)}), which is not a built-in "
                         "Keras layer: custom layers carry code, so edgecnn refuses them. Rebuild the "
                         "model from built-in layers.")


def _trusted(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in TRUSTED_MODULES)


def _layer_name(node: dict) -> str:
    config = node.get("config")
    name = node.get("name") or (config.get("name") if isinstance(config, dict) else None)
    return f"layer '{name}'" if name else "unnamed entry"


def _known_layers() -> set:
    from edgecnn.tf import keras

    return EXTRA_LAYERS | {n for n in dir(keras.layers) if isinstance(getattr(keras.layers, n), type)}


def load_keras_model(path, role: str = "model"):
    """Check ``path`` with :func:`check_model_file`, then load it (compile off, safe_mode on).

    Raises:
        ModelError: the file is refused, or Keras cannot rebuild it (the message says why).
    """
    from edgecnn.tf import keras

    check_model_file(path, role)
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError for bad files
        raise ModelError(f"cannot load {role} '{path}': {exc}") from None
