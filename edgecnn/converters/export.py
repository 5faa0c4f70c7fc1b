"""``edgecnn bundle export``: a bundle's model in the layout MediaPipe Tasks, Picamera2 or Coral's examples take.

Every exported model carries standard TFLite metadata (labels, normalization, image properties):
the bundle's own file when its metadata already says what the manifest says (``edgecnn convert``
writes it), else the model with metadata written from the manifest (a wrapped model without it,
or whose labels were overridden with ``--labels``). The folder is written atomically, with a
``RUN.txt`` holding the one command that runs it.
"""

from pathlib import Path

from edgecnn.bundle.manifest import model_path, verify_bundle
from edgecnn.bundle.model import MODEL, MODEL_EDGETPU, ModelSpec
from edgecnn.errors import BundleError

FORMATS = ("mediapipe", "picamera2", "coral")
RUN_FILE = "RUN.txt"

MEDIAPIPE_COMMAND = (
    "python3 -c \"import sys, mediapipe as mp; from mediapipe.tasks.python.vision import ImageClassifier as C; "
    "c = C.create_from_model_path('{model}'); [print(f, c.classify(mp.Image.create_from_file(f))"
    ".classifications[0].categories[0].category_name) for f in sys.argv[1:]]; c.close()\" photo.jpg")
PICAMERA2_COMMAND = "python3 classify.py --model model.tflite --labels labels.txt"
# pycoral's examples/classify_image.py normalizes by --input_mean/--input_std (defaults 128, 128)
CORAL_COMMAND = ("python3 examples/classify_image.py --model {model} --labels labels.txt --input photo.jpg "
                 "--input_mean {mean:g} --input_std {std:g}")


def _labelled(content: bytes, labels, spec: ModelSpec, where: str, name: str) -> bytes:
    """``content`` itself when its metadata matches the manifest, else with metadata written from it."""
    from edgecnn.converters.metadata import About, ensure_metadata

    return ensure_metadata(content, About(list(labels), name=name, mean=spec.input_mean, std=spec.input_std,
                                          color_order=spec.color_order,
                                          description=f"Classifies an image as one of {len(labels)} labels; "
                                                      "exported by edgecnn bundle export."), where)


def indexed_labels(labels) -> str:
    """Coral's and Picamera2's label file: ``index label`` per line."""
    return "".join(f"{i} {label}\n" for i, label in enumerate(labels))


def export_bundle(bundle_dir, fmt: str, out) -> dict:
    """Write the bundle's model for ``fmt`` (mediapipe, picamera2 or coral) into the folder ``out``.

    Returns:
        ``{"format", "out", "files", "command", "messages"}``.
    """
    from edgecnn.atomic import atomic_dir

    if fmt not in FORMATS:
        raise BundleError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")
    manifest = verify_bundle(bundle_dir)  # a bundle that fails its sha256 is not exported
    spec, labels = ModelSpec.from_manifest(manifest), list(manifest["labels"])
    name = (manifest.get("source") or {}).get("wrapped") or f"edgecnn {spec.quantization} classifier"
    cpu = model_path(bundle_dir, manifest)
    files = {MODEL: _labelled(cpu.read_bytes(), labels, spec, f"'{cpu}'", name)}
    messages = []
    if fmt == "mediapipe":
        command = MEDIAPIPE_COMMAND.format(model=MODEL)
        if spec.input_dtype not in ("uint8", "float32"):
            messages.append(f"MediaPipe Tasks takes uint8 or float32 image inputs; this model's is {spec.input_dtype} "
                            "(convert with --io uint8).")
    elif fmt == "picamera2":
        from edgecnn.converters.picamera2_script import picamera2_script

        files["labels.txt"] = indexed_labels(labels).encode("utf-8")
        files["classify.py"] = picamera2_script(name, spec.input_mean, spec.input_std, spec.resize).encode("utf-8")
        command = PICAMERA2_COMMAND
    else:
        files["labels.txt"] = indexed_labels(labels).encode("utf-8")
        tpu = model_path(bundle_dir, manifest, edgetpu=True)
        if tpu is not None:
            files[MODEL_EDGETPU] = _labelled(tpu.read_bytes(), labels, spec, f"'{tpu}'", name)
        else:
            messages.append("the bundle has no model_edgetpu.tflite (convert --edgetpu where edgetpu_compiler is "
                            "installed): Coral's example runs model.tflite on the CPU.")
        command = CORAL_COMMAND.format(model=MODEL_EDGETPU if tpu else MODEL, mean=spec.input_mean, std=spec.input_std)
    if spec.color_order != "RGB":
        messages.append(f"the model takes {spec.color_order} input; {fmt} feeds RGB.")
    files[RUN_FILE] = (command + "\n").encode("utf-8")
    with atomic_dir(out) as tmp:
        for rel, data in files.items():
            (tmp / rel).write_bytes(data)
    return {"format": fmt, "out": str(Path(out).resolve()), "files": sorted(files), "command": command,
            "messages": messages}
