"""``edgecnn prune``: magnitude pruning (tensorflow-model-optimization) of a run's flat model.

``prune_low_magnitude`` refuses a whole model that contains Rescaling, so only the prunable layers
are wrapped, through ``keras.models.clone_model(model, clone_function=...)``. The sparsity rises
along a polynomial schedule over the first part of fine-tuning (pruning from step 0 at constant
sparsity collapses accuracy) and holds for the rest so the network recovers; BatchNorm stays
frozen. ``strip_pruning`` then leaves a normal model whose zeros survive conversion and compress.
"""

import time
from typing import Callable, Optional, Sequence

from edgecnn.compress.pruning import (fixed_mask_schedule, make_schedule, prunable_names, sparsity_report,
                                      wrap_for_pruning)
from edgecnn.errors import EdgecnnError, RunError
from edgecnn.tf import keras, tfmot

ALLOCATIONS = ("uniform", "sensitivity")
METHODS = ("magnitude", "obs")
DEFAULT_EPOCHS = {"magnitude": 10, "obs": 0}


def parse_m_by_n(text: Optional[str]):
    """``"2:4"`` -> ``(2, 4)``."""
    if not text:
        return None
    try:
        m, n = (int(v) for v in str(text).split(":"))
    except ValueError:
        raise EdgecnnError(f"--m-by-n '{text}' is not M:N (for example 2:4).") from None
    if not 0 < m < n:
        raise EdgecnnError(f"--m-by-n '{text}': M must be between 1 and N-1 (for example 2:4).")
    return m, n


def prune_run(run_dir, out, sparsity: float = 0.5, schedule: str = "polynomial", epochs: Optional[int] = None,
              lr: float = 3e-5, batch_size: int = 32, exclude: Sequence[str] = (), include_depthwise: bool = False,
              m_by_n: Optional[str] = None, augment: str = "light", distill: bool = True, min_params: int = 0,
              train_layers: str = "all", seed: int = 0, verbose: int = 0, label_weight: float = 0.5,
              allocation: str = "uniform", method: str = "magnitude", obs_copies: int = 4,
              progress: Optional[Callable[[str], None]] = None) -> dict:
    """Prune RUN_DIR's model to ``sparsity`` and save it as RUN_DIR ``out``.

    Args:
        sparsity: final fraction of zero weights in each pruned kernel (ignored with ``m_by_n``).
        schedule: ``polynomial`` (0 -> sparsity over the first 60% of steps) or ``constant``
            (``magnitude`` only).
        epochs: fine-tuning epochs on the run's train split (default 10 for ``magnitude``, 0 for
            ``obs``; after ``obs`` the masks stay fixed).
        exclude: fnmatch patterns of layer names to leave dense (e.g. ``conv1`` ``head_dense``).
        include_depthwise: also prune DepthwiseConv2D kernels (few weights, sensitive; ``obs`` only,
            tfmot does not prune them).
        m_by_n: structured sparsity ``"2:4"`` (Conv2D and Dense only, as tfmot supports it).
        distill: train toward the unpruned model's probabilities as well as the labels.
        label_weight: with ``distill``, the share of the one-hot label in the target (the rest is the
            unpruned model's probabilities); 0 trains to reproduce the unpruned model alone.
        allocation: ``uniform`` (every pruned kernel at ``sparsity``) or ``sensitivity`` (per-layer
            sparsity from one-shot damage on train images, same number of zeros; see
            :mod:`edgecnn.compress.allocation`).
        min_params: leave kernels with fewer weights dense (small early layers are sensitive and
            add nothing to the size).
        train_layers: ``all`` fine-tunes every layer (BatchNorm excepted); ``pruned`` only the pruned
            layers and the dense head, so the layers left dense keep their pretrained weights.
        method: ``magnitude`` (tfmot's prune_low_magnitude during fine-tuning) or ``obs`` (one-shot
            layer-wise reconstruction on train images, :mod:`edgecnn.compress.obs`).
        obs_copies: with ``obs``, augmented copies of the train images added to the calibration rows.
        progress: called with a line per layer pruned by ``obs`` (the CLI prints them on stderr).

    Returns:
        The pruning report (also in ``out/run.json`` under ``pruning``).
    """
    from edgecnn.compress import retrain

    started = time.perf_counter()
    epochs, mbn = _checked(method, epochs, sparsity, label_weight, m_by_n, allocation, train_layers, include_depthwise)
    run, model, (train, val, test) = _parent(run_dir)
    labels = run["labels"]
    before = {"val": retrain.evaluate(model, *val, labels) if val else None,
              "weights_gzip_bytes": retrain.weights_gzip_bytes(model)}
    candidates = prunable_names(model, exclude, include_depthwise, min_params)
    plan = _plan(model, train, candidates, sparsity, schedule, epochs, batch_size, allocation, method, obs_copies,
                 seed, progress)
    history = []
    if epochs > 0:
        stripped, history = _fine_tune(run, plan, train, val, candidates, exclude, mbn, min_params, train_layers,
                                       epochs, lr, batch_size, seed, augment, verbose, distill, label_weight)
    else:
        stripped = plan.source
    names = list(candidates)  # after fine-tuning too: DepthwiseConv2D kernels pruned by obs stayed frozen
    metrics = {"val": retrain.evaluate(stripped, *val, labels) if val else None}
    if test is not None:
        metrics["test"] = retrain.evaluate(stripped, *test, labels)
    after = {"val": metrics["val"], "weights_gzip_bytes": retrain.weights_gzip_bytes(stripped)}
    details = {
        "method": method,
        "target_sparsity": 0.5 if mbn else sparsity,
        "m_by_n": list(mbn) if mbn else None,
        "schedule": plan.sched_info,
        "epochs": epochs, "lr": lr, "batch_size": batch_size, "augment": augment, "seed": seed,
        "exclude": list(exclude), "include_depthwise": include_depthwise, "min_params": min_params,
        "distill": distill, "label_weight": label_weight if distill else 1.0, "train_layers": train_layers,
        "allocation": allocation, "sensitivity": plan.alloc, "obs": plan.obs_info,
        "sparsity": sparsity_report(stripped, names, mbn),
        "val_accuracy_before": before["val"]["accuracy"] if before["val"] else None,
        "val_accuracy_after": after["val"]["accuracy"] if after["val"] else None,
        "weights_gzip_bytes_before": before["weights_gzip_bytes"],
        "weights_gzip_bytes_after": after["weights_gzip_bytes"],
    }
    metrics["pruning"] = {k: details[k] for k in ("val_accuracy_before", "val_accuracy_after")}
    retrain.write_child(out, stripped, run, "pruning", details, history, metrics, started)
    return dict(details, run_dir=str(out))


