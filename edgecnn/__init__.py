"""edgecnn: image classifiers from a folder of photos to a Raspberry Pi or Coral board.

Importing this package is light on purpose (DESIGN rule 2): it pulls in no TensorFlow, no
OpenCV and no interpreter. Heavy modules are imported by the functions that need them.
"""

__version__ = "0.1.0"

from edgecnn.errors import EdgecnnError  # noqa: E402  (light: standard library only)

__all__ = ["__version__", "EdgecnnError"]
