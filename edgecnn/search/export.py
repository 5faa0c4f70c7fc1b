"""``edgecnn search ... --export best``: fine-tune the chosen configuration in full, write its bundle.

With ``edgecnn.train.finetune`` and the converters' bundle writer installed, the export is exactly
``edgecnn finetune`` with the trial's settings into ``SEARCH_DIR/export/run`` followed by
``edgecnn convert RUN --int8`` into ``SEARCH_DIR/export/bundle``. Without them (a partial
install), the search's own trainer trains the configuration with the full epoch counts and the
bundle is written with :mod:`edgecnn.bundle`.
"""

import inspect
from pathlib import Path
from typing import Callable, Optional

from edgecnn.errors import EdgecnnError

FULL_EPOCHS = {"epochs": 20, "fine_tune_epochs": 10}


def finetune_options(config: dict, weights, overrides: Optional[dict] = None) -> dict:
    """The trial's configuration as ``edgecnn.train.finetune`` options (full epoch counts)."""
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


def _library():
    """``(finetune, convert)`` library functions when installed, else ``(None, None)``."""
    try:
        from edgecnn.train import finetune
    except ImportError:
        return None, None
    convert = None
    for module, name in (("edgecnn.converters.bundle_writer", "convert_run"),):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:
            continue
        if callable(getattr(mod, name, None)):
            convert = getattr(mod, name)
            break
    return finetune, convert


def _call(fn, *args, **kwargs):
    """Call ``fn`` with the keyword arguments it accepts."""
    params = inspect.signature(fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


def export_trial(data_dir, search_dir, record: dict, weights="imagenet", options: Optional[dict] = None,
                 progress: Optional[Callable[[str], None]] = None) -> dict:
    """Fine-tune ``record``'s configuration in full and write ``SEARCH_DIR/export/bundle``."""
    say = progress or (lambda msg: None)
    config = record.get("config")
    if not config:
        raise EdgecnnError(f"trial {record.get('number')} has no recorded configuration; it was made by another "
                           "version of edgecnn search. Export another trial.")
    out = Path(search_dir) / "export"
    run_dir, bundle_dir = out / "run", out / "bundle"
    opts = finetune_options(config, weights, options)
    finetune, convert = _library()
    if finetune is not None and convert is not None:
        run = _call(finetune, data_dir, run_dir, **dict(opts, overwrite=True, quiet=True))
        say(f"fine-tuned into {run_dir}")
        bundle = _call(convert, run_dir, bundle_dir, mode="int8")
        return {"trial": record["number"], "options": opts, "run_dir": str(run_dir), "bundle": str(bundle_dir),
                "finetune": run if isinstance(run, dict) else None,
                "convert": bundle if isinstance(bundle, dict) else None, "via": "edgecnn.train.finetune"}
    return _export_fallback(data_dir, search_dir, record, config, opts, weights, bundle_dir, say)


def _export_fallback(data_dir, search_dir, record, config, opts, weights, bundle_dir, say) -> dict:
    from edgecnn.bundle import make_manifest, write_bundle
    from edgecnn.search import trainer
    from edgecnn.search.objective import SearchData

    data = SearchData(data_dir, Path(search_dir) / "cache")
    params = dict(config, epochs=opts["epochs"], fine_tune_epochs=opts["fine_tune_epochs"])
    seed = 0
    model, model_config = trainer.build(params, data.num_classes, weights, seed)
    tag = trainer.weights_for(params, weights)
    feats, _ = trainer.base_features(model, model_config, data, tag if tag != "none" else f"none-seed{seed}")
    acc = trainer.train_head(model, feats, data, params, seed)
    if params.get("unfreeze_top"):
        acc = trainer.fine_tune(model, model_config, data, params, seed, train_bn=(tag == "none"))
    content = trainer.convert_int8(model, data.calibration_images(params["input_size"], seed))
    int8_acc = trainer.int8_accuracy(content, data.images(params["input_size"])["val"], data.y_val)
    size = int(params["input_size"])
    manifest = make_manifest(
        data.labels,
        {"tflite": "model.tflite", "edgetpu": None, "fallbacks": [], "quantization": "int8",
         "input_size": [size, size], "input_dtype": "uint8", "output_dtype": "uint8", "resize": "area",
         "color_order": "RGB", "input_mean": 0.0, "input_std": 1.0},
        metrics={"float": {"accuracy": acc, "split": "val"}, "int8": {"accuracy": int8_acc, "split": "val"}},
        source={"search_dir": str(Path(search_dir).resolve()), "trial": record["number"], "config": config})
    write_bundle(bundle_dir, {"model.tflite": content}, manifest)
    say(f"wrote {bundle_dir} (int8 val accuracy {int8_acc:.3f})")
    return {"trial": record["number"], "options": opts, "bundle": str(bundle_dir), "float_acc": acc,
            "int8_acc": int8_acc, "via": "edgecnn.search trainer (edgecnn.train not installed)"}
