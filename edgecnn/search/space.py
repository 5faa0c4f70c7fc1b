"""The search space: which bases (backbone, width, input size) and which training settings to try.

Built from the backbone registry (standard library only). The default space holds the bases whose
ImageNet weights are on this machine (``--weights DIR``, or ``$EDGECNN_WEIGHTS_DIR`` with
``--weights imagenet``), so an offline search never stalls on a download. ``--space FILE`` (JSON
or TOML) narrows or extends it. Its keys, all optional::

    bases = ["mobilenet_v1:0.25:128", "mobilenet_v2:1.0:224"]   # exact list of bases, or filters:
    backbone = ["mobilenet_v1"]          # keep these backbones
    alpha = [0.25, 0.5]                  # keep these widths
    input_size = [128, 160]              # keep these sizes
    unfreeze_top = [0, 20, 40]           # layers of the base unfrozen in phase 2 (0: head only)
    cut_at = [-1, -2, -4]                # where the base ends: -1 the whole base, -2 one block less...
                                         # (indices or layer names as `edgecnn probe-cuts` lists them)
    lr = {low = 1e-4, high = 1e-2}       # head learning rate (log scale); a number fixes it
    fine_tune_lr = {low = 1e-6, high = 1e-4}
    augment = ["none", "light", "strong"]
    balance = ["none", "weights", "oversample"]
    epochs = 8                           # fixed settings (a number each)
    fine_tune_epochs = 3
    batch_size = 32

A list is a categorical choice, ``{low, high}`` a log-uniform range, a scalar a fixed value.
"""

import json
import os
from pathlib import Path
from typing import Optional

from edgecnn.errors import EdgecnnError
from edgecnn.models.registry import BACKBONES, WEIGHTS_DIR_ENV, get_backbone

TUNED = ("unfreeze_top", "cut_at", "lr", "fine_tune_lr", "augment", "balance")
FIXED = ("epochs", "fine_tune_epochs", "batch_size", "patience")
FILTERS = ("backbone", "alpha", "input_size")
KNOWN_KEYS = ("bases",) + FILTERS + TUNED + FIXED

DEFAULT_TUNED = {
    "unfreeze_top": [0, 20, 40],
    # a fixed value, not a one-choice list: trials drawn before the dimension existed (and FixedTrials of
    # their params) lack it; the whole base unless the space lists cuts (`edgecnn probe-cuts` shows the trade-off)
    "cut_at": -1,
    "lr": {"low": 3e-4, "high": 1e-2},
    "fine_tune_lr": {"low": 1e-5, "high": 3e-4},
    "augment": ["none", "light", "strong"],
    "balance": ["none", "weights"],
}
DEFAULT_FIXED = {"epochs": 10, "fine_tune_epochs": 3, "batch_size": 32, "patience": 3}


class SpaceError(EdgecnnError):
    """A --space file or the space it describes is unusable."""


def base_key(backbone: str, alpha, input_size: int) -> str:
    return f"{backbone}:{'-' if alpha is None else format(float(alpha), 'g')}:{int(input_size)}"


def parse_base(key: str) -> dict:
    try:
        name, alpha, size = key.split(":")
        get_backbone(name)
        return {"backbone": name, "alpha": None if alpha in ("-", "None", "") else float(alpha),
                "input_size": int(size)}
    except (ValueError, EdgecnnError) as exc:
        raise SpaceError(f"base '{key}' is not BACKBONE:ALPHA:SIZE with a registry backbone (for example "
                         f"'mobilenet_v1:0.25:128'; '-' for a backbone without width) ({exc}).") from None


def weights_dir(weights: Optional[str]) -> Optional[Path]:
    """The folder holding local weights files: ``--weights DIR`` or $EDGECNN_WEIGHTS_DIR."""
    if weights and str(weights).lower() not in ("imagenet", "none") and Path(weights).is_dir():
        return Path(weights)
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if (weights is None or str(weights).lower() == "imagenet") and env and Path(env).is_dir():
        return Path(env)
    return None


def weights_file(folder, backbone: str, alpha, size: int) -> Optional[Path]:
    """The local weights file of a base in ``folder``, or None.

    Tries the registry's name first, then the spelling with a decimal width
    (``mobilenet_v2_1.0_224_imagenet_notop.h5``, as in ../shared/models/pretrained).
    """
    entry = get_backbone(backbone)
    names = [entry.weights_filename(alpha, size)]
    if alpha is not None:
        names.append(f"{entry.name}_{float(alpha):.1f}_{int(size)}_imagenet_notop.h5")
        names.append(f"{entry.name}_{float(alpha):g}_{int(size)}_imagenet_notop.h5")
    for name in names:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def available_bases(weights: Optional[str] = "imagenet"):
    """Registry bases this machine can build: local weights files when there are any.

    With ``--weights none`` (random init) or no local folder: every registry backbone at its default
    width and size.
    """
    folder = weights_dir(weights)
    out = []
    if folder is not None:
        for b in BACKBONES.values():
            alphas = b.alphas or (None,)
            for alpha in alphas:
                for size in b.sizes:
                    if weights_file(folder, b.name, alpha, size) is not None:
                        out.append(base_key(b.name, alpha, size))
        if not out:
            raise SpaceError(f"no registry weights file in '{folder}' (expected names like "
                             f"'{BACKBONES['mobilenet_v2'].weights_filename(1.0, 224)}'). Put the files there, pass "
                             "--weights none for random weights, or list bases in --space.")
        return out
    return [base_key(b.name, b.alpha, b.input_size) for b in BACKBONES.values()]


