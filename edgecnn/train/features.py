"""Phase 1's speed lever: the frozen base runs once per image; the head trains on the cache.

Features are cached in ``RUN_DIR/.cache/features-<key>.npz``. The key hashes what the features
depend on and nothing else: the base's weights (so ``--weights none`` with another seed misses),
the model config that shapes the input, the resize method, and each sample's file hash.
"""

import hashlib
import json

import numpy as np

from edgecnn import atomic

# Config fields that change the pooled features (dropout and the head do not).
_KEY_FIELDS = ("backbone", "alpha", "input_size", "rescale", "pool_layer", "cut_at")


def weights_digest(model) -> str:
    """sha256 over the values of a model's weights, in order."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(str(w.shape).encode())
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def cache_key(config: dict, weights_sha: str, resize: str, splits: dict, mixed_precision: bool) -> str:
    """Hex key of a feature cache; ``splits`` maps split name -> list of samples with ``sha256``."""
    spec = {k: config.get(k) for k in _KEY_FIELDS}
    spec.update(weights=weights_sha, resize=resize, mixed_precision=bool(mixed_precision),
                splits={name: [s.sha256 for s in samples] for name, samples in sorted(splits.items())})
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def extract(feature_model, dataset, verbose: int) -> np.ndarray:
    """Run the frozen base over a dataset of images (a Keras progress bar when verbose)."""
    return np.asarray(feature_model.predict(dataset, verbose=verbose), dtype=np.float32)


def extract_splits(feature_model, images: dict, batch_size: int, verbose: int) -> dict:
    """``{split: features}`` for ``{split: uint8 images}``, in one pass of the base over all of them.

    One ``predict`` over the splits chained: the base's graph is traced once, and the pipeline stays
    full across the split boundaries, instead of one traced, drained predict per split.
    """
    from edgecnn.train.pipeline import eval_dataset_of

    names = [name for name, x in images.items() if len(x)]
    dim = feature_model.output_shape[-1]
    out = {name: np.zeros((0, dim), np.float32) for name in images}
    if not names:
        return out
    feats = extract(feature_model, eval_dataset_of([images[n] for n in names], batch_size), verbose)
    bounds = np.cumsum([0] + [len(images[n]) for n in names])
    out.update({name: feats[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)})
    return out


def cached(cache_dir, key: str, compute, write: bool = True) -> tuple:
    """Return ``(features dict, hit)``: the cache file when present, else ``compute()`` saved to it
    (``write=False``: not saved, for a MultiWorker worker that only reads the chief's RUN_DIR).

    ``compute`` returns ``{split: float32 array}``. A damaged cache file is recomputed.
    """
    path = cache_dir / f"features-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return {name: data[name] for name in data.files}, True
        except (OSError, ValueError):
            if write:
                path.unlink()
    feats = compute()
    if not write:
        return feats, False
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **feats)
    return feats, False
