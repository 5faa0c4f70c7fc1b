"""The fake-quant graph of ``edgecnn qat``: the graph the TFLite converter will produce, with sane ranges.

Four things make tfmot's QAT graph match the int8 model, and each was missing before (issue 13:
val 0.94 -> 0.45 on MobileNet v1, every BatchNorm "left out"; MobileNetV2's int8 export below plain
PTQ although its fake-quant graph matched PTQ):

- **The whole graph is annotated**, BatchNorm included, as ``tfmot.quantization.keras.quantize_model``
  does, so tfmot's Conv/Depthwise + BatchNorm (+ ReLU) transforms match and put one fake-quant
  after the ReLU, where the converter puts the int8 tensor, instead of one between each op. The
  Rescaling layer stays float (the QAT input quantizer follows it): it maps the 256 pixel values
  onto 256 evenly spaced values, which the int8 tensor after it holds exactly, so there is nothing
  to learn there. (Annotating it with a NoOp config puts tfmot's QuantizeLayer right after the
  Input, and tf_keras then cannot load the saved model: the layer is built twice.)
- **Depthwise kernels are quantized per channel**, as the converter quantizes them. tfmot's stock
  quantizer is "per axis" on the kernel's last axis, which for a depthwise kernel (kh, kw, C, 1) has
  one entry: one range for all channels, far coarser than what the int8 model runs.
- **Activation ranges start from the float model's statistics** (min and max on calibration images,
  as post-training quantization measures them) instead of tfmot's [-6, 6]: the moving average
  (decay 0.999) barely leaves that start in the few hundred steps of a small dataset, so raw pixels
  (0-255) and every wide activation were clipped.
- **No int32 bias overflows** (:func:`bias_safe_kernel_ranges`): a channel with near-zero weights
  gets a weight scale so small that its folded bias saturates int32 in the converted model; its
  kernel range is widened as post-training quantization widens it. On the MobileNetV2 1.0/224
  hymenoptera benchmark 3 channels were affected, and fixing them took the QAT int8 test accuracy
  from 0.922 to 0.961 (the float model's).
"""

import numpy as np

from edgecnn.models.quantized import DepthwiseQuantizeConfig, registry_module
from edgecnn.tf import keras, tf, tfmot

# Range variables of tfmot's activation quantizers: (which tensor, which end). "pre" is the input
# of an activation tfmot quantizes before it (a Dense's softmax: the logits).
_RANGE_VARS = {"quantize_layer_min": ("out", "min"), "quantize_layer_max": ("out", "max"),
               "output_min": ("out", "min"), "output_max": ("out", "max"),
               "post_activation_min": ("out", "min"), "post_activation_max": ("out", "max"),
               "pre_activation_min": ("pre", "min"), "pre_activation_max": ("pre", "max")}
RESCALING_REASON = ("kept in float before the input quantizer: 256 pixel values map onto 256 values the "
                    "int8 tensor holds exactly")
_CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def scheme(preserve_sparsity: bool = False):
    """tfmot's 8-bit scheme (prune-preserving for a pruned run) with per-channel depthwise kernels."""
    t = tfmot()
    base = (t.experimental.combine.Default8BitPrunePreserveQuantizeScheme if preserve_sparsity
            else t.quantization.keras.default_8bit.Default8BitQuantizeScheme)

    default = registry_module().Default8BitQuantizeRegistry()

    class Scheme(base):
        def get_quantize_registry(self):
            registry = super().get_quantize_registry()
            if not preserve_sparsity:  # the prune-preserving registry keeps its own kernel quantizers
                registry._layer_quantize_map[keras.layers.DepthwiseConv2D] = DepthwiseQuantizeConfig()
            else:
                # The prune-preserving registry says yes to every layer without trainable weights
                # (Rescaling included), then fails to configure those the 8-bit registry does not
                # know; quantize_apply asks about the layer before an annotated one.
                preserve_supports = registry.supports
                registry.supports = lambda layer: default.supports(layer) and preserve_supports(layer)
            return registry

    return Scheme()


