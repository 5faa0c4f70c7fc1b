"""Training: ``edgecnn finetune`` (:mod:`.finetune`, which orchestrates the rest) and its pieces.

``options`` and ``state`` are standard library only (the CLI and the resume checks use them
without TensorFlow); the other modules import TensorFlow through :mod:`edgecnn.tf`.
"""
