"""``edgecnn search ... --export best``: fine-tune the chosen configuration in full, write its bundle.

The export is exactly ``edgecnn finetune`` with the trial's settings into ``SEARCH_DIR/export/run``
followed by ``edgecnn convert RUN --int8`` into ``SEARCH_DIR/export/bundle``: the same training
code, the same converter and the same manifest as a user who types the two commands gets.
"""

from pathlib import Path
from typing import Callable, Optional

from edgecnn.errors import EdgecnnError
from edgecnn.search.trial_options import trial_options

FULL_EPOCHS = {"epochs": 20, "fine_tune_epochs": 10}


def finetune_options(config: dict, weights, overrides: Optional[dict] = None) -> dict:
    """The trial's finetune options (the ones it trained with) at full epoch counts, then ``overrides``."""
    opts = trial_options(config, weights)
    opts["epochs"] = max(opts["epochs"], FULL_EPOCHS["epochs"])
    if "unfreeze_top" in opts:
        opts["fine_tune_epochs"] = max(opts["fine_tune_epochs"], FULL_EPOCHS["fine_tune_epochs"])
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
