"""The layer types of a QAT model saved by ``edgecnn qat``, and the scope that reads one back.

A QAT model holds tfmot quantize wrappers and this project's per-channel depthwise kernel quantizer
(:class:`DepthwiseKernelQuantizer`, why: :mod:`edgecnn.compress.qat_graph`); Keras can only
deserialize them inside :func:`quantize_scope`. They live here, beside the other model types,
because every later step loads runs (:func:`edgecnn.run.load_run_model`), not only QAT.
"""

from edgecnn.tf import keras, tf, tfmot


def registry_module():
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    return default_8bit_quantize_registry


class DepthwiseKernelQuantizer(tfmot().quantization.keras.quantizers.LastValueQuantizer):
    """Per-channel symmetric int8 quantizer of a DepthwiseConv2D kernel (kh, kw, C, 1): one range per C."""

    def __init__(self):
        super().__init__(num_bits=8, per_axis=True, symmetric=True, narrow_range=True)

    def build(self, tensor_shape, name, layer):
        shape = (int(tensor_shape[-2]),)
        return {"min_var": layer.add_weight(name + "_min", shape=shape, initializer=keras.initializers.Constant(-6.0),
                                            trainable=False),
                "max_var": layer.add_weight(name + "_max", shape=shape, initializer=keras.initializers.Constant(6.0),
                                            trainable=False)}

    def __call__(self, inputs, training, weights, **kwargs):
        channels_last = tf.transpose(inputs, (0, 1, 3, 2))
        return tf.transpose(super().__call__(channels_last, training, weights, **kwargs), (0, 1, 3, 2))

    def get_config(self):
        return {}


class DepthwiseQuantizeConfig(registry_module().Default8BitConvQuantizeConfig):
    """tfmot's Conv quantize config with :class:`DepthwiseKernelQuantizer` for the kernel."""

    def __init__(self, weight_attrs=("depthwise_kernel",), activation_attrs=("activation",), quantize_output=False):
        super().__init__(list(weight_attrs), list(activation_attrs), quantize_output)
        self.weight_quantizer = DepthwiseKernelQuantizer()


def custom_objects() -> dict:
    """What ``quantize_scope`` needs besides tfmot's own objects to load a QAT model saved here."""
    return {"DepthwiseKernelQuantizer": DepthwiseKernelQuantizer, "DepthwiseQuantizeConfig": DepthwiseQuantizeConfig}




def quantize_scope():
    """The scope inside which Keras can load a QAT model saved here."""
    return tfmot().quantization.keras.quantize_scope(custom_objects())
