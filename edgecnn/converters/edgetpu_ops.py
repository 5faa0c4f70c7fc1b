"""The operations the Edge TPU supports, as data (TFLite builtin name -> known limitation).

Source: Coral, "TensorFlow models on the Edge TPU", section "Supported operations"
(https://coral.ai/docs/edgetpu/models-intro/#supported-operations), transcribed for Edge TPU
runtime 14 / compiler 16 with the table's op names mapped to TFLite builtin op names. The table is
what the compiler can map at best: the compiler's log has the final say (sizes, precision and
"unspecified limitation" can still keep a listed op on the CPU). Update this dict when Coral's
table changes; nothing else encodes it.
"""

SOURCE = "https://coral.ai/docs/edgetpu/models-intro/#supported-operations"

SUPPORTED = {
    "ADD": "",
    "AVERAGE_POOL_2D": "No fused activation function.",
    "CONCATENATION": "No fused activation function. A compile-time constant input must be all zeroes and the "
                     "op must then have exactly 2 inputs.",
    "CONV_2D": "",
    "DEPTHWISE_CONV_2D": "Dilated convolution kernels are not supported.",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "Only the default format of fully-connected weights; the output tensor is one-dimensional.",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "Unidirectional LSTM only.",
    "MAXIMUM": "",
    "MAX_POOL_2D": "No fused activation function.",
    "MEAN": "No reduction in the batch dimension; reduction along x and/or y only.",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "No packing in the batch dimension.",
    "PAD": "No padding in the batch dimension; padding along x and/or y only.",
    "PRELU": "Alpha must be constant; only one alpha per channel.",
    "QUANTIZE": "",
    "REDUCE_MAX": "Cannot operate on the batch dimension.",
    "REDUCE_MIN": "Cannot operate on the batch dimension.",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "Certain reshapes might not be mapped for large tensor sizes.",
    "RESIZE_BILINEAR": "3-dimensional input/output; may stay on the CPU depending on sizes, to avoid loss of "
                       "precision.",
    "RESIZE_NEAREST_NEIGHBOR": "3-dimensional input/output; may stay on the CPU depending on sizes, to avoid loss "
                               "of precision.",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": "1-D input tensor with at most 16,000 elements.",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "No splitting in the batch dimension.",
    "SQUARED_DIFFERENCE": "",
    "SQUEEZE": "",
    "STRIDED_SLICE": "",
    "SUB": "",
    "SUM": "Cannot operate on the batch dimension.",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}

# The Edge TPU's on-chip memory for caching parameters (8 MiB, some of it used by the executable).
ON_CHIP_PARAMETER_BYTES = 8 * 1024 * 1024
