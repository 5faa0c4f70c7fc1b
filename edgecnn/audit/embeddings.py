"""The pretrained base's pooled features of every image: the evidence of ``--method embedding`` and
of the label check (:mod:`edgecnn.audit.labels`).

The base is the one finetune would use (a registry backbone with a local weights file; nothing is
downloaded), cut at its global pooling: one vector per image. Two images whose vectors point the
same way (cosine similarity >= ``min_similarity``) look alike to the model. scikit-learn's
``NearestNeighbors`` finds those pairs (a kept library's radius search instead of a hand-written one).
"""

import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.errors import DataError

DEFAULT_MIN_SIMILARITY = 0.9


def base_from_weights(weights, backbone: Optional[str] = None, alpha: Optional[float] = None,
                      input_size: Optional[int] = None) -> dict:
    """``{"backbone", "alpha", "input_size", "weights"}`` for a local weights file: what the caller
    gives, the rest read from a name like ``mobilenet_v1_0.5_160_imagenet_notop.h5``."""
    from edgecnn.models.registry import BACKBONES

    path = Path(weights) if weights else None
    if path is None or not path.is_file():
        raise DataError(f"--weights '{weights}': no such file. The label check and --method embedding need the "
                        "pretrained base's weights file, for example "
                        "../shared/models/pretrained/mobilenet_v1_0.5_160_imagenet_notop.h5 (nothing is downloaded).")
    found = re.match(r"^(?P<name>[a-z0-9_]+?)(?:_(?P<alpha>\d+(?:\.\d+)?))?_(?P<size>\d+)_imagenet_notop\.h5$", path.name)
    guess = {}
    if found and found["name"] in BACKBONES:
        guess = {"backbone": found["name"], "alpha": float(found["alpha"]) if found["alpha"] else None,
                 "input_size": int(found["size"])}
    spec = {"backbone": backbone or guess.get("backbone"), "alpha": alpha if alpha is not None else guess.get("alpha"),
            "input_size": input_size or guess.get("input_size"), "weights": str(path)}
    if spec["backbone"] is None:
        raise DataError(f"--weights '{weights}': cannot tell the backbone from the file name; pass --backbone "
                        f"(one of {', '.join(sorted(BACKBONES))}) and, when not its default, --alpha and --input-size.")
    return spec


def pooled_features(records: Sequence, spec: dict, progress: bool = False, batch_size: int = 32) -> np.ndarray:
    """N x D float32 pooled features of the usable ``records`` (ImageRecords) with the base of ``spec``."""
    from edgecnn.data.folders import parallel_map
    from edgecnn.data.scan import load_image_rgb
    from edgecnn.devices.preprocess import resize_rgb
    from edgecnn.models.classifier import build_classifier, feature_extractor

    model, config = build_classifier(2, spec["backbone"], spec["input_size"], spec["alpha"], spec["weights"])
    extractor = feature_extractor(model)
    size = config["input_size"]
    out = []
    for start in range(0, len(records), 256):  # 256 images at a time: memory stays flat on big folders
        chunk = records[start:start + 256]
        images = parallel_map(lambda r: resize_rgb(load_image_rgb(r.path), (size, size), "area"), chunk,
                              progress, "Features")
        x = np.stack(images).astype(np.float32)
        out.append(np.asarray(extractor.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32))
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def check_similarity(min_similarity: float) -> None:
    if not 0.0 < float(min_similarity) <= 1.0:
        raise DataError(f"--min-similarity {min_similarity} must be in (0, 1]; 0.9 finds edited copies (cosine "
                        "similarity of the base's pooled features).")


def similar_pairs(features: np.ndarray, min_similarity: float = DEFAULT_MIN_SIMILARITY) -> List[Tuple[int, int, float]]:
    """``(i, j, cosine similarity)`` with ``i < j`` of every pair at or above ``min_similarity``, sorted."""
    from sklearn.neighbors import NearestNeighbors

    check_similarity(min_similarity)
    feats = np.asarray(features, dtype=np.float32)
    if len(feats) < 2:
        return []
    unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    # On unit vectors the euclidean distance is sqrt(2 - 2 cos): a radius search by euclidean distance
    # is a search by similarity.
    radius = float(np.sqrt(max(0.0, 2.0 - 2.0 * min_similarity)))
    index = NearestNeighbors(radius=radius).fit(unit)
    dists, neighbours = index.radius_neighbors(unit, return_distance=True)
    pairs = []
    for i, (dist, near) in enumerate(zip(dists, neighbours)):
        for d, j in zip(dist.tolist(), near.tolist()):
            if j > i:
                pairs.append((i, int(j), round(1.0 - d * d / 2.0, 4)))
    return sorted(pairs)


def run_features(run_dir, records: Sequence) -> Tuple[dict, Optional[np.ndarray]]:
    """``(base spec, features)`` from a finetune RUN_DIR: its base (run.json's model section) and, when
    its feature cache (``RUN_DIR/.cache/features-*.npz``) covers every record (matched by sha256), the
    features finetune computed, else None (the caller runs the base)."""
    from edgecnn.run import load_run

    run = load_run(run_dir)
    model = run.get("model", {})
    spec = {"backbone": model.get("backbone"), "alpha": model.get("alpha"), "input_size": model.get("input_size"),
            "weights": model.get("weights")}
    splits = {name: entries for name, entries in run.get("data", {}).get("splits", {}).items() if entries}
    by_sha = {}
    for path in sorted((Path(run_dir) / ".cache").glob("features-*.npz")):
        try:
            with np.load(path) as cache:
                if all(name in cache.files and len(cache[name]) == len(entries) for name, entries in splits.items()):
                    by_sha = {e["sha256"]: row for name, entries in splits.items()
                              for e, row in zip(entries, np.asarray(cache[name], dtype=np.float32))}
                    break
        except (OSError, ValueError):  # a damaged cache file: finetune would recompute it too
            continue
    if records and all(r.sha256 in by_sha for r in records):
        return spec, np.stack([by_sha[r.sha256] for r in records])
    if not (spec["weights"] and Path(str(spec["weights"])).is_file()):
        raise DataError(f"RUN_DIR '{run_dir}': its feature cache does not cover these images and its base weights "
                        f"'{spec['weights']}' are not a local file; pass --weights PATH instead of --run.")
    return spec, None
