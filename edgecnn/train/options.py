"""Defaults, checks and the recorded form of finetune's arguments (standard library only).

The recorded arguments are what a RUN_DIR remembers: a re-run with the same ones resumes, a re-run
with different ones is refused, naming each argument that differs.
"""

from pathlib import Path

from edgecnn.bundle.model import DEFAULT_RESIZE, RESIZE_METHODS
from edgecnn.errors import RunError

AUGMENT = ("none", "light", "strong")
BALANCE = ("none", "weights", "oversample")
LOSSES = ("crossentropy", "focal")
SELECT_BY = ("accuracy", "balanced_accuracy", "macro_f1")
STRATEGIES = ("auto", "mirrored", "multiworker")
RESIZE = RESIZE_METHODS

# Every option of finetune that changes the trained model, with its default.
DEFAULTS = {
    "backbone": "mobilenet_v2",
    "alpha": None,
    "input_size": None,
    "weights": "imagenet",
    "base": None,
    "cut_at": None,
    "cut_max_drop": 1.0,
    "epochs": 10,
    "fine_tune_epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "fine_tune_lr": 1e-5,
    "val_fraction": 0.2,
    "test_fraction": 0.1,
    "patience": 3,
    "dropout": 0.2,
    "resize": DEFAULT_RESIZE,
    "unfreeze_top": None,
    "unfreeze_from": None,
    "augment": "light",
    "flip": True,
    "rotate": True,
    "zoom": True,
    "color": True,
    "balance": "none",
    "loss": "crossentropy",
    "select_by": "accuracy",
    "seed": 0,
    "mixed_precision": False,
    "strategy": "auto",
}


def _choice(name, value, choices):
    if value not in choices:
        raise RunError(f"--{name.replace('_', '-')} '{value}' is not one of: {', '.join(choices)}.")


def _at_least(name, value, low, kind=int):
    if not isinstance(value, kind) or isinstance(value, bool) or value < low:
        raise RunError(f"--{name.replace('_', '-')} must be {'an integer' if kind is int else 'a number'} "
                       f">= {low}, got {value!r}.")


def resolve_args(data_dir, options: dict) -> dict:
    """Merge ``options`` over DEFAULTS, check them, and return the recorded argument dict.

    Paths are made absolute so that the same run from another folder compares equal.
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"finetune() got unknown option(s): {', '.join(unknown)}")
    args = {"data_dir": str(Path(data_dir).resolve())}
    args.update(DEFAULTS)
    args.update(options)
    for name, choices in (("augment", AUGMENT), ("balance", BALANCE), ("loss", LOSSES),
                          ("select_by", SELECT_BY), ("strategy", STRATEGIES), ("resize", RESIZE)):
        _choice(name, args[name], choices)
    _at_least("epochs", args["epochs"], 1)
    _at_least("fine_tune_epochs", args["fine_tune_epochs"], 0)
    _at_least("batch_size", args["batch_size"], 1)
    _at_least("patience", args["patience"], 1)
    _at_least("seed", args["seed"], 0)
    for name in ("lr", "fine_tune_lr"):
        if not args[name] > 0:
            raise RunError(f"--{name.replace('_', '-')} must be > 0, got {args[name]!r}.")
    if not 0 <= args["dropout"] < 1:
        raise RunError(f"--dropout must be in [0, 1), got {args['dropout']!r}.")
    if args["unfreeze_top"] is not None and args["unfreeze_from"] is not None:
        raise RunError("pass either --unfreeze-top or --unfreeze-from, not both.")
    if args["unfreeze_top"] is not None:
        _at_least("unfreeze_top", args["unfreeze_top"], 1)
    if args["cut_at"] is not None:
        args["cut_at"] = str(args["cut_at"]).strip()  # a layer name, an index or auto; checked on the base
    if not isinstance(args["cut_max_drop"], (int, float)) or not 0 <= args["cut_max_drop"] <= 100:
        raise RunError(f"--cut-max-drop must be a number of percentage points from 0 to 100, got "
                       f"{args['cut_max_drop']!r}.")
    for name in ("alpha", "lr", "fine_tune_lr", "dropout", "val_fraction", "test_fraction", "cut_max_drop"):
        if args[name] is not None:
            args[name] = float(args[name])
    if args["base"] is not None:
        args["base"] = str(Path(args["base"]).resolve())
    weights = args["weights"]
    if weights is None or str(weights).lower() in ("none", "imagenet"):
        args["weights"] = "none" if weights is None else str(weights).lower()
    else:
        args["weights"] = str(Path(weights).resolve())
    _files_exist(args)
    return args


def _files_exist(args: dict):
    # A mistyped path fails now, in a second, rather than after every image is scanned and audited.
    fixes = {"base": "a .keras or .h5 feature extractor", "weights": "imagenet, none, or a no-top .h5 weights file"}
    for name, fix in fixes.items():
        value = args[name]
        if value not in (None, "none", "imagenet") and not Path(value).is_file():
            raise RunError(f"--{name} '{value}' does not exist or is not a file. Pass {fix}.")


def option_name(key: str) -> str:
    """How a recorded argument is spelled on the command line."""
    return "DATA_DIR" if key == "data_dir" else "--" + key.replace("_", "-")


def _shown(key: str, args: dict) -> str:
    """How a recorded value reads in a message: None (left to the backbone) shows what it stands for."""
    from edgecnn.models.registry import BACKBONES

    value = args.get(key)
    if value is not None:
        return repr(value)
    entry = None if args.get("base") else BACKBONES.get(args.get("backbone"))
    default = getattr(entry, key, None) if key in ("alpha", "input_size", "unfreeze_from") else None
    if default is not None:
        return f"{default!r} ({entry.name}'s default)"
    if args.get("base") and key in ("alpha", "input_size"):
        return "the --base model's"
    return "none"


def diff_args(old: dict, new: dict) -> list:
    """``["--epochs (was 5, now 3)", ...]`` for every recorded argument that differs."""
    keys = list(new) + [k for k in old if k not in new]
    return [f"{option_name(k)} (was {_shown(k, old)}, now {_shown(k, new)})"
            for k in keys if old.get(k) != new.get(k)]
