"""Per-layer sparsity for ``edgecnn prune --allocation sensitivity``.

Uniform sparsity removes the same share of every pruned kernel, but layers differ: on a
pretrained MobileNet the last pointwise layers hold most of the weights and carry the task, while
middle layers tolerate far more zeros. Here each candidate layer is pruned alone, one-shot, by
magnitude (or by OBS reconstruction for ``--method obs``, which tolerates different levels), at a
few levels; the damage is the KL divergence of the model's outputs from the
unpruned model's on training images (no labels, never val). A greedy pass then raises, step by
step, the level of the layer whose next step costs the least damage per added zero, until the
layers hold as many zeros as the uniform target would: the same size on disk, spread where it
hurts least. The damage of several layers is taken as the sum of their own (first order).
"""

from typing import Dict, Sequence

import numpy as np

STEPS = (-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4)  # levels tried around the target sparsity
MAX_LEVEL = 0.95


def levels_for(target: float) -> list:
    """The sparsity levels tried for each layer: the target and steps around it, within (0, 0.95]."""
    return sorted({round(target + d, 4) for d in STEPS if 0.0 < target + d <= MAX_LEVEL} | {round(target, 4)})


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Mean KL(p || q) over rows of probabilities."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1.0)
    q = np.clip(np.asarray(q, np.float64), 1e-7, 1.0)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def magnitude_mask(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """The kernel with its ``sparsity`` share of smallest-magnitude weights set to zero."""
    k = int(round(sparsity * kernel.size))
    if k <= 0:
        return kernel.copy()
    flat = np.abs(kernel).ravel()
    threshold = np.partition(flat, k - 1)[k - 1]
    out = kernel.copy()
    out[np.abs(kernel) <= threshold] = 0.0
    return out


def _magnitude_variants(model):
    """``variants`` for magnitude pruning: the layer's kernel masked at each level, the rest as is."""
    def variants(name, levels):
        weights = model.get_layer(name).get_weights()
        return {level: {name: [magnitude_mask(weights[0], level)] + weights[1:]} for level in levels}
    return variants


def layer_damage(model, names: Sequence[str], x: np.ndarray, levels: Sequence[float],
                 batch_size: int = 32, variants=None) -> Dict[str, Dict[float, float]]:
    """KL damage of pruning each layer alone at each level: ``{layer: {level: kl}}``.

    Args:
        variants: ``variants(name, levels) -> {level: {layer name: weights}}``, the weights that
            prune ``name`` at each level (OBS also moves a BatchNorm mean); default magnitude pruning.

    The model's weights are restored after each measurement.
    """
    x = np.asarray(x, dtype=np.float32)
    reference = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    damage = {}
    for name in names:
        options = (variants or _magnitude_variants(model))(name, levels)
        touched = {t for option in options.values() for t in option}
        saved = {t: model.get_layer(t).get_weights() for t in touched}
        damage[name] = {}
        try:
            for level, option in options.items():
                for target, weights in option.items():
                    model.get_layer(target).set_weights(weights)
                probs = model.predict(x, batch_size=batch_size, verbose=0)
                damage[name][float(level)] = kl_divergence(reference, probs)
        finally:
            for target, weights in saved.items():
                model.get_layer(target).set_weights(weights)
    return damage


def allocate(damage: Dict[str, Dict[float, float]], params: Dict[str, int], target: float) -> Dict[str, float]:
    """Per-layer sparsity holding at least ``target`` of all candidate weights as zeros, greedily.

    Every layer starts at its lowest level; the step with the least added damage per added zero is
    taken until the budget is met. A target below the lowest level gives every layer that level.
    """
    levels = {name: sorted(d) for name, d in damage.items()}
    at = {name: 0 for name in damage}
    total = sum(params[n] for n in damage)
    budget = target * total

    def zeros():
        return sum(levels[n][at[n]] * params[n] for n in damage)

    while zeros() < budget - 1e-9:
        best, best_cost = None, None
        for name in damage:
            if at[name] + 1 >= len(levels[name]):
                continue
            lo, hi = levels[name][at[name]], levels[name][at[name] + 1]
            added = (hi - lo) * params[name]
            cost = max(damage[name][hi] - damage[name][lo], 0.0) / added
            if best_cost is None or cost < best_cost:
                best, best_cost = name, cost
        if best is None:  # every layer at its top level
            break
        at[best] += 1
    return {name: float(levels[name][at[name]]) for name in damage}


def sensitivity_sparsity(model, names: Sequence[str], x: np.ndarray, target: float, variants=None) -> dict:
    """``{"per_layer": {layer: sparsity}, "damage": {layer: {level: kl}}, "target", "images"}``.

    Args:
        model: the unpruned float model (its weights are restored after every measurement).
        names: the layers to be pruned.
        x: training images (uint8 or float pixels) the damage is measured on.
        target: the uniform sparsity whose number of zeros the allocation keeps.
        variants: how a layer is pruned at each level (see :func:`layer_damage`); magnitude by default,
            :func:`edgecnn.compress.obs.level_weights` for ``--method obs``.
    """
    damage = layer_damage(model, names, x, levels_for(target), variants=variants)
    params = {n: int(np.prod(model.get_layer(n).get_weights()[0].shape)) for n in names}
    per_layer = allocate(damage, params, target)
    return {"per_layer": per_layer, "target": target, "images": int(len(x)),
            "damage": {n: {str(k): round(v, 6) for k, v in d.items()} for n, d in damage.items()}}