def _inbound(layer):
    """The one layer feeding ``layer``; None when it is called more than once or has several inputs."""
    nodes = layer.inbound_nodes
    if len(nodes) != 1:
        return None
    inbound = nodes[0].inbound_layers
    if isinstance(inbound, (list, tuple)):
        return inbound[0] if len(inbound) == 1 else None
    return inbound


def _variables(layer) -> dict:
    """``layer``'s non-trainable variables by their short name (``kernel_min``, ``output_max``...)."""
    return {v.name.split("/")[-1].split(":")[0]: v for v in layer.non_trainable_weights}


def _folds_into_previous(layer) -> bool:
    """A BatchNormalization right after a linear Conv2D, DepthwiseConv2D or Dense: the pattern tfmot
    folds (and the converter folds into the kernel)."""
    inbound = _inbound(layer)
    return isinstance(inbound, _CONV_TYPES) and getattr(inbound, "activation", None) in (
        None, keras.activations.linear)


def annotate(model):
    """Annotate every layer that can be: ``(annotated model, annotated names, left_out)``.

    ``left_out`` is ``[{"layer", "type", "reason"}]``: layers tfmot cannot quantize (they run in
    float inside the QAT graph and are quantized by the converter from calibration images).
    """
    qk = tfmot().quantization.keras
    registry = registry_module().Default8BitQuantizeRegistry()
    annotated, left_out = [], []

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        if isinstance(layer, keras.layers.Rescaling):
            left_out.append({"layer": layer.name, "type": "Rescaling", "reason": RESCALING_REASON})
            return layer
        if isinstance(layer, keras.layers.BatchNormalization):
            if not _folds_into_previous(layer):
                left_out.append({"layer": layer.name, "type": "BatchNormalization",
                                 "reason": "not after a linear Conv2D/DepthwiseConv2D/Dense, so nothing folds it"})
                return layer
        elif not registry.supports(layer):
            left_out.append({"layer": layer.name, "type": type(layer).__name__,
                             "reason": "not supported by tfmot's default 8-bit quantize registry"})
            return layer
        annotated.append(layer.name)
        return qk.quantize_annotate_layer(layer)

    return keras.models.clone_model(model, clone_function=clone), annotated, left_out


def _pre_activation(layer, tensor):
    """``layer``'s output before its activation, on ``tensor``: a linear twin sharing its weights."""
    config = dict(layer.get_config(), activation="linear", name=layer.name + "_linear")
    twin = type(layer).from_config(config)
    out = twin(tensor)
    twin.set_weights(layer.get_weights())
    return out


def _float_source(qat_layer, model, which: str = "out"):
    """The float model's tensor whose range ``qat_layer``'s activation quantizer should cover."""
    inner = getattr(qat_layer, "layer", None)
    if inner is not None and which == "pre":  # the wrapped layer's output before its activation
        return _pre_activation(model.get_layer(inner.name), model.get_layer(inner.name).input)
    if inner is not None:  # a QuantizeWrapper: its output is the wrapped layer's output
        return model.get_layer(inner.name).output
    inbound = _inbound(qat_layer)  # a QuantizeLayer: it quantizes its input
    inbound = getattr(inbound, "layer", inbound)
    return model.input if isinstance(inbound, keras.layers.InputLayer) else model.get_layer(inbound.name).output


def init_ranges(qat, model, images: np.ndarray, batch_size: int = 16) -> int:
    """Set every activation range of ``qat`` to the min and max of the float ``model``'s matching
    tensor on ``images`` (raw pixels), and every weight range to its kernel's; return how many
    activation ranges were set."""
    from edgecnn.converters.tflite import with_full_range
    from edgecnn.models.classifier import copy_model

    # A copy has one graph: the layers of a model built in this process may also belong to the
    # base they were inlined from, and ``layer.output`` would then name a tensor of that graph.
    model = copy_model(model)
    images = with_full_range(images)  # the uint8 input is pinned to 0-255 the same way
    qat(images[:1], training=True)  # weight quantizers (last value) take their kernels' ranges
    targets = []
    for layer in qat.layers:
        found = {}
        for key, v in _variables(layer).items():
            if key in _RANGE_VARS:
                which, end = _RANGE_VARS[key]
                found.setdefault(which, []).append((v, end))
        for which, variables in found.items():
            targets.append((variables, _float_source(layer, model, which)))
    if not targets:
        return 0
    probe = keras.Model(model.input, [source for _, source in targets])
    lo = np.full(len(targets), np.inf)
    hi = np.full(len(targets), -np.inf)
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start:start + batch_size], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        lo = np.minimum(lo, [float(tf.reduce_min(o)) for o in outputs])
        hi = np.maximum(hi, [float(tf.reduce_max(o)) for o in outputs])
    for (variables, _), low, high in zip(targets, lo, hi):
        # A range must hold 0 (the converter's zero point); ReLU outputs start there anyway.
        low, high = min(low, 0.0), max(high, 0.0)
        for var, end in variables:
            var.assign(np.full(var.shape, low if end == "min" else high, dtype=np.float32))
    return len(targets)


