"""Keras models: the classifier graph (:mod:`.classifier`), the backbone registry (:mod:`.registry`),
loading a model file without running code from it (:mod:`.safe_load`) and the layer types a QAT
model needs to be read back (:mod:`.quantized`). Importing the package is light; its modules are not.
"""
