"""tfmot's side of ``edgecnn prune``: which layers are prunable, the sparsity schedules, wrapping a
flat model's prunable layers, and the sparsity actually reached (with N:M structure when asked).

``prune_low_magnitude`` refuses a whole model that contains Rescaling, so only the prunable layers
are wrapped, through ``keras.models.clone_model(model, clone_function=...)``.
"""

import fnmatch
from typing import Optional, Sequence

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.tf import keras, tfmot

SCHEDULES = ("polynomial", "constant")
RAMP_FRACTION = 0.6       # share of the fine-tuning steps over which the polynomial schedule ramps up
UPDATES_PER_EPOCH = 4     # mask updates per epoch during the ramp


def _prunable(layer, include_depthwise: bool) -> bool:
    types = (keras.layers.Conv2D, keras.layers.Dense)
    if include_depthwise:
        types = types + (keras.layers.DepthwiseConv2D,)
    return isinstance(layer, types) and not isinstance(layer, keras.layers.Conv2DTranspose)


def make_schedule(kind: str, sparsity: float, total_steps: int, steps_per_epoch: int):
    """The tfmot pruning schedule and a JSON description of it."""
    sched = tfmot().sparsity.keras
    frequency = max(1, steps_per_epoch // UPDATES_PER_EPOCH)
    if kind == "constant":
        return sched.ConstantSparsity(sparsity, begin_step=0, frequency=frequency), \
            {"kind": "constant", "sparsity": sparsity, "begin_step": 0, "frequency": frequency}
    if kind != "polynomial":
        raise EdgecnnError(f"--schedule '{kind}' is not one of {', '.join(SCHEDULES)}.")
    # end_step is a multiple of the frequency, so the last mask update reaches the final sparsity.
    end = max(frequency, int(total_steps * RAMP_FRACTION) // frequency * frequency)
    return sched.PolynomialDecay(initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=end,
                                 frequency=frequency), \
        {"kind": "polynomial", "initial_sparsity": 0.0, "final_sparsity": sparsity, "begin_step": 0,
         "end_step": end, "frequency": frequency, "total_steps": total_steps}


def fixed_mask_schedule(sparsity: float):
    """A ConstantSparsity that computes the mask once and keeps it: fine-tuning after ``--method obs``
    keeps the zeros the reconstruction chose (they are the smallest weights). The wrapper counts
    steps from 1 before it checks the schedule, so the one update is at step 1, before any gradient."""
    return tfmot().sparsity.keras.ConstantSparsity(sparsity, begin_step=1, end_step=1, frequency=1)


def prunable_names(model, exclude: Sequence[str] = (), include_depthwise: bool = False, min_params: int = 0):
    """Names of the layers to prune (those ``wrap_for_pruning`` wraps); an error when there are none."""
    names = [layer.name for layer in model.layers
             if _prunable(layer, include_depthwise) and not any(fnmatch.fnmatchcase(layer.name, p) for p in exclude)
             and int(np.prod(layer.get_weights()[0].shape)) >= min_params]
    if not names:
        raise EdgecnnError(f"no layer to prune: every Conv2D/Dense layer matches --exclude {list(exclude)} or has "
                           f"fewer than --min-params {min_params} weights. Exclude fewer layers.")
    return names


def wrap_for_pruning(model, schedule, exclude: Sequence[str] = (), include_depthwise: bool = False,
                     m_by_n=None, min_params: int = 0, schedules: Optional[dict] = None):
    """Clone ``model`` with prunable layers wrapped by ``prune_low_magnitude``; return (model, names).

    ``schedules`` maps layer names to their own schedule (per-layer sparsity); others get ``schedule``.
    """
    sparsity = tfmot().sparsity.keras
    wrapped = []
    chosen = set(prunable_names(model, exclude, include_depthwise, min_params))
    schedules = schedules or {}

    def clone(layer):
        if layer.name in chosen:
            wrapped.append(layer.name)
            kwargs = {"sparsity_m_by_n": m_by_n} if m_by_n else {}
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedules.get(layer.name, schedule), **kwargs)
        return layer  # reused as is (same weights)

    pruned = keras.models.clone_model(model, clone_function=clone)
    return pruned, wrapped


def sparsity_report(model, names: Sequence[str], m_by_n=None) -> dict:
    """Zeros per pruned layer's kernel, over pruned kernels, and over all weights."""
    layers = {}
    zeros = total = 0
    for name in names:
        kernel = model.get_layer(name).get_weights()[0]
        z = int(np.sum(kernel == 0))
        entry = {"sparsity": z / kernel.size, "params": int(kernel.size)}
        if m_by_n:
            from tensorflow_model_optimization.python.core.sparsity.keras.pruning_utils import is_pruned_m_by_n

            from edgecnn.tf import tf

            entry["m_by_n_ok"] = bool(is_pruned_m_by_n(tf.constant(kernel), m_by_n)) if kernel.ndim in (2, 4) \
                else None
        layers[name] = entry
        zeros, total = zeros + z, total + kernel.size
    all_w = [np.asarray(w) for w in model.get_weights()]
    all_zeros = sum(int(np.sum(w == 0)) for w in all_w)
    all_size = sum(w.size for w in all_w)
    return {"layers": layers, "pruned_params": int(total), "pruned_sparsity": zeros / max(total, 1),
            "overall_sparsity": all_zeros / max(all_size, 1), "total_params": int(all_size)}
