"""Compression and conversion of a run: pruning (:mod:`.prune`, :mod:`.obs`, :mod:`.allocation`),
quantization-aware training (:mod:`.qat`, :mod:`.qat_graph`), fine-tuning after either
(:mod:`.retrain`), and `edgecnn convert` (:mod:`.convert`: a run to a bundle, with the remedy ladder).
"""
