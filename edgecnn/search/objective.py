"""One trial: fine-tune a configuration, convert it to int8, measure int8 accuracy, size and latency.

The trial's steps:

1. **Reject before training** when the budget is already busted: the int8 size is estimated from
   the parameter count, the latency from the MACs with a named profile, or, for ``host`` and
   ``ssh://`` targets, from what earlier trials of the same base measured, else by measuring the
   untrained architecture's int8 model on the target once per base (:mod:`.screening`).
2. **Head phase** (finetune's phase 1, :mod:`.training`) on cached base features
   (``SEARCH_DIR/cache``: a base and input size that repeat across trials are run over the images
   once); its validation accuracy is reported to Optuna.
3. **Pruning** (multi-objective safe, :mod:`.pruning`): the trial stops there when an earlier
   finished trial dominates it at the same point of training.
4. **Phase 2** (finetune's, when ``unfreeze_top`` > 0): the top layers of the base train on
   augmented images at the fine-tune learning rate.
5. **int8** conversion (calibration on training images), int8 accuracy on the validation split
   with the TFLite interpreter, file size, and latency on the target.

The figures go to Optuna as values ``(int8 accuracy, latency ms, size KB)`` with
``constraints = (latency - max_latency, size - max_size)`` (feasible when both are <= 0).
"""

import time
from pathlib import Path
from typing import Optional

from edgecnn import atomic
from edgecnn.search import training
from edgecnn.search.int8 import convert_int8, int8_accuracy
from edgecnn.search.pruning import known_latency, should_prune
from edgecnn.search.screening import estimate_base, over_budget
from edgecnn.search.trial_data import SearchData

HEAD_STEP = 0


class Pruned(Exception):
    """Raised to stop a hopeless trial after its head phase (turned into optuna.TrialPruned)."""


class TrialContext:
    """What every trial of one search shares."""

    def __init__(self, data: SearchData, target, search_dir, max_latency_ms: float, max_size_kb: float,
                 weights: Optional[str] = "imagenet", prune_margin: float = 0.1, seed: int = 0,
                 log=None, keep_models: bool = True, probe: bool = True):
        self.data, self.target, self.search_dir = data, target, Path(search_dir)
        self.max_latency_ms, self.max_size_kb = float(max_latency_ms), float(max_size_kb)
        self.weights, self.prune_margin, self.seed = weights, float(prune_margin), int(seed)
        self.log = log or (lambda msg: None)
        self.keep_models = keep_models
        self.probe = probe  # measure an untrained copy of a new base before training it
        self.base_estimates = {}  # base -> {"size_kb", "latency_ms", "latency_kind", "macs"} (screening)


class Laps:
    """Seconds per step of a trial (its ``timings`` attribute), from the end of the estimate."""

    def __init__(self, started: float):
        self.mark = time.time()
        self.timings = {"estimate": self.mark - started}

    def __call__(self, step: str):
        now = time.time()
        self.timings[step] = round(now - self.mark, 3)
        self.mark = now


def constraints(latency_ms, size_kb, ctx) -> list:
    return [float(latency_ms) - ctx.max_latency_ms, float(size_kb) - ctx.max_size_kb]


def run_trial(trial, params: dict, ctx: TrialContext, finished) -> tuple:
    """Run one trial; sets user attrs on ``trial`` and returns ``(int8_acc, latency_ms, size_kb)``.

    Raises:
        Pruned: when the pruning rule stops the trial after its head phase.
    """
    started = time.time()
    seed = ctx.seed + trial.number
    attrs = {"base": params["base"], "target": ctx.target.name, "latency_kind": ctx.target.kind}
    est = _estimate(params, ctx, finished, attrs)
    over = over_budget(est["size_kb"], est["latency_ms"], ctx)
    if over:
        return _reject(trial, attrs, est, over, ctx, started)
    lap = Laps(started)
    attrs["timings"] = lap.timings
    model = _train(trial, params, ctx, seed, est, finished, attrs, lap, started)
    return _int8_figures(trial, params, model, ctx, seed, attrs, lap, started)


