"""One training job of ``edgecnn finetune``: build the classifier, train the head on cached features
(phase 1), fine-tune the top of the base (phase 2), evaluate, and write the finished RUN_DIR.

:func:`edgecnn.train.finetune.finetune` checks the data and the arguments, handles resuming, and
calls :func:`train_job`.
"""

import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgecnn import __version__
from edgecnn.bundle.model import DEFAULT_COLOR_ORDER
from edgecnn.metrics import classification_report
from edgecnn.run import MODEL_FILE, load_run

PHASE1_WEIGHTS = "phase1.h5"  # keras h5 weights (the suffix picks the format)
PHASE2_WEIGHTS = "phase2.h5"


def _summary(metrics: dict) -> dict:
    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1")
    return {split: ({k: r[k] for k in keys} if r else None) for split, r in metrics.items()
            if split in ("val", "test")}


def run_result(run: dict, status: str) -> dict:
    """What finetune returns for a finished run: status, paths, labels, the val/test summary, timings."""
    metrics = json.loads((Path(run["run_dir"]) / "metrics.json").read_text(encoding="utf-8"))
    return {"status": status, "run_dir": run["run_dir"], "model_path": run["model_path"],
            "labels": run["labels"], "metrics": _summary(metrics), "timings": run.get("timings"),
            "resumed": run.get("resumed")}


def train_job(args, dataset, state, log, quiet, timings, pixels=...):
    """Build the model, train the head (phase 1) and the top of the base (phase 2), evaluate, write RUN_DIR.

    ``pixels``: the PixelCache the data scan filled (the default on-disk one when not given).
    """
    from edgecnn.tf import keras
    from edgecnn.train import distribute

    strategy = distribute.make_strategy(args["strategy"])
    state.writer = distribute.is_chief(strategy)  # other MultiWorker workers read the chief's state
    keras.utils.set_random_seed(args["seed"])
    deterministic = distribute.determinism()
    job = _Job(args, dataset, state, log, quiet, strategy, pixels)
    with distribute.peers_watched(strategy), distribute.precision(args["mixed_precision"]):
        job.cut = _choose_cut(job)
        model, config = _build_model(job)
        phase1, feats = _phase1(job, model, config, timings)
        phase2 = _phase2(job, model, config, timings)
        metrics = _evaluate(job, model, feats, timings)
    if args["mixed_precision"]:  # save a float32 graph: TFLite converters want float32 weights
        trained = model
        model, _ = _classifier(args, len(job.labels), weights="none", cut_at=job.cut)
        model.set_weights(trained.get_weights())
    metrics["select_by"] = args["select_by"]
    metrics["phases"] = {"1": phase1.get("summary"), "2": phase2.get("summary")}
    timings["total_s"] = time.perf_counter() - timings.pop("started")
    history = (phase1.get("history") or []) + (phase2.get("history") or [])
    return _write_run(job, model, _run_info(job, config, phase2, deterministic, timings), history, metrics)


class _Job:
    """What the training steps share: arguments, splits and labels, the strategy, the log, the images."""

    def __init__(self, args, dataset, state, log, quiet, strategy, pixels=...):
        self.args, self.dataset, self.state, self.log, self.quiet, self.strategy = \
            args, dataset, state, log, quiet, strategy
        self.pixels = pixels
        self.labels = list(dataset.labels)
        self.splits = {name: dataset.splits.get(name, []) for name in ("train", "val", "test")}
        self.y = {name: np.array([s.label for s in samples], dtype=np.int64) for name, samples in self.splits.items()}
        self.verbose = 0 if quiet else (1 if sys.stdout.isatty() else 2)
        self.ctx = SimpleNamespace(args=args, strategy=strategy, labels=self.labels, num_classes=len(self.labels),
                                   progress=state.progress, log=log, verbose=self.verbose)
        self.resumed = {"phase1_skipped": False, "phase2_skipped": False, "phase2_resumed_at_epoch": None}
        self.size = None  # the model's input size, once it is built
        self.cut, self.cut_probe = None, None  # where the base ends, and the probe that chose it (--cut-at auto)
        self._images = {}

    def images(self, split):
        """A split's images at the model's input size, loaded once when first needed."""
        from edgecnn.data.pixels import load_images

        if split not in self._images:
            self._images[split] = (
                load_images(self.splits[split], self.size, resize=self.args["resize"], progress=not self.quiet,
                            cache=self.pixels)[0]
                if self.splits[split] else np.zeros((0, self.size, self.size, 3), np.uint8))
        return self._images[split]