def read_space_file(path) -> dict:
    """Read a --space file (JSON, or TOML by its .toml suffix) into a dict, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"--space file '{path}' does not exist. Pass a JSON or TOML file (see `edgecnn search "
                         "--help`).")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python < 3.11
                raise SpaceError(f"--space file '{path}' is TOML, which needs Python 3.11+; write it as JSON."
                                 ) from None
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except SpaceError:
        raise
    except ValueError as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise SpaceError(f"--space file '{path}' is not valid {kind} ({exc}).") from None
    if not isinstance(data, dict):
        raise SpaceError(f"--space file '{path}' must hold an object/table of settings, got "
                         f"{type(data).__name__}.")
    unknown = sorted(set(data) - set(KNOWN_KEYS))
    if unknown:
        raise SpaceError(f"--space file '{path}' has unknown key(s) {', '.join(unknown)}; known keys: "
                         f"{', '.join(KNOWN_KEYS)}.")
    return data


def _check_dim(name, value, where):
    if isinstance(value, list):
        if not value:
            raise SpaceError(f"'{name}' in {where} is an empty list; give at least one value.")
        return
    if isinstance(value, dict):
        if set(value) - {"low", "high", "log"} or "low" not in value or "high" not in value:
            raise SpaceError(f"'{name}' in {where} must be {{low, high}}, got {value}.")
        if not 0 < float(value["low"]) <= float(value["high"]):
            raise SpaceError(f"'{name}' in {where} needs 0 < low <= high, got {value}.")
        return
    if not isinstance(value, (int, float, str)) or isinstance(value, bool):
        raise SpaceError(f"'{name}' in {where} must be a list, {{low, high}} or a value, got {value!r}.")


def build_space(weights: Optional[str] = "imagenet", overrides: Optional[dict] = None,
                where: str = "--space") -> dict:
    """The full space: ``{"bases": [...], "unfreeze_top": [...], "lr": {...}, ..., "epochs": N, ...}``."""
    overrides = dict(overrides or {})
    space = {}
    if "bases" in overrides:
        bases = overrides["bases"]
        if not isinstance(bases, list) or not bases:
            raise SpaceError(f"'bases' in {where} must be a non-empty list like [\"mobilenet_v1:0.25:128\"].")
        bases = [base_key(**parse_base(b)) for b in bases]
    else:
        bases = available_bases(weights)
    for key in FILTERS:
        if key in overrides:
            allowed = overrides[key] if isinstance(overrides[key], list) else [overrides[key]]
            keep = []
            for b in bases:
                value = parse_base(b)[key]
                if key == "alpha":
                    ok = value is None or any(abs(float(a) - value) < 1e-9 for a in allowed)
                else:
                    ok = value in allowed
                if ok:
                    keep.append(b)
            bases = keep
    if not bases:
        raise SpaceError(f"the search space has no base left after the filters in {where} "
                         f"({ {k: overrides[k] for k in FILTERS if k in overrides} }); available: "
                         f"{', '.join(available_bases(weights)) if weights_dir(weights) else 'registry defaults'}.")
    space["bases"] = bases
    for key in TUNED:
        value = overrides.get(key, DEFAULT_TUNED[key])
        _check_dim(key, value, where)
        space[key] = value
    for key in FIXED:
        value = overrides.get(key, DEFAULT_FIXED[key])
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SpaceError(f"'{key}' in {where} must be an integer >= 0, got {value!r}.")
        space[key] = value
    cuts = space["cut_at"] if isinstance(space["cut_at"], list) else [space["cut_at"]]
    if any(str(c).strip().lower() == "auto" for c in cuts):
        raise SpaceError(f"'cut_at' in {where} lists 'auto'; the search compares cuts itself: list the indices "
                         "or layer names to try (`edgecnn probe-cuts` shows each), e.g. [-1, -2, -4].")
    for key in ("augment", "balance"):
        allowed = {"augment": ("none", "light", "strong"), "balance": ("none", "weights", "oversample")}[key]
        values = space[key] if isinstance(space[key], list) else [space[key]]
        bad = [v for v in values if v not in allowed]
        if bad:
            raise SpaceError(f"'{key}' in {where} has {bad}; choose from {', '.join(allowed)}.")
    return space


def suggest(trial, space: dict) -> dict:
    """Draw one configuration from ``space`` with an Optuna trial (or a FixedTrial)."""
    params = {}
    base = trial.suggest_categorical("base", list(space["bases"]))
    params.update(parse_base(base))
    params["base"] = base
    for key in TUNED:
        value = space[key]
        if key in ("fine_tune_lr", "augment") and params.get("unfreeze_top", 0) == 0:
            continue  # conditional: phase 2 settings only matter when something is unfrozen
        if isinstance(value, list):
            params[key] = trial.suggest_categorical(key, value)
        elif isinstance(value, dict):
            params[key] = trial.suggest_float(key, float(value["low"]), float(value["high"]),
                                              log=value.get("log", True))
        else:
            params[key] = value
    params.setdefault("fine_tune_lr", None)
    params.setdefault("augment", "none")
    for key in FIXED:
        params[key] = space[key]
    return params


def fingerprint(space: dict) -> str:
    """A stable text form of the space, stored in the study so a resumed search checks it matches."""
    return json.dumps(space, sort_keys=True)
