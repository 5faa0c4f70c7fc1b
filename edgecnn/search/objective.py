"""One trial: fine-tune a configuration, convert it to int8, measure int8 accuracy, size and latency.

The trial's steps:

1. **Reject before training** when the budget is already busted: the int8 size is estimated from
   the parameter count, the latency from the MACs with a named profile, or, for ``host`` and
   ``ssh://`` targets, from what earlier trials of the same base measured, else by measuring the
   untrained architecture's int8 model on the target once per base (same ops, same latency).
2. **Head phase** on cached base features (``SEARCH_DIR/cache``: a base and input size that repeat
   across trials are run over the images once); its validation accuracy is reported to Optuna.
3. **Pruning** (multi-objective safe): the trial stops there when an earlier finished, feasible
   trial reached a head-phase accuracy at least ``prune_margin`` higher *and* is no slower and no
   bigger (same base, or lower measured latency and size). Such a trial already dominates this
   one at the same point of training, so fine-tuning and converting it is not worth the time.
   Optuna's own pruners compare one objective only, so they cannot be used here.
4. **Phase 2** (when ``unfreeze_top`` > 0): the top layers of the base train on augmented images
   at the fine-tune learning rate.
5. **int8** conversion (calibration on training images), int8 accuracy on the validation split
   with the TFLite interpreter, file size, and latency on the target.

The figures go to Optuna as values ``(int8 accuracy, latency ms, size KB)`` with
``constraints = (latency - max_latency, size - max_size)`` (feasible when both are <= 0).
"""

import hashlib
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn import atomic
from edgecnn.errors import EdgecnnError
from edgecnn.search.trainer import base_features, build, convert_int8, fine_tune, int8_accuracy, train_head, \
    weights_for

HEAD_STEP = 0


class Pruned(Exception):
    """Raised to stop a hopeless trial after its head phase (turned into optuna.TrialPruned)."""


# ---------------------------------------------------------------- data, shared by every trial

