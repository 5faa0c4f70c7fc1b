"""``edgecnn probe-cuts``: every cut point of a base, measured on DATA_DIR, with its cost on a board.

The accuracy column is :mod:`edgecnn.train.cut_probe`'s (one pass of the base, a linear probe per
cut); this module adds what the search knows about cost: the MACs of the model cut there (the base
up to the cut plus the dense head, counted as :func:`edgecnn.search.estimate.count_keras` counts a
trial) and the latency those MACs give on ``--target``'s fitted profile. Latencies are estimates
and labelled so; ``edgecnn benchmark`` on the board measures a converted bundle.
"""

from pathlib import Path

from edgecnn.search.estimate import OP_TYPES, count_keras, estimate_ms, load_profile, total_macs

DEFAULT_TARGET = "rpi4"


def add_costs(result: dict, found, num_classes: int, target: str) -> dict:
    """Give each row of a probe ``macs``, ``latency_ms`` and ``latency_kind`` on ``target``'s profile."""
    from edgecnn.models.cuts import truncate

    profile = load_profile(target)
    for row in result["cuts"]:
        counts = count_keras(truncate(found.model, row["cut_at"]))
        counts["fully_connected"] += row["channels"] * num_classes  # the head's dense layer
        row["macs"] = total_macs(counts)
        row["latency_ms"] = round(estimate_ms(counts, profile), 3)
        row["latency_kind"] = "estimate"
    result["target"] = {"profile": profile["name"], "fit_error": profile["fit_error"], "op_types": list(OP_TYPES)}
    return result


def probe_cuts(data_dir, backbone: str = "mobilenet_v2", alpha=None, input_size=None, weights="imagenet",
               base=None, target: str = DEFAULT_TARGET, max_drop=None, batch_size: int = 32, seed: int = 0,
               plot=None, progress: bool = False) -> dict:
    """Probe every cut of a base on ``data_dir``'s train and val splits (finetune's split, same seed).

    Returns:
        The probe's result (:func:`edgecnn.train.cut_probe.probe`) with costs per cut, ``base``, ``data``
        and ``plot`` (the path written, or None).
    """
    from edgecnn.data.dataset import load_dataset
    from edgecnn.data.pixels import load_images
    from edgecnn.models.classifier import load_base
    from edgecnn.train import cut_probe

    dataset = load_dataset(data_dir, seed=seed, progress=progress)
    found = load_base(backbone, input_size, alpha, weights, base)
    images, y = {}, {}
    for split in ("train", "val"):
        images[split], y[split] = load_images(dataset.splits[split], found.size, progress=progress)
    result = cut_probe.probe(found, images, y, len(dataset.labels), batch_size, seed,
                             cut_probe.DEFAULT_MAX_DROP if max_drop is None else max_drop)
    add_costs(result, found, len(dataset.labels), target)
    result["base"] = {"backbone": found.name, "alpha": found.alpha, "input_size": found.size,
                      "weights": str(base or weights)}
    result["data"] = {"root": str(dataset.root), "train": len(y["train"]), "val": len(y["val"])}
    result["plot"] = str(write_plot(result, plot)) if plot else None
    return result


def write_plot(result: dict, path) -> Path:
    """Val accuracy against estimated latency, one point per cut, the ``auto`` choice marked (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgecnn import atomic

    rows = result["cuts"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot([r["latency_ms"] for r in rows], [r["val_accuracy"] for r in rows], "o-", color="tab:blue")
    for r in rows:
        ax.annotate(str(r["index"]), (r["latency_ms"], r["val_accuracy"]), textcoords="offset points",
                    xytext=(3, 3), fontsize=7)
    auto = result["auto"]
    ax.plot([auto["latency_ms"]], [auto["val_accuracy"]], "*", color="tab:red", markersize=16,
            label=f"auto: #{auto['index']} {auto['cut_at']}")
    ax.set_xlabel(f"latency on {result['target']['profile']} (ms, estimate)")
    ax.set_ylabel("val accuracy (linear probe)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