def _classifier(args, num_classes: int, weights, cut_at=None):
    from edgecnn.models.classifier import build_classifier

    return build_classifier(num_classes, backbone=args["backbone"], input_size=args["input_size"], alpha=args["alpha"],
                            weights=weights, dropout=args["dropout"], base_path=args["base"], cut_at=cut_at)


def _choose_cut(job: _Job):
    """Where the base ends: ``--cut-at`` as given, or for ``auto`` the probe's choice (its index)."""
    from edgecnn.train.cut_probe import probe_run

    if job.args["cut_at"] != "auto":
        return job.args["cut_at"]
    job.cut_probe = probe_run(job)
    return job.cut_probe["auto"]["index"]


def _build_model(job: _Job):
    """The classifier (under the strategy), and the disk space the run will need, checked up front."""
    from edgecnn.models.classifier import POOL_LAYER
    from edgecnn.train import space

    args, state = job.args, job.state
    with job.strategy.scope():
        model, config = _classifier(args, len(job.labels), weights=args["weights"], cut_at=job.cut)
    job.size = config["input_size"]
    state.needed = space.needed_bytes(model, sum(len(v) for v in job.y.values()),
                                      int(model.get_layer(POOL_LAYER).output.shape[-1]),
                                      bool(args["fine_tune_epochs"]))
    if state.writer:
        space.check_run_space(state.out, state.needed)  # before hours of training meet a full disk
    return model, config


def _phase1(job: _Job, model, config, timings):
    """Train the head on cached features, or load it from an earlier attempt; returns ``(phase, features)``."""
    from edgecnn.train import distribute, phases

    state = job.state
    phase1 = state.phase(1)
    if phase1.get("done"):
        model.load_weights(str(state.progress / PHASE1_WEIGHTS))
        job.resumed["phase1_skipped"] = True
        job.log("Phase 1 (head) already done in an earlier attempt: skipped.")
    feats = {}
    if not phase1.get("done") or not job.args["fine_tune_epochs"]:  # the head trains or evaluates on them
        feats = _features(job, model, config, timings)
    if not phase1.get("done"):
        t0 = time.perf_counter()
        job.log(f"Phase 1: training the head on cached features ({len(job.y['train'])} images, up to "
                f"{job.args['epochs']} epochs)...")
        tracker = phases.train_head(job.ctx, model, feats, job.y)
        distribute.save_weights(model, state.progress / PHASE1_WEIGHTS, job.strategy)
        state.finish_phase(1, history=tracker.history, summary=tracker.summary(),
                           seconds=time.perf_counter() - t0, strategy=_ran_under(job))
        phase1 = state.phase(1)
    timings["phase1_s"] = phase1["seconds"]
    return phase1, feats


def _ran_under(job: _Job) -> dict:
    """What a phase trained under (recorded per phase: a resumed phase may have run on another cluster)."""
    from edgecnn.train import distribute

    return {"name": distribute.strategy_name(job.strategy), "replicas": int(job.strategy.num_replicas_in_sync)}


def _features(job: _Job, model, config, timings) -> dict:
    """The frozen base's pooled features of every split, from RUN_DIR/.cache when it has them."""
    from edgecnn.models.classifier import feature_extractor
    from edgecnn.train import features

    args = job.args
    extractor = feature_extractor(model)
    key = features.cache_key(config, features.weights_digest(extractor), args["resize"], job.splits,
                             args["mixed_precision"])
    t0 = time.perf_counter()

    def compute():
        job.log("Extracting features with the frozen base (once; cached in RUN_DIR/.cache)...")
        names = ("train", "val", "test")
        return features.extract_splits(extractor, {name: job.images(name) for name in names}, args["batch_size"],
                                       job.verbose)

    feats, timings["features_cached"] = features.cached(job.state.cache, key, compute, write=job.state.writer)
    timings["features_s"] = time.perf_counter() - t0
    return feats


