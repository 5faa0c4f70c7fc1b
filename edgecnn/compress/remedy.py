"""The remedy ladder for a run: ``edgecnn convert RUN_DIR --int8 --max-drop PP [--max-flips PCT]``.

:func:`edgecnn.converters.remedy.remedy_convert` is the ladder itself (a model in, the best
.tflite out); this module feeds it a run: the val split it measures on, the images flips are
counted on, and its QAT rung, which is :func:`edgecnn.compress.qat.train_qat` (the one QAT recipe;
remembered per model by :mod:`edgecnn.compress.qat_memo` so a QAT that failed is not retried).
"""

from typing import Callable, Optional

import numpy as np

from edgecnn.converters.criteria import DEFAULT_MAX_FLIPS_PCT
from edgecnn.converters.remedy import remedy_convert
from edgecnn.errors import ConversionError


def qat_trainer(train, val, labels, representative, seed: int = 0) -> Callable:
    """A ``qat(model)`` for :func:`remedy_convert`: :func:`edgecnn.compress.qat.train_qat` with its defaults
    (early stopping on the val images the ladder measures on). The model given is never changed."""
    def train_fn(model):
        from edgecnn.compress.qat import train_qat

        return train_qat(model, train, val, labels, representative, seed=seed)[0]

    return train_fn


def remedy_for_run(run: dict, model, representative: np.ndarray, size, resize: str, max_drop: Optional[float],
                   io: str = "uint8", edgetpu: bool = False, log: Callable = lambda msg: None,
                   max_flips: Optional[float] = DEFAULT_MAX_FLIPS_PCT, bias_correction: bool = True) -> dict:
    """:func:`remedy_convert` for ``edgecnn convert RUN_DIR --int8 --max-drop PP [--max-flips PCT]``.

    The drop is measured on the run's val split; flips on val, mirrored val, train and mirrored
    train. QAT is tried when the run recorded a train split (and is not already a QAT run), unless
    it already failed on this run's model. Returns :func:`remedy_convert`'s result plus
    ``float_layers`` (of the chosen model) and ``messages`` for the user.
    """
    from edgecnn.converters.representative import run_samples
    from edgecnn.data.pixels import load_images
    from edgecnn.compress.qat_memo import QatMemo

    val = run_samples(run, "val")
    if not val:
        raise ConversionError(f"--max-drop/--max-flips measure on the run's val split, and run '{run.get('run_dir')}' "
                              "recorded none. Convert without them, then check with `edgecnn evaluate`.")
    val_x, val_y = load_images(val, size, resize)
    train = run_samples(run, "train")
    train_xy = load_images(train, size, resize) if train else None
    qat = None
    if train_xy is not None and not run.get("qat"):
        qat = qat_trainer(train_xy, (val_x, val_y), run["labels"], representative)
    unlabeled = [train_xy[0], train_xy[0][:, :, ::-1]] if train_xy is not None else [np.asarray(representative)]
    fidelity = np.concatenate([val_x[:, :, ::-1]] + unlabeled)
    memo = QatMemo(run)
    result = remedy_convert(model, representative, val_x, val_y, max_drop, max_flips, io=io, edgetpu=edgetpu, qat=qat,
                            bias_correction=bias_correction and not run.get("qat"), fidelity_x=fidelity,
                            qat_skip=memo.skip_reason(), log=log)
    memo.record(next((a for a in result["attempts"] if a["name"] == "qat"), None))
    chosen = next(a for a in result["attempts"] if a.get("chosen"))
    result["float_layers"] = chosen.get("float_layers", [])
    verdict = "within" if result["within"] else "NOT within (kept the closest to the float model)"
    result["messages"] = [f"chose '{result['chosen']}' ({chosen['drop_pp']:.2f} pp on {len(val_y)} val images, top-1 "
                          f"changed on {chosen['flips']} of {chosen['flip_images']} val, train and mirror images, "
                          f"{verdict} --max-drop {max_drop if max_drop is not None else '-'} --max-flips "
                          f"{max_flips if max_flips is not None else '-'}) after {len(result['attempts'])} attempt(s)"]
    if result["float_layers"]:
        result["messages"].append("kept in float: " + ", ".join(result["float_layers"]))
    if result["quantization"] != "int8":
        result["messages"].append(f"no integer model was within the limits: the bundle holds a "
                                  f"{result['quantization']} model (float32 I/O; not for integer-only hardware)")
    return result
