"""Latency estimates for named boards: MACs per op type counted in a model, times fitted throughputs.

An estimate is ``overhead_ms + sum over op types of ms_per_gmac[type] * GMACs[type]``. The
coefficients of each board live in ``edgecnn/profiles/<name>.json`` with the published figures they
were fitted on, the page each figure comes from, and the fit error (the largest relative error of
the estimate on the models it was fitted on). Every number this module returns is an *estimate*
and is labelled so wherever it is shown (``latency_kind: "estimate"``).

MACs are counted from a ``.tflite`` (:func:`count_tflite`, with the LiteRT/TFLite interpreter's op
details: no TensorFlow) or from a Keras model before it is converted (:func:`count_keras`, used to
reject a trial before training when the estimate already busts the budget). Both give the same
op-type breakdown for edgecnn classifiers.

Op types counted:

* ``conv``: CONV_2D, ``N*Ho*Wo*Cout * kh*kw*Cin/groups`` (pointwise 1x1 convolutions included);
* ``depthwise``: DEPTHWISE_CONV_2D, ``N*Ho*Wo*Cout * kh*kw``;
* ``fully_connected``: FULLY_CONNECTED, ``out elements * in features``;
* ``elementwise``: output elements of ADD, MUL, pooling, activations... (counted, not MACs);
* custom ops (``edgetpu-custom-op``) cannot be counted: they are listed in ``uncounted``.

The profiles are fitted by :mod:`edgecnn.search.profile_fit` (``python -m edgecnn.search.profile_fit fit``).
"""

import json
from pathlib import Path

from edgecnn.errors import EdgecnnError

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"
OP_TYPES = ("conv", "depthwise", "fully_connected")
_ELEMENTWISE = {"ADD", "MUL", "SUB", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "RELU", "RELU6", "HARD_SWISH",
                "LOGISTIC", "SOFTMAX", "QUANTIZE", "DEQUANTIZE", "PAD", "CONCATENATION", "RESHAPE", "TANH"}


class ProfileError(EdgecnnError):
    """A latency profile is unknown or malformed."""


def _prod(shape) -> int:
    out = 1
    for v in shape:
        out *= int(v)
    return out


def empty_counts() -> dict:
    return {"conv": 0, "depthwise": 0, "fully_connected": 0, "elementwise": 0, "ops": {}, "uncounted": []}


def _interpreter(model_path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the board with tflite-runtime
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise EdgecnnError("counting MACs in a .tflite needs a TFLite interpreter: pip install "
                               "'edgecnn[device]' (ai-edge-litert) or 'edgecnn[device-tflite]'.") from None
    try:
        return Interpreter(model_path=str(model_path))
    except Exception as exc:  # custom ops without their delegate still load their op list
        raise EdgecnnError(f"cannot read '{model_path}' as a TFLite model ({exc}).") from None


def count_tflite(model_path) -> dict:
    """Count MACs per op type in a .tflite file (static shapes as stored in the file).

    Returns:
        ``{"conv": MACs, "depthwise": MACs, "fully_connected": MACs, "elementwise": elements,
        "ops": {op name: count}, "uncounted": [op names with no MAC rule, e.g. custom ops]}``.
    """
    path = Path(model_path)
    if not path.is_file():
        raise EdgecnnError(f"model '{path}' does not exist. Pass the path of a .tflite file.")
    interp = _interpreter(path)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    counts = empty_counts()
    for op in interp._get_ops_details():
        name = op["op_name"]
        counts["ops"][name] = counts["ops"].get(name, 0) + 1
        ins = [tensors[i]["shape"] for i in op["inputs"] if i >= 0 and i in tensors]
        outs = [tensors[i]["shape"] for i in op["outputs"] if i in tensors]
        if name == "CONV_2D" and len(ins) >= 2 and outs:
            filt = ins[1]  # [Cout, kh, kw, Cin/groups]
            counts["conv"] += _prod(outs[0]) * int(filt[1]) * int(filt[2]) * int(filt[3])
        elif name == "DEPTHWISE_CONV_2D" and len(ins) >= 2 and outs:
            filt = ins[1]  # [1, kh, kw, Cout]
            counts["depthwise"] += _prod(outs[0]) * int(filt[1]) * int(filt[2])
        elif name == "FULLY_CONNECTED" and len(ins) >= 2 and outs:
            counts["fully_connected"] += _prod(outs[0]) * int(ins[1][-1])
        elif name in _ELEMENTWISE or (outs and not name.startswith("CUSTOM") and "custom" not in name.lower()):
            counts["elementwise"] += _prod(outs[0]) if outs else 0
        else:
            counts["uncounted"].append(name)
    return counts


def count_keras(model) -> dict:
    """Count MACs per op type in a Keras model (Conv2D, DepthwiseConv2D, Dense), batch of one."""
    counts = empty_counts()
    for layer in model.layers:
        kind = type(layer).__name__
        counts["ops"][kind] = counts["ops"].get(kind, 0) + 1
        try:
            out = layer.output_shape
        except (AttributeError, RuntimeError):
            continue
        if isinstance(out, list):
            out = out[0]
        out_elems = _prod(d for d in out[1:] if d is not None)
        if kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            counts["depthwise"] += out_elems * kh * kw
        elif kind in ("Conv2D",):
            kh, kw = layer.kernel_size
            cin = int(layer.input_shape[-1])
            groups = int(getattr(layer, "groups", 1) or 1)
            counts["conv"] += out_elems * kh * kw * cin // groups
        elif kind == "Dense":
            counts["fully_connected"] += out_elems * int(layer.input_shape[-1])
        elif kind not in ("InputLayer", "Dropout"):
            counts["elementwise"] += out_elems
    return counts


def total_macs(counts: dict) -> int:
    return int(sum(counts[t] for t in OP_TYPES))


# ---------------------------------------------------------------- profiles

def profile_names():
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def load_profile(name_or_path) -> dict:
    """Load a profile by name (``rpi4``, ``rpi5``, ``coral-usb``, ``coral-devboard``) or path."""
    path = Path(str(name_or_path))
    if not path.suffix == ".json":
        path = PROFILES_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ProfileError(f"unknown latency profile '{name_or_path}'. Choose one of: "
                           f"{', '.join(profile_names())}, 'host', or ssh://user@board[:port].")
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ProfileError(f"latency profile '{path}' is not valid JSON ({exc}).") from None
    for key in ("name", "overhead_ms", "ms_per_gmac", "fit_error"):
        if key not in profile:
            raise ProfileError(f"latency profile '{path}' lacks '{key}'. Regenerate it with "
                               "`python -m edgecnn.search.profile_fit fit`.")
    return profile


def estimate_ms(counts: dict, profile: dict) -> float:
    """The estimated latency in ms of a model with these op counts on the profile's board."""
    coef = profile["ms_per_gmac"]
    ms = float(profile["overhead_ms"])
    for t in OP_TYPES:
        ms += float(coef.get(t, coef.get("conv", 0.0))) * counts.get(t, 0) / 1e9
    return ms


def estimate(model_path_or_counts, profile) -> dict:
    """Estimate a model's latency on a named board; the result says it is an estimate.

    Returns:
        ``{"latency_ms", "latency_kind": "estimate", "profile", "fit_error", "macs": {...}}``.
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    counts = model_path_or_counts if isinstance(model_path_or_counts, dict) else count_tflite(model_path_or_counts)
    return {
        "latency_ms": estimate_ms(counts, profile),
        "latency_kind": "estimate",
        "profile": profile["name"],
        "fit_error": profile["fit_error"],
        "macs": {t: int(counts.get(t, 0)) for t in OP_TYPES},
    }
