"""edgecnn.devices: the board side. Standard library, numpy, OpenCV and a TFLite interpreter only.

Nothing here imports TensorFlow, ever (DESIGN rule 1); a test checks it in a subprocess.
"""
