"""A trial's configuration as ``edgecnn finetune`` options: one mapping for the trial and its export.

A trial trains with these options at its own (short) epoch counts through finetune's phases
(:mod:`.training`); ``--export`` runs finetune itself with the same options and full epoch counts
(:func:`edgecnn.search.export.finetune_options`).
"""

from edgecnn.search.space import DEFAULT_FIXED, weights_dir, weights_file


def base_weights(config: dict, weights) -> str:
    """What the base loads, as finetune's ``--weights``: its file in a weights folder (``--weights DIR``
    or $EDGECNN_WEIGHTS_DIR; ``imagenet`` when the folder lacks it), else ``weights`` itself."""
    folder = weights_dir(weights)
    if folder is not None:
        path = weights_file(folder, config["backbone"], config["alpha"], config["input_size"])
        return str(path) if path is not None else "imagenet"
    return "none" if weights is None else str(weights)


def trial_options(config: dict, weights) -> dict:
    """finetune options for a configuration drawn by :func:`edgecnn.search.space.suggest`."""
    fixed = {k: config.get(k, v) for k, v in DEFAULT_FIXED.items()}  # configs of older studies may lack some
    opts = {"backbone": config["backbone"], "alpha": config["alpha"], "input_size": config["input_size"],
            "weights": base_weights(config, weights), "lr": config["lr"], "balance": config.get("balance", "none"),
            "augment": config.get("augment") or "none", "batch_size": fixed["batch_size"],
            # finetune trains the head at least one epoch and waits at least one (a space may say 0)
            "epochs": max(1, int(fixed["epochs"])), "patience": max(1, int(fixed["patience"]))}
    cut = config.get("cut_at", -1)
    if cut not in (None, -1, "-1"):  # -1, the whole base, is finetune's default (no --cut-at)
        opts["cut_at"] = str(cut)
    unfreeze = int(config.get("unfreeze_top") or 0)
    if unfreeze:
        opts.update(unfreeze_top=unfreeze, fine_tune_lr=config["fine_tune_lr"],
                    fine_tune_epochs=int(fixed["fine_tune_epochs"]))
    else:
        opts["fine_tune_epochs"] = 0  # head only: the phase 2 settings were not even drawn
    return opts
