"""Checks of a bundle manifest's values (the ``edgecnn.json`` contract in :mod:`edgecnn.bundle.manifest`).

Standard library only: the board loads every manifest through :func:`check_manifest`. A wrong
value is reported here, by field, instead of surfacing on the board as a traceback, NaN scores
(temperature 0) or a run that classifies nothing (an unknown resize method). Every path the
manifest names must stay inside the bundle and be covered by ``files``, so the board never opens
a file whose sha256 it did not check.
"""

import json
import math
import posixpath
from pathlib import PurePosixPath

from edgecnn.bundle.model import COLOR_ORDERS, DEFAULT_COLOR_ORDER, DEFAULT_RESIZE, MODEL, RESIZE_METHODS
from edgecnn.errors import BundleError

SMOOTHING_METHODS = ("none", "ema", "kofn", "k-of-n", "k_of_n")
SCORE_KINDS = ("probabilities", "logits")
SCHEMA_VERSION = 1


def check_manifest(manifest: dict, path="edgecnn.json") -> dict:
    """Check the types and values the board relies on; raise one BundleError listing every problem.

    A bad value found here would otherwise surface as a traceback, NaN scores (temperature 0) or a run
    that classifies nothing (an unknown resize method). Paths must stay inside the bundle and be
    covered by ``files`` (so every file the board opens has its sha256 checked).
    """
    problems = [] if isinstance(manifest, dict) else ["the manifest is not a JSON object"]
    if not problems:
        problems += _check_top(manifest)
    if not problems:
        problems += _check_model(manifest["model"]) + _check_decision(manifest["decision"], len(manifest["labels"]))
        problems += _check_golden(manifest.get("golden")) + _check_paths(manifest)
    if problems:
        raise BundleError(f"'{path}' is not a valid bundle manifest: " + "; ".join(problems) +
                          ". Fix these values or rebuild the bundle with `edgecnn convert` / `edgecnn bundle wrap`.")
    return manifest


