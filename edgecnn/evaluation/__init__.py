"""Judging bundles: float vs int8 on held-out images with gates (:mod:`.evaluate`), confidence
calibration (:mod:`.confidence`), comparisons (:mod:`.compare`), robustness to camera-like
corruptions and small perturbations (:mod:`.robustness`, :mod:`.robustness_run`,
:mod:`.adversarial`), metrics and the HTML report (:mod:`.report`).
"""