def _phase2(job: _Job, model, config, timings):
    """Fine-tune the top of the base (resuming an interrupted attempt), or load it; returns the phase."""
    from edgecnn.train import distribute, phases
    from edgecnn.train.augment import make_augmenter

    args, state = job.args, job.state
    phase2 = state.phase(2)
    if args["fine_tune_epochs"] and phase2.get("done"):
        model.load_weights(str(state.progress / PHASE2_WEIGHTS))
        job.resumed["phase2_skipped"] = True
        job.log("Phase 2 (fine-tune) already done in an earlier attempt: skipped.")
    elif args["fine_tune_epochs"]:
        t0 = time.perf_counter()
        job.log(f"Phase 2: fine-tuning the top of the base (up to {args['fine_tune_epochs']} epochs)...")
        augmenter = make_augmenter(args["augment"], args["seed"], args["flip"], args["rotate"], args["zoom"],
                                   args["color"])
        tracker, info = phases.fine_tune(job.ctx, model, config, {n: job.images(n) for n in ("train", "val")}, job.y,
                                         augmenter)
        job.resumed["phase2_resumed_at_epoch"] = tracker.summary()["resumed_at_epoch"]
        distribute.save_weights(model, state.progress / PHASE2_WEIGHTS, job.strategy)
        state.finish_phase(2, history=tracker.history, summary=tracker.summary(), unfreeze=info,
                           seconds=time.perf_counter() - t0 + phase2.get("seconds", 0.0), strategy=_ran_under(job))
        phase2 = state.phase(2)
    timings["phase2_s"] = phase2.get("seconds", 0.0)
    return phase2


def _evaluate(job: _Job, model, feats, timings) -> dict:
    """Classification reports on val and test (on the cached features when the base stayed frozen)."""
    from edgecnn.models.classifier import head_model

    t0 = time.perf_counter()
    metrics = {}
    for name in ("val", "test"):
        if not len(job.y[name]):
            metrics[name] = None
            continue
        if job.args["fine_tune_epochs"]:
            probs = model.predict(_eval(job.images(name), job.args), verbose=0)
        else:
            probs = head_model(model).predict(feats[name], batch_size=256, verbose=0)
        metrics[name] = classification_report(job.y[name], np.asarray(probs).argmax(axis=1), job.labels)
    timings["evaluate_s"] = time.perf_counter() - t0
    return metrics


def _run_info(job: _Job, config, phase2, deterministic, timings) -> dict:
    """run.json: arguments, versions, labels, model, preprocessing, data, timings."""
    from edgecnn.tf import keras, tf
    from edgecnn.train import distribute
    from edgecnn.train.augment import describe

    args, dataset, size = job.args, job.dataset, job.size
    return {
        "schema_version": 1,
        "edgecnn_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "arguments": args,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "tf_keras": keras.__version__, "numpy": np.__version__},
        "seed": args["seed"],
        "labels": job.labels,
        "model": config,
        "preprocess": {"input_size": [size, size], "resize": args["resize"], "color_order": DEFAULT_COLOR_ORDER},
        "data": dataset.to_json(),
        "data_sha": job.state.data.get("data_sha"),
        "class_counts": dataset.class_counts(),
        "augment": describe(args["augment"], args["flip"], args["rotate"], args["zoom"], args["color"]),
        "fine_tune": phase2.get("unfreeze"),
        "cut_probe": job.cut_probe,
        "strategy": dict(distribute.describe(job.strategy), deterministic=deterministic,
                         phases={n: job.state.phase(n).get("strategy") for n in ("1", "2")}),
        "timings": timings,
        "resumed": job.resumed,
        "parent": None,
    }


def _write_run(job: _Job, model, run_info, history, metrics) -> dict:
    """Write RUN_DIR (the chief; other MultiWorker workers save too, collective variables, into a scratch folder)."""
    from edgecnn.train import artifacts, distribute

    state = job.state
    if not distribute.is_chief(job.strategy):
        with tempfile.TemporaryDirectory() as scratch:
            artifacts.write_run_dir(Path(scratch) / "run", model, job.labels, run_info, history, metrics)
        return {"status": "worker", "run_dir": str(state.out), "metrics": _summary(metrics)}
    artifacts.write_run_dir(Path(state.out), model, job.labels, run_info, history, metrics)
    result = run_result(load_run(state.out), "trained")
    job.log(f"Done: {state.out / MODEL_FILE} (val accuracy {metrics['val']['accuracy']:.3f}"
            + (f", test accuracy {metrics['test']['accuracy']:.3f}" if metrics.get("test") else "") + ")")
    return result


def _eval(x, args):
    from edgecnn.train.pipeline import eval_dataset

    return eval_dataset(x, args["batch_size"])