def _estimate(params, ctx, finished, attrs) -> dict:
    """The base's screened estimates (or estimated now); a measured latency of the base stands in."""
    est = ctx.base_estimates.get(params["base"])
    if est is None:  # a study screened by an older edgecnn kept no estimates
        est = estimate_base(params, ctx)
        if est["latency_kind"] == "probe":
            attrs["latency_probe"] = True
    est = dict(est)
    if est["latency_ms"] is None:
        est["latency_ms"] = known_latency(finished, params["base"])
    attrs.update(est_size_kb=est["size_kb"], est_latency_ms=est["latency_ms"], macs=est.get("macs"))
    return est


def _reject(trial, attrs, est, over, ctx, started) -> tuple:
    """Record a trial over budget before training: accuracy 0, and its estimated latency and size."""
    size, latency = est["size_kb"], est["latency_ms"]
    attrs.update(rejected="; ".join(over), int8_acc=0.0, latency_ms=latency if latency is not None else float("nan"),
                 size_kb=size, feasible=False, seconds=time.time() - started,
                 constraints=constraints(latency if latency is not None else ctx.max_latency_ms, size, ctx))
    _set_attrs(trial, attrs)
    return 0.0, latency if latency is not None else ctx.max_latency_ms * 10, size


def _train(trial, params, ctx, seed, est, finished, attrs, lap, started):
    """Build, head phase, pruning check, phase 2; the trained float model."""
    data = ctx.data
    args = training.trial_args(params, ctx.weights, seed, data)
    model, config = training.build(args, data.num_classes)
    lap("build")
    feats, attrs["features_cached"] = training.base_features(model, config, args, data)
    lap("features")
    head_acc = attrs["head_acc"] = training.train_head(model, feats, args, data, ctx.log)
    lap("head")
    _report(trial, head_acc)
    dominated_by = should_prune(head_acc, params["base"], est["latency_ms"], est["size_kb"], finished,
                                ctx.prune_margin)
    if dominated_by is not None:
        attrs.update(pruned_by=dominated_by, seconds=time.time() - started)
        _set_attrs(trial, attrs)
        raise Pruned(f"head-phase accuracy {head_acc:.3f} is at least {ctx.prune_margin:g} below trial "
                     f"{dominated_by}, which is no slower and no bigger")
    attrs["float_acc"] = head_acc
    if args["fine_tune_epochs"]:  # trial_options sets 0 when nothing is unfrozen
        attrs["float_acc"] = training.fine_tune(model, config, args, data, ctx.log)
        lap("fine_tune")
    return model


def _int8_figures(trial, params, model, ctx, seed, attrs, lap, started) -> tuple:
    """Convert to int8, measure accuracy, size and latency; record them in the trial and trial.json."""
    data, size = ctx.data, params["input_size"]
    content = convert_int8(model, data.calibration_images(size, seed))
    trial_dir = ctx.search_dir / "trials" / f"{trial.number:04d}"
    model_path = atomic.write_bytes(trial_dir / "model.tflite", content)
    lap("convert")
    acc = int8_accuracy(content, data.images(size)["val"], data.y_val)
    lap("int8_eval")
    size_kb = len(content) / 1024.0
    measured = ctx.target.measure(model_path)
    lap("latency")
    latency = float(measured["latency_ms"])
    attrs.update(int8_acc=acc, latency_ms=latency, latency_measured=measured["latency_kind"] == "measured",
                 latency_detail={k: v for k, v in measured.items() if k != "benchmark"}, size_kb=size_kb,
                 feasible=latency <= ctx.max_latency_ms and size_kb <= ctx.max_size_kb,
                 constraints=constraints(latency, size_kb, ctx), model=str(model_path), seconds=time.time() - started)
    if "benchmark" in measured:
        bench = measured["benchmark"]
        attrs["latency_stats"] = {k: bench[k] for k in bench if isinstance(bench[k], (int, float))}
    atomic.write_json(trial_dir / "trial.json", {"number": trial.number, "params": params, **attrs})
    if not ctx.keep_models:
        model_path.unlink(missing_ok=True)
        attrs.pop("model", None)
    _set_attrs(trial, attrs)
    return acc, latency, size_kb


def _report(trial, value):
    """Optuna refuses ``Trial.report`` in multi-objective studies; the value is the ``head_acc`` attr."""
    try:
        trial.report(value, HEAD_STEP)
    except NotImplementedError:
        pass


def _set_attrs(trial, attrs):
    for k, v in attrs.items():
        if isinstance(v, float) and v != v:
            v = None
        trial.set_user_attr(k, v)
