"""Data folders: walking and scanning them (:mod:`.folders`, :mod:`.scan`), splitting and loading a
dataset (:mod:`.dataset`) and generating the demo's (:mod:`.synth`).
"""