class SearchData:
    """The dataset split once, images decoded once per input size (cached on disk)."""

    def __init__(self, data_dir, cache_dir, seed: int = 0, calibration: int = 64, progress: bool = False):
        from edgecnn.data.dataset import load_dataset

        self.dataset = load_dataset(data_dir, seed=seed, progress=progress)
        self.labels = list(self.dataset.labels)
        self.cache_dir = Path(cache_dir)
        self.calibration = calibration
        self._images = {}
        train, val = self.dataset.splits["train"], self.dataset.splits.get("val") or []
        if not val:
            raise EdgecnnError(f"dataset '{data_dir}' has no validation images; the search ranks trials on val. "
                               "Add DATA_DIR/val/<class>/ or use the folders layout (a val split is made).")
        digest = hashlib.sha256()
        for split in ("train", "val"):
            for s in self.dataset.splits[split]:
                digest.update(f"{split}:{s.label}:{s.sha256}".encode())
        self.digest = digest.hexdigest()[:16]
        self.num_classes = len(self.labels)
        self.y_train = np.asarray([s.label for s in train], dtype=np.int64)
        self.y_val = np.asarray([s.label for s in val], dtype=np.int64)

    def images(self, size: int):
        """``{"train": uint8 N×S×S×3, "val": ...}`` at ``size`` (decoded once, cached as .npz)."""
        from edgecnn.data.dataset import load_images

        if size in self._images:
            return self._images[size]
        path = self.cache_dir / f"images-{self.digest}-{size}.npz"
        if path.is_file():
            try:
                with np.load(path) as data:
                    self._images[size] = {"train": data["train"], "val": data["val"]}
                    return self._images[size]
            except (OSError, ValueError, KeyError):
                pass
        out = {split: load_images(self.dataset.splits[split], size)[0] for split in ("train", "val")}
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **out)
        self._images[size] = out
        return out

    def calibration_images(self, size: int, seed: int = 0):
        """Up to ``calibration`` training images, stratified by class."""
        x = self.images(size)["train"]
        rng = np.random.default_rng(seed)
        per = max(1, self.calibration // self.num_classes)
        idx = []
        for c in range(self.num_classes):
            members = np.flatnonzero(self.y_train == c)
            idx.extend(rng.permutation(members)[:per].tolist())
        return x[np.asarray(sorted(idx))]


# ---------------------------------------------------------------- size

def estimate_size_kb(model) -> float:
    """int8 file size estimate: a byte per weight, int32 biases, per-channel scales and zero points,
    and the graph (fitted on MobileNet v1 0.25/96 and 0.5/160 classifiers: within about 10%)."""
    params = int(model.count_params())
    return (params * 1.22 + 16384) / 1024.0


# ---------------------------------------------------------------- the trial

def probe_latency(arch, params, ctx) -> float:
    """Measure the untrained architecture's int8 model on the target, once per base (cached).

    The trained model has the same ops and shapes, so its latency is the same up to noise; this
    lets a measured target (host, ssh://) reject a base before any training when it is too slow.
    """
    key = hashlib.sha256(f"{params['base']}|{ctx.data.num_classes}|{ctx.target.name}|"
                         f"{getattr(ctx.target, 'stat', '')}|{getattr(ctx.target, 'threads', None)}"
                         .encode()).hexdigest()[:16]
    path = ctx.data.cache_dir / f"latency-probe-{key}.json"
    if path.is_file():
        try:
            return float(json.loads(path.read_text())["latency_ms"])
        except (OSError, ValueError, KeyError):
            pass
    content = convert_int8(arch, ctx.data.calibration_images(params["input_size"])[:8])
    model_path = atomic.write_bytes(ctx.data.cache_dir / f"probe-{key}.tflite", content)
    measured = ctx.target.measure(model_path)
    atomic.write_json(path, {"base": params["base"], "target": ctx.target.name,
                             "latency_ms": float(measured["latency_ms"])})
    model_path.unlink()
    return float(measured["latency_ms"])


def screen_bases(bases, ctx, say=None):
    """Estimate every base before the search; drop those whose estimate already busts the budget.

    Size from the parameter count; latency from the profile (named targets) or by measuring the
    untrained architecture's int8 model on the target (host, ssh://; cached per base). Returns
    ``(kept, excluded)`` where ``excluded`` maps a base to the reason.
    """
    from edgecnn.search.estimate import count_keras
    from edgecnn.search.space import parse_base

    kept, excluded, estimates = [], {}, {}
    for base in bases:
        params = dict(parse_base(base), base=base)
        arch, _ = build(params, ctx.data.num_classes, "none", ctx.seed)
        size = estimate_size_kb(arch)
        counts = count_keras(arch)
        latency = ctx.target.estimate_counts(counts)
        if latency is None and size <= ctx.max_size_kb and ctx.probe:
            latency = probe_latency(arch, params, ctx)
        del arch
        estimates[base] = {"size_kb": size, "latency_ms": latency, "latency_kind": ctx.target.kind if latency
                           is not None and ctx.target.kind == "estimate" else ("probe" if latency is not None
                                                                                else None),
                           "macs": int(sum(counts[k] for k in ("conv", "depthwise", "fully_connected")))}
        why = []
        if size > ctx.max_size_kb:
            why.append(f"estimated size {size:.0f} KB > {ctx.max_size_kb:g} KB")
        if latency is not None and latency > ctx.max_latency_ms:
            kind = "estimated" if ctx.target.kind == "estimate" else "probed"
            why.append(f"{kind} latency {latency:.2f} ms > {ctx.max_latency_ms:g} ms")
        if why:
            excluded[base] = "; ".join(why)
        else:
            kept.append(base)
        if say:
            lat = "?" if latency is None else f"{latency:.2f} ms"
            say(f"base {base}: {size:.0f} KB, {lat}{' -> excluded: ' + excluded[base] if base in excluded else ''}")
    return kept, excluded, estimates


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
        self.base_estimates = {}  # base -> {"size_kb", "latency_ms", "macs"} from screen_bases


def constraints(latency_ms, size_kb, ctx) -> list:
    return [float(latency_ms) - ctx.max_latency_ms, float(size_kb) - ctx.max_size_kb]


def known_latency(study_trials, base: str) -> Optional[float]:
    """The smallest latency measured so far for ``base`` by finished trials (None when none)."""
    values = [t.user_attrs.get("latency_ms") for t in study_trials
              if t.user_attrs.get("base") == base and t.user_attrs.get("latency_measured")]
    values = [v for v in values if v is not None]
    return min(values) if values else None


def should_prune(head_acc: float, base: str, est_latency, est_size, finished, margin: float):
    """The pruning rule (see the module docstring); returns the dominating trial number or None."""
    for t in finished:
        a = t.user_attrs
        if a.get("head_acc") is None or not a.get("feasible"):
            continue
        if a["head_acc"] < head_acc + margin:
            continue
        same = a.get("base") == base
        cheaper = (est_latency is not None and est_size is not None and a.get("latency_ms") is not None
                   and a["latency_ms"] <= est_latency and a.get("size_kb", float("inf")) <= est_size)
        if same or cheaper:
            return t.number
    return None


def run_trial(trial, params: dict, ctx: TrialContext, finished) -> tuple:
    """Run one trial; sets user attrs on ``trial`` and returns ``(int8_acc, latency_ms, size_kb)``.

    Raises:
        Pruned: when the pruning rule stops the trial after its head phase.
    """
    from edgecnn.search.estimate import count_keras

    t0 = time.time()
    data = ctx.data
    seed = ctx.seed + trial.number
    attrs = {"base": params["base"], "target": ctx.target.name, "latency_kind": ctx.target.kind}
    screened = ctx.base_estimates.get(params["base"])
    if screened is not None:  # estimated once per base before the search (screen_bases)
        est_size, est_latency, macs = screened["size_kb"], screened["latency_ms"], screened.get("macs")
    else:
        # The architecture alone (no weights to load or download) gives the size and MAC estimates.
        arch, _ = build(params, data.num_classes, "none", seed)
        est_size = estimate_size_kb(arch)
        counts = count_keras(arch)
        macs = int(sum(counts[k] for k in ("conv", "depthwise", "fully_connected")))
        est_latency = ctx.target.estimate_counts(counts)
        if est_latency is None and est_size <= ctx.max_size_kb and ctx.probe:
            est_latency = probe_latency(arch, params, ctx)
            attrs["latency_probe"] = True
        del arch
    if est_latency is None:
        est_latency = known_latency(finished, params["base"])
    attrs.update(est_size_kb=est_size, est_latency_ms=est_latency, macs=macs)
    over = []
    if est_size > ctx.max_size_kb:
        over.append(f"estimated size {est_size:.0f} KB > {ctx.max_size_kb:g} KB")
    if est_latency is not None and est_latency > ctx.max_latency_ms:
        over.append(f"estimated latency {est_latency:.2f} ms > {ctx.max_latency_ms:g} ms")
    if over:
        lat = est_latency if est_latency is not None else float("nan")
        attrs.update(rejected="; ".join(over), int8_acc=0.0, latency_ms=lat, size_kb=est_size, feasible=False,
                     constraints=constraints(lat if lat == lat else ctx.max_latency_ms, est_size, ctx),
                     seconds=time.time() - t0)
        _set_attrs(trial, attrs)
        return 0.0, lat if lat == lat else ctx.max_latency_ms * 10, est_size

    timings = {"estimate": time.time() - t0}
    mark = time.time()

    def lap(name):
        nonlocal mark
        now = time.time()
        timings[name] = round(now - mark, 3)
        mark = now

    attrs["timings"] = timings
    model, config = build(params, data.num_classes, ctx.weights, seed)
    lap("build")
    weights_tag = weights_for(params, ctx.weights)
    if weights_tag == "none":
        weights_tag = f"none-seed{seed}"  # random bases differ per seed: no sharing
    feats, hit = base_features(model, config, data, weights_tag)
    attrs["features_cached"] = bool(hit)
    lap("features")
    head_acc = train_head(model, feats, data, params, seed)
    lap("head")
    attrs["head_acc"] = head_acc
    _report(trial, head_acc)
    dominated_by = should_prune(head_acc, params["base"], est_latency, est_size, finished, ctx.prune_margin)
    if dominated_by is not None:
        attrs.update(pruned_by=dominated_by, seconds=time.time() - t0)
        _set_attrs(trial, attrs)
        raise Pruned(f"head-phase accuracy {head_acc:.3f} is at least {ctx.prune_margin:g} below trial "
                     f"{dominated_by}, which is no slower and no bigger")
    float_acc = head_acc
    if params.get("unfreeze_top", 0) and params.get("fine_tune_epochs", 0):
        float_acc = fine_tune(model, config, data, params, seed, train_bn=weights_tag.startswith("none"))
        lap("fine_tune")
    attrs["float_acc"] = float_acc

    content = convert_int8(model, data.calibration_images(params["input_size"], seed))
    trial_dir = ctx.search_dir / "trials" / f"{trial.number:04d}"
    model_path = atomic.write_bytes(trial_dir / "model.tflite", content)
    lap("convert")
    acc = int8_accuracy(content, data.images(params["input_size"])["val"], data.y_val)
    lap("int8_eval")
    size_kb = len(content) / 1024.0
    measured = ctx.target.measure(model_path)
    lap("latency")
    latency = float(measured["latency_ms"])
    feasible = latency <= ctx.max_latency_ms and size_kb <= ctx.max_size_kb
    attrs.update(int8_acc=acc, latency_ms=latency, latency_measured=measured["latency_kind"] == "measured",
                 latency_detail={k: v for k, v in measured.items() if k != "benchmark"},
                 size_kb=size_kb, feasible=feasible, constraints=constraints(latency, size_kb, ctx),
                 model=str(model_path), seconds=time.time() - t0)
    if "benchmark" in measured:
        bench = measured["benchmark"]
        attrs["latency_stats"] = {k: bench[k] for k in bench if isinstance(bench[k], (int, float))}
    atomic.write_json(trial_dir / "trial.json", {"number": trial.number, "params": params, **attrs})
    if not ctx.keep_models:
        (trial_dir / "model.tflite").unlink(missing_ok=True)
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