def is_int(value) -> bool:
    """An int that is not a bool (JSON true would pass isinstance(int))."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_top(m: dict) -> list:
    problems = []
    if not is_int(m["schema_version"]):
        problems.append(f"schema_version is {m['schema_version']!r} (a whole number such as {SCHEMA_VERSION})")
    labels = m["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(v, str) and v for v in labels):
        problems.append(f"labels must be a non-empty list of class names, not {_short(labels)}")
    for key in ("model", "decision"):
        if not isinstance(m[key], dict):
            problems.append(f"{key} must be an object, not {_short(m[key])}")
    files = m["files"]
    if not isinstance(files, dict) or not all(isinstance(info, dict) and isinstance(info.get("sha256"), str)
                                              for info in files.values()):
        problems.append('files must map each file name to {"sha256": "...", "bytes": N}')
    return problems


def _check_model(model: dict) -> list:
    problems = []
    for key in ("tflite", "edgetpu"):
        value = model.get(key)
        if value is not None and not (isinstance(value, str) and value):
            problems.append(f"model.{key} is {_short(value)} (a file name inside the bundle)")
    fallbacks = model.get("fallbacks")
    if fallbacks is not None and not (isinstance(fallbacks, list) and all(isinstance(v, str) and v for v in fallbacks)):
        problems.append(f"model.fallbacks is {_short(fallbacks)} (a list of file names inside the bundle)")
    if model.get("resize", DEFAULT_RESIZE) not in RESIZE_METHODS:
        problems.append(f"model.resize is {_short(model['resize'])}; use one of {', '.join(RESIZE_METHODS)}")
    if model.get("color_order", DEFAULT_COLOR_ORDER) not in COLOR_ORDERS:
        problems.append(f"model.color_order is {_short(model['color_order'])}; use RGB or BGR")
    size = model.get("input_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(is_int(v) and v > 0 for v in size)):
        problems.append(f"model.input_size is {_short(size)} ([height, width] in pixels)")
    if "input_mean" in model and not _is_number(model["input_mean"]):
        problems.append(f"model.input_mean is {_short(model['input_mean'])} (a number, 0 for edgecnn models)")
    if "input_std" in model and not (_is_number(model["input_std"]) and model["input_std"] > 0):
        problems.append(f"model.input_std is {_short(model['input_std'])} (a number above 0, 1 for edgecnn models)")
    return problems


def _check_decision(decision: dict, num_labels: int) -> list:
    problems = []
    temperature = decision.get("temperature", 1.0)
    if not (_is_number(temperature) and temperature > 0):
        problems.append(f"decision.temperature is {_short(temperature)} "
                        "(a number above 0; 1 leaves the scores as they are)")
    thresholds = decision.get("thresholds")
    if thresholds is not None:
        if not (isinstance(thresholds, list) and all(_is_number(v) for v in thresholds)):
            problems.append(f"decision.thresholds is {_short(thresholds)} (a list of numbers, one per label)")
        elif len(thresholds) != num_labels:
            problems.append(f"decision.thresholds has {len(thresholds)} entries for {num_labels} labels "
                            "(give one per label, in label order)")
    margin = decision.get("margin", 0.0)
    if not (_is_number(margin) and margin >= 0):
        problems.append(f"decision.margin is {_short(margin)} (a number of at least 0)")
    if decision.get("scores", SCORE_KINDS[0]) not in SCORE_KINDS:
        problems.append(f"decision.scores is {_short(decision['scores'])}; use probabilities or logits")
    action = decision.get("fallback_action")
    if action is not None and not isinstance(action, str):
        problems.append(f"decision.fallback_action is {_short(action)} (a label to report, such as \"unknown\")")
    smoothing = decision.get("smoothing")
    if smoothing is not None and not isinstance(smoothing, dict):
        problems.append(f"decision.smoothing is {_short(smoothing)} (an object such as {{\"method\": \"none\"}})")
    elif smoothing:
        if smoothing.get("method", "none") not in SMOOTHING_METHODS:
            problems.append(f"decision.smoothing.method is {_short(smoothing['method'])}; use none, ema or kofn")
        for key in ("window", "k"):
            if key in smoothing and not (is_int(smoothing[key]) and smoothing[key] >= 1):
                problems.append(f"decision.smoothing.{key} is {_short(smoothing[key])} (a whole number of at least 1)")
        if "alpha" in smoothing and not (_is_number(smoothing["alpha"]) and 0 < smoothing["alpha"] <= 1):
            problems.append(f"decision.smoothing.alpha is {_short(smoothing['alpha'])} (a number in (0, 1])")
        if "hysteresis" in smoothing and not (_is_number(smoothing["hysteresis"]) and smoothing["hysteresis"] >= 0):
            problems.append(f"decision.smoothing.hysteresis is {_short(smoothing['hysteresis'])} "
                            "(a number of at least 0)")
    return problems


def _check_golden(golden) -> list:
    if golden is None:
        return []
    if not isinstance(golden, list) or not all(isinstance(g, dict) for g in golden):
        return [f"golden is {_short(golden)} (a list of samples)"]
    problems = []
    for i, sample in enumerate(golden):
        if not isinstance(sample.get("input"), str) or (sample.get("source") is not None and
                                                         not isinstance(sample["source"], str)):
            problems.append(f"golden[{i}] needs an \"input\" file name (and an optional \"source\" file name)")
        scores = sample.get("scores")
        if not (isinstance(scores, list) and scores and all(_is_number(v) for v in scores)):
            problems.append(f"golden[{i}].scores is {_short(scores)} (a list of numbers)")
        if "atol" in sample and not (_is_number(sample["atol"]) and sample["atol"] >= 0):
            problems.append(f"golden[{i}].atol is {_short(sample['atol'])} (a number of at least 0)")
    return problems


def manifest_paths(manifest: dict) -> list:
    """``(field, relative path)`` of every file the manifest names (models, fallbacks, golden files)."""
    model = manifest["model"]
    named = [("model.tflite", model.get("tflite") or MODEL)]
    if model.get("edgetpu"):
        named.append(("model.edgetpu", model["edgetpu"]))
    named += [(f"model.fallbacks[{i}]", name) for i, name in enumerate(model.get("fallbacks") or [])]
    for i, sample in enumerate(manifest.get("golden") or []):
        named += [(f"golden[{i}].{key}", sample[key]) for key in ("input", "source") if sample.get(key)]
    return named


def _inside(rel) -> bool:
    """True for a plain relative path that stays inside the bundle (no '..', no absolute path)."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    pure = PurePosixPath(rel)
    return not pure.is_absolute() and ".." not in pure.parts and posixpath.normpath(rel) == rel


def _check_paths(manifest: dict) -> list:
    problems = [f"files names '{rel}', which is outside the bundle (use a path relative to the bundle folder)"
                for rel in manifest["files"] if not _inside(rel)]
    for field, rel in manifest_paths(manifest):
        if not _inside(rel):
            problems.append(f"{field} is '{rel}', which is outside the bundle (name a file inside the bundle folder)")
        elif rel not in manifest["files"]:
            problems.append(f"{field} '{rel}' has no sha256 in files (every file the board opens must be hashed)")
    return problems


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
