"""The two criteria a quantized model is held to, with one meaning in ``convert`` and ``evaluate``.

- ``--max-drop PP``: the top-1 **accuracy** drop against the float model, in percentage points, on
  labelled images (``convert``: the run's val split; ``evaluate``: the evaluated images).
- ``--max-flips PCT``: the percentage of images whose top-1 **differs from the float model's**
  (no labels needed, so ``convert`` also counts train images and mirror images; ``evaluate`` counts
  the evaluated images). A model can flip one image each way and show no drop; flips are what a
  larger test set turns into a drop.

The default flip bound is what int8 usually reaches on a healthy model: a few images in a hundred
near the decision boundary change side; more than that means a damaged layer.
"""

import math

import numpy as np

from edgecnn.devices.decision import top1

DEFAULT_MAX_FLIPS_PCT = 2.0
# One-sided 95% normal quantile: a later remedy rung must beat the current one beyond this noise.
NOISE_Z = 1.645


def drop_pp(reference_accuracy: float, accuracy: float) -> float:
    """Accuracy drop in percentage points (positive: worse than the reference)."""
    return round((float(reference_accuracy) - float(accuracy)) * 100.0, 4)


def flipped(reference_probs, probs) -> np.ndarray:
    """Boolean mask of the images whose top-1 differs between the two N×C score arrays."""
    return top1(np.asarray(reference_probs)) != top1(np.asarray(probs))


def flip_pct(reference_probs, probs) -> float:
    """Percentage of images whose top-1 changed against the reference."""
    mask = flipped(reference_probs, probs)
    return round(100.0 * float(mask.mean()), 4) if mask.size else 0.0


def failures(name: str, drop: float, flips: float, max_drop=None, max_flips=None) -> list:
    """The criteria ``name`` fails, as sentences (empty: within both)."""
    out = []
    if max_drop is not None and drop > max_drop:
        out.append(f"{name}: top-1 accuracy dropped {drop:.2f} pp (limit --max-drop {max_drop:g})")
    if max_flips is not None and flips > max_flips:
        out.append(f"{name}: top-1 changed against the float model on {flips:.2f}% of images "
                   f"(limit --max-flips {max_flips:g})")
    return out


def better_beyond_noise(flips_new: np.ndarray, flips_old: np.ndarray, z: float = NOISE_Z) -> bool:
    """Whether a model flipping ``flips_new`` is better than one flipping ``flips_old`` beyond noise.

    A paired (McNemar) comparison on the same images: of the images where exactly one of the two
    disagrees with the float model, the new one must win more than ``z`` standard deviations above
    an even split. Two models that each flip a few different images are a tie, and a tie keeps
    the old (earlier, simpler) one.
    """
    gained = int(np.sum(flips_old & ~flips_new))
    lost = int(np.sum(flips_new & ~flips_old))
    return gained - lost > z * math.sqrt(gained + lost) if gained + lost else False
