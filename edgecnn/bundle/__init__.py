"""The bundle: the folder the board runs (manifest.json, model.tflite, labels, golden samples).

:mod:`.manifest` writes, reads and verifies it; :mod:`.schema` validates a manifest on read;
:mod:`.model` is the manifest's ``model`` section as one type with each default written once;
:mod:`.tflite_metadata` reads the standard TFLite metadata (labels, normalization) inside a .tflite.
Standard library only: the board imports this package.
"""
