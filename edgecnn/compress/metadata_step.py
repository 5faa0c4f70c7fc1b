"""Convert's metadata step: standard TFLite metadata into every model of the bundle, before it is hashed.

The CPU model, its Edge TPU twin (``edgetpu_compiler`` drops metadata, so it is written again into
the compiled model) and each fallback (with the normalization of the bundle it came from) get the
labels, normalization and image properties (:mod:`edgecnn.converters.metadata`). Scores, accuracy
and golden samples were computed on the model without it: metadata changes no output.
"""

from dataclasses import replace
from pathlib import Path

from edgecnn.converters.metadata import About, ensure_metadata, with_metadata


def run_about(run: dict, labels, mode: str, color_order: str) -> About:
    """What a converted run's metadata says: names, the trained model's sha256 as the version, 0/1
    normalization (edgecnn's graph rescales itself, DESIGN rule 5)."""
    from edgecnn.bundle.manifest import sha256_file

    backbone = (run.get("model") or {}).get("backbone") or "image"
    return About(list(labels), name=f"edgecnn {backbone} classifier",
                 description=f"Classifies an image as one of {len(labels)} labels ({', '.join(labels[:10])}"
                             f"{', ...' if len(labels) > 10 else ''}); converted by edgecnn convert ({mode}) "
                             f"from {Path(run['run_dir']).name}.",
                 version="sha256:" + sha256_file(run["model_path"])[:16], color_order=color_order)


def write_metadata(files: dict, about: About, names, fallback_specs: dict):
    """Replace ``files[name]`` (bytes) for each of ``names``, and each fallback (a path, its ModelSpec in
    ``fallback_specs``), by the model with metadata. A fallback whose metadata already says its labels and
    normalization (one made by convert) stays byte for byte the model of the bundle it came from."""
    for name in names:
        files[name] = with_metadata(files[name], about)
    for name, spec in fallback_specs.items():
        files[name] = ensure_metadata(Path(files[name]).read_bytes(),
                                      replace(about, name=about.name + " (fallback)", mean=spec.input_mean,
                                              std=spec.input_std, color_order=spec.color_order),
                                      f"fallback '{files[name]}'")