# The converter stores a conv's bias as int32 in units of input scale x weight scale. A channel whose
# weights are all near zero (MobileNetV2 has a few) gets a tiny weight scale, and its folded bias
# then overflows int32 and saturates: the int8 model computes another value than the fake-quant
# graph. Post-training quantization widens such a channel's weight scale (TFLite's bias-scale
# adjustment); the QAT graph's kernel ranges get the same floor, with the same headroom.
_BIAS_LIMIT = 2.0 ** 30
_KERNEL_RANGES = (("kernel_min", "kernel_max"), ("depthwise_kernel_min", "depthwise_kernel_max"))


def _input_scale(layer):
    """Scale of the int8 tensor feeding ``layer``: its inbound layer's output range / 255 (None when
    that range is not in the QAT graph)."""
    inbound = _inbound(layer)
    if inbound is None:
        return None
    ends = {_RANGE_VARS[key][1]: v for key, v in _variables(inbound).items()
            if key in _RANGE_VARS and _RANGE_VARS[key][0] == "out"}
    if len(ends) != 2:
        return None
    return (float(ends["max"].numpy()) - float(ends["min"].numpy())) / 255.0


def _folded(conv, batchnorm):
    """Per output channel: the factor BatchNorm folds into the kernel, and the folded bias."""
    inner = conv.layer
    bias = inner.bias.numpy() if getattr(inner, "use_bias", False) and inner.bias is not None else 0.0
    if batchnorm is None:
        channels = inner.kernel.shape[-1] if hasattr(inner, "kernel") else inner.depthwise_kernel.shape[-2]
        return np.ones(channels), np.broadcast_to(bias, (channels,))
    bn = batchnorm.layer
    factor = (bn.gamma.numpy() if bn.gamma is not None else 1.0) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    beta = bn.beta.numpy() if bn.beta is not None else 0.0
    return factor, beta + (bias - bn.moving_mean.numpy()) * factor


def bias_safe_kernel_ranges(qat) -> int:
    """Widen every per-channel kernel range whose folded bias would overflow int32 in the converted
    model; return how many channels were widened. Training resets kernel ranges to the weights'
    (tfmot's last-value quantizer), so this runs before every evaluation and before conversion."""
    followers = {}
    for layer in qat.layers:
        if isinstance(getattr(layer, "layer", None), keras.layers.BatchNormalization):
            followers[getattr(_inbound(layer), "name", None)] = layer
    widened = 0
    for layer in qat.layers:
        found = _variables(layer)
        names = next(((lo, hi) for lo, hi in _KERNEL_RANGES if lo in found and hi in found), None)
        if names is None or found[names[1]].shape.rank != 1:
            continue
        in_scale = _input_scale(layer)
        if not in_scale:
            continue
        factor, bias = _folded(layer, followers.get(layer.name))
        low, high = found[names[0]].numpy(), found[names[1]].numpy()
        reach = np.maximum(np.abs(low), np.abs(high))
        # int32 bias = bias / (in_scale * reach * |factor| / 127) must stay under the limit
        floor = np.abs(bias) * 127.0 / (in_scale * np.maximum(np.abs(factor), 1e-30) * _BIAS_LIMIT)
        short = reach < floor
        if short.any():
            reach = np.where(short, floor, reach)
            found[names[0]].assign((-reach).astype(np.float32))
            found[names[1]].assign(reach.astype(np.float32))
            widened += int(short.sum())
    return widened
