"""``edgecnn search ... --export best``: fine-tune the chosen configuration in full, write its bundle.

The export is exactly ``edgecnn finetune`` with the trial's settings into ``SEARCH_DIR/export/run``
followed by ``edgecnn convert RUN --int8`` into ``SEARCH_DIR/export/bundle``: the same training
code, the same converter and the same manifest as a user who types the two commands gets.
"""

from pathlib import Path
from typing import Callable, Optional

from edgecnn.errors import EdgecnnError

FULL_EPOCHS = {"epochs": 20, "fine_tune_epochs": 10}


def finetune_options(config: dict, weights, overrides: Optional[dict] = None) -> dict:
    """The trial's configuration as ``edgecnn.train.finetune.finetune`` options (full epoch counts)."""
    from edgecnn.search.space import weights_dir

    folder = weights_dir(weights)
    opts = {"backbone": config["backbone"], "alpha": config["alpha"], "input_size": config["input_size"],
            "lr": config["lr"], "balance": config.get("balance", "none"),
            "augment": config.get("augment", "none") or "none", "batch_size": config.get("batch_size", 32)}
    if folder is not None:
        from edgecnn.search.space import weights_file

        path = weights_file(folder, config["backbone"], config["alpha"], config["input_size"])
        opts["weights"] = str(path) if path is not None else "imagenet"
    else:
        opts["weights"] = "none" if weights is None else str(weights)
    unfreeze = int(config.get("unfreeze_top") or 0)
    opts["epochs"] = max(int(config.get("epochs", 10)), FULL_EPOCHS["epochs"])
    if unfreeze:
        opts["unfreeze_top"] = unfreeze
        opts["fine_tune_lr"] = config["fine_tune_lr"]
        opts["fine_tune_epochs"] = max(int(config.get("fine_tune_epochs", 3)), FULL_EPOCHS["fine_tune_epochs"])
    else:
        opts["fine_tune_epochs"] = 0
    opts.update(overrides or {})
    return opts


def export_trial(data_dir, search_dir, record: dict, weights="imagenet", options: Optional[dict] = None,
                 progress: Optional[Callable[[str], None]] = None) -> dict:
    """Fine-tune ``record``'s configuration in full and write ``SEARCH_DIR/export/bundle``."""
    from edgecnn.compress.convert import convert_run
    from edgecnn.train.finetune import finetune

    say = progress or (lambda msg: None)
    config = record.get("config")
    if not config:
        raise EdgecnnError(f"trial {record.get('number')} has no recorded configuration; it was made by another "
                           "version of edgecnn search. Export another trial.")
    out = Path(search_dir) / "export"
    run_dir, bundle_dir = out / "run", out / "bundle"
    opts = finetune_options(config, weights, options)
    run = finetune(data_dir, run_dir, **dict(opts, overwrite=True, quiet=True))
    say(f"fine-tuned into {run_dir}")
    bundle = convert_run(run_dir, bundle_dir, mode="int8")
    say(f"wrote {bundle_dir} (int8, val accuracy at conversion in its manifest)")
    return {"trial": record["number"], "options": opts, "run_dir": str(run_dir), "bundle": str(bundle_dir),
            "finetune": run, "convert": bundle}
