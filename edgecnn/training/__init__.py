"""The pieces of ``edgecnn finetune`` (orchestrated by :mod:`edgecnn.train`).

``options`` and ``state`` are standard library only (the CLI and the resume checks use them
without TensorFlow); the other modules import TensorFlow through :mod:`edgecnn.tf`.
"""