def _checked(method, epochs, sparsity, label_weight, m_by_n, allocation, train_layers, include_depthwise) -> tuple:
    """Refuse option combinations that cannot work; return ``(epochs, (M, N) or None)``."""
    if method not in METHODS:
        raise EdgecnnError(f"--method '{method}' is not one of {', '.join(METHODS)}.")
    epochs = DEFAULT_EPOCHS[method] if epochs is None else epochs
    if not 0.0 < sparsity < 1.0:
        raise EdgecnnError(f"--sparsity {sparsity} must be between 0 and 1 (e.g. 0.5 for half the weights).")
    if epochs < (1 if method == "magnitude" else 0):
        raise EdgecnnError(f"--epochs {epochs}: magnitude pruning needs at least 1 epoch of fine-tuning "
                           "(or use --method obs, which needs none).")
    if not 0.0 <= label_weight <= 1.0:
        raise EdgecnnError(f"--label-weight {label_weight} must be between 0 (only the unpruned model's "
                           "probabilities) and 1 (only the labels).")
    mbn = parse_m_by_n(m_by_n)
    if allocation not in ALLOCATIONS:
        raise EdgecnnError(f"--allocation '{allocation}' is not one of {', '.join(ALLOCATIONS)}.")
    if train_layers not in ("all", "pruned"):
        raise EdgecnnError(f"--train-layers '{train_layers}' is not one of all, pruned.")
    if allocation == "sensitivity" and mbn:
        raise EdgecnnError("--allocation sensitivity sets a sparsity per layer; --m-by-n fixes it at M/N. Use one.")
    if method == "obs" and mbn:
        raise EdgecnnError("--m-by-n is tfmot's structured pruning; use it with --method magnitude.")
    if method == "magnitude" and include_depthwise:
        # tfmot registers DepthwiseConv2D with no prunable weight: wrapping it would prune nothing
        raise EdgecnnError("--include-depthwise: tfmot does not prune DepthwiseConv2D kernels; use --method obs, "
                           "which does.")
    return epochs, mbn


def _parent(run_dir) -> tuple:
    """``(run, model, (train, val, test))`` of a float run with a train split."""
    from edgecnn.compress import retrain
    from edgecnn.run import load_run

    run = load_run(run_dir)
    if run.get("qat"):
        raise RunError(f"'{run_dir}' is a QAT run; prune the float run first, then run `edgecnn qat` on the pruned "
                       "run (it preserves the sparsity).")
    model, splits = retrain.load_parent(run)
    if splits[0] is None:
        raise RunError(f"run '{run_dir}' recorded no train split to fine-tune the pruned model on.")
    return run, model, splits


