"""A trial's model and training, through the same code as ``edgecnn finetune`` (:mod:`edgecnn.train`).

The trial's options are finetune's (:mod:`.trial_options`, checked by finetune's ``resolve_args``);
its phases are finetune's :func:`~edgecnn.train.phases.train_head` and
:func:`~edgecnn.train.phases.fine_tune`, with finetune's class balancing, tf.data pipelines,
augmentation, feature extraction and feature cache key. What a trial does not do:

* write a RUN_DIR: the phases run with ``progress=None``, so phase 2 keeps its epoch tracker in
  memory and writes no checkpoint (a killed trial is run again by the study, not resumed);
* run finetune's ``_train`` itself: that also audits the data, decodes the images, checks disk
  space and writes the RUN_DIR, none of which a trial wants. Decoded images come from the decoded-image
  cache every stage shares (:mod:`edgecnn.data.pixels`), and base features are cached under
  ``SEARCH_DIR/cache`` (:class:`.trial_data.SearchData`), shared across trials.
"""

from types import SimpleNamespace

from edgecnn.search.trial_data import SPLITS
from edgecnn.search.trial_options import trial_options


def trial_args(params: dict, weights, seed: int, data) -> dict:
    """finetune's recorded arguments for a trial: its options over finetune's defaults, checked."""
    from edgecnn.train.options import resolve_args

    # Trials are ranked on accuracy, so each phase keeps its epoch of best val accuracy.
    return resolve_args(data.data_dir, dict(trial_options(params, weights), seed=int(seed), select_by="accuracy"))


def fresh_classifier(num_classes: int, seed: int, **options):
    """``build_classifier(num_classes, **options)`` seeded, after dropping the previous trial's graph."""
    from edgecnn.models.classifier import build_classifier
    from edgecnn.tf import keras

    keras.backend.clear_session()  # trials run one after another in one process
    keras.utils.set_random_seed(int(seed))
    return build_classifier(num_classes, **options)


def build(args: dict, num_classes: int):
    """The trial's classifier as finetune builds it from the same arguments (``(model, config)``)."""
    return fresh_classifier(num_classes, args["seed"], backbone=args["backbone"], input_size=args["input_size"],
                            alpha=args["alpha"], weights=args["weights"], dropout=args["dropout"],
                            base_path=args["base"], cut_at=args["cut_at"])


def _run_context(args: dict, data, log):
    """What finetune's phases read of a run; ``progress=None``: no RUN_DIR, phase 2 stays in memory."""
    from edgecnn.tf import tf

    return SimpleNamespace(args=args, strategy=tf.distribute.get_strategy(), labels=data.labels,
                           num_classes=data.num_classes, progress=None, log=log, verbose=0)


def base_features(model, config: dict, args: dict, data):
    """Pooled base features of train and val (``(features, cache hit)``), cached in SEARCH_DIR/cache.

    The key is finetune's: the base's weights (so random bases of other seeds miss), its config,
    the resize and every image's hash; trials of one base and input size extract once.
    """
    from edgecnn.models.classifier import feature_extractor
    from edgecnn.train import features

    extractor = feature_extractor(model)
    key = features.cache_key(config, features.weights_digest(extractor), data.resize, data.splits,
                             args["mixed_precision"])

    def compute():
        return features.extract_splits(extractor, data.images(args["input_size"]), args["batch_size"], 0)

    return features.cached(data.cache_dir, key, compute)


def train_head(model, feats: dict, args: dict, data, log) -> float:
    """finetune's phase 1 on the cached features; the best val accuracy (its weights are kept)."""
    from edgecnn.train import phases

    return float(phases.train_head(_run_context(args, data, log), model, feats, data.y).best)


def fine_tune(model, config: dict, args: dict, data, log) -> float:
    """finetune's phase 2 (the top ``unfreeze_top`` base layers on augmented images); the best val accuracy."""
    from edgecnn.train import phases
    from edgecnn.train.augment import make_augmenter

    augmenter = make_augmenter(args["augment"], args["seed"], args["flip"], args["rotate"], args["zoom"],
                               args["color"])
    tracker, _ = phases.fine_tune(_run_context(args, data, log), model, config, data.images(args["input_size"]),
                                  data.y, augmenter)
    return float(tracker.best)
