"""edgecnn.converters: TFLite conversion, calibration sets, Edge TPU compatibility and compiler."""