class _Plan:
    """What to prune and how: the model fine-tuning starts from (``source``: after obs, the one-shot
    pruned model), the tfmot schedule(s), and their descriptions for the report."""

    source = sched = schedules = alloc = obs_info = sched_info = None


def _plan(model, train, candidates, sparsity, schedule, epochs, batch_size, allocation, method, obs_copies, seed,
          progress) -> _Plan:
    plan, variants = _Plan(), None
    plan.source = model
    steps_per_epoch = -(-len(train[1]) // batch_size)
    total_steps = steps_per_epoch * epochs
    per_layer = {name: sparsity for name in candidates}
    if method == "obs":
        from edgecnn.compress import obs as prune_obs
        images = prune_obs.calibration_images(train[0], obs_copies, seed)
        variants = lambda name, levels: prune_obs.level_weights(model, name, images, levels)  # noqa: E731
    if allocation == "sensitivity":
        from edgecnn.compress.allocation import sensitivity_sparsity

        plan.alloc = dict(sensitivity_sparsity(model, candidates, train[0][::max(1, len(train[0]) // 128)], sparsity,
                                               variants=variants), pruner=method)
        per_layer = plan.alloc["per_layer"]
    if method == "obs":
        plan.source, obs_layers = prune_obs.obs_prune(model, per_layer, images, progress=progress)
        plan.obs_info = dict(prune_obs.describe(len(images), obs_copies), layers=obs_layers)
        plan.sched_info = {"kind": "fixed_mask" if epochs else "none", "epochs": epochs}
        if epochs > 0:  # fine-tuning keeps the reconstruction's zeros: tfmot computes the mask once
            plan.schedules = {name: fixed_mask_schedule(entry["sparsity"]) for name, entry in obs_layers.items()}
    else:
        plan.sched, plan.sched_info = make_schedule(schedule, sparsity, total_steps, steps_per_epoch)
        plan.schedules = {name: make_schedule(schedule, s, total_steps, steps_per_epoch)[0]
                          for name, s in per_layer.items()} if plan.alloc else None
    return plan


def _fine_tune(run, plan: _Plan, train, val, candidates, exclude, mbn, min_params, train_layers, epochs, lr,
               batch_size, seed, augment, verbose, distill, label_weight) -> tuple:
    """Fine-tune ``plan.source`` with tfmot's pruning wrappers; return ``(stripped model, history)``."""
    from edgecnn.compress import retrain
    from edgecnn.run import load_run_model

    teacher = load_run_model(run) if distill else None
    # tfmot cannot wrap DepthwiseConv2D: after obs, those kernels stay frozen so their zeros stay
    pruned, names = wrap_for_pruning(plan.source, plan.sched, exclude, False, mbn, min_params, plan.schedules)
    retrain.freeze_batchnorm(pruned)
    for name in set(candidates) - set(names):
        pruned.get_layer(name).trainable = False
    if train_layers == "pruned":
        for layer in pruned.layers:
            keep = type(layer).__name__ == "PruneLowMagnitude" or isinstance(layer, keras.layers.Dense)
            if not keep and layer.trainable_weights:
                layer.trainable = False
    history = retrain.fit(pruned, train, val, run["labels"], epochs, lr, batch_size, seed, augment,
                          callbacks=[tfmot().sparsity.keras.UpdatePruningStep()], verbose=verbose,
                          phase="prune", teacher=teacher, label_weight=label_weight)
    return tfmot().sparsity.keras.strip_pruning(pruned), history


def format_summary(result: dict) -> str:
    """Human summary of a pruning report."""
    rep = result["sparsity"]
    how, epochs = result["method"], result["epochs"]
    how += f", {epochs} epoch{'' if epochs == 1 else 's'}" if epochs or how == "magnitude" else ", one shot"
    lines = [f"Pruned run {result['run_dir']} ({how}): {len(rep['layers'])} layers, sparsity "
             f"{rep['pruned_sparsity']:.3f} of pruned kernels, {rep['overall_sparsity']:.3f} of all weights"]
    for name, entry in rep["layers"].items():
        extra = "" if entry.get("m_by_n_ok") is None else f"  {result['m_by_n'][0]}:{result['m_by_n'][1]} " \
                                                            f"{'ok' if entry['m_by_n_ok'] else 'NOT met'}"
        lines.append(f"  {name:<28} {entry['sparsity']:.3f} of {entry['params']}{extra}")
    b, a = result["weights_gzip_bytes_before"], result["weights_gzip_bytes_after"]
    lines.append(f"Weights gzipped: {b / 1e6:.2f} MB -> {a / 1e6:.2f} MB ({a / b:.2f}x)")
    if result["val_accuracy_before"] is not None:
        lines.append(f"Val accuracy: {result['val_accuracy_before']:.3f} -> {result['val_accuracy_after']:.3f}")
    return "\n".join(lines)
