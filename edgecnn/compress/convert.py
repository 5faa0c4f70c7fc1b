"""``edgecnn convert``: RUN_DIR -> BUNDLE_DIR (model.tflite, labels, manifest, golden samples).

Everything is computed in memory and checked first (conversion, integer-only verification, input
contract, accuracy, golden scores, Edge TPU report and compile); the bundle is then written in one
atomic step by ``edgecnn.bundle.manifest.write_bundle``, so a failure leaves no partial bundle and an
existing BUNDLE_DIR intact.
"""

from pathlib import Path
from typing import Optional, Sequence

from edgecnn.bundle.model import MODEL, MODEL_EDGETPU, ModelSpec
from edgecnn.compress.held_out import held_out_split, quick_accuracy, round_robin
from edgecnn.compress.metadata_step import run_about, write_metadata
from edgecnn.errors import ConversionError
from edgecnn.run import preprocessing

DEFAULT_CALIBRATION_SIZE = 100
DEFAULT_EVAL_SIZE = 500
DEFAULT_GOLDEN = 4


def _fallback_files(fallbacks: Sequence, labels) -> tuple:
    from edgecnn.bundle.manifest import model_path, verify_bundle

    files, names, info, specs = {}, [], [], {}
    for i, bundle in enumerate(fallbacks):
        manifest = verify_bundle(bundle)
        if list(manifest["labels"]) != list(labels):
            raise ConversionError(f"--fallback bundle '{bundle}' has labels {manifest['labels']}, but this model has "
                                  f"{list(labels)}. A fallback model must classify the same labels in the same order.")
        name = f"fallback_{i}.tflite"
        src = model_path(bundle, manifest)
        files[name] = src
        names.append(name)
        specs[name] = ModelSpec.from_manifest(manifest)  # its normalization goes into its metadata
        info.append({"file": name, "bundle": str(Path(bundle).resolve()),
                     "quantization": manifest["model"].get("quantization"),
                     "sha256": manifest["files"][ModelSpec.from_manifest(manifest).tflite]["sha256"]})
    return files, names, info, specs


def _check_space(out, files: dict, manifest: dict):
    """Refuse before writing when the bundle cannot fit (the old bundle stays until the new one is whole)."""
    import json

    from edgecnn.errors import check_free_space

    sizes = [len(c) if isinstance(c, (bytes, bytearray)) else Path(c).stat().st_size for c in files.values()]
    manifest_bytes = len(json.dumps(manifest, default=str)) + 200 * len(files)  # plus the files' sha256 entries
    check_free_space(Path(out).absolute().parent, sum(sizes) + manifest_bytes + 4096 * (len(files) + 2),
                     f"the bundle '{out}'")


def convert_run(run_dir, out, mode: str = "int8", io: str = "uint8", calibration=None,
                calibration_size: int = DEFAULT_CALIBRATION_SIZE, fallbacks: Sequence = (),
                edgetpu: bool = False, require_edgetpu: bool = False, eval_size: Optional[int] = DEFAULT_EVAL_SIZE,
                golden: int = DEFAULT_GOLDEN, seed: int = 0, edgetpu_timeout: float = 600.0,
                max_drop: Optional[float] = None, bias_correction: bool = True, max_flips: Optional[float] = None,
                progress=None) -> dict:
    """Convert a run's model and write BUNDLE_DIR ``out``.

    Args:
        run_dir: a finished RUN_DIR (finetune, prune or qat).
        out: the bundle folder (replaced atomically when it exists).
        mode: ``int8``, ``float16``, ``dynamic`` or ``float32``.
        io: I/O type of an int8 model (``uint8``, ``int8``, ``float32``).
        calibration: a calibration folder; None draws ``calibration_size`` images from the run's
            train split.
        fallbacks: other bundles whose model.tflite is added as a fallback model.
        edgetpu: also check Edge TPU compatibility and compile with ``edgetpu_compiler`` when
            present (implies int8 with uint8 I/O).
        require_edgetpu: fail when the compiler is absent or maps nothing to the TPU.
        eval_size: at most this many held-out images for the quick float-vs-quantized figure
            (None: all; 0: skip).
        golden: number of golden samples.
        max_drop: int8 only: run the remedy ladder (:mod:`edgecnn.converters.remedy`) and keep the
            first model within this top-1 accuracy drop (pp) on the val split; attempts go to the manifest.
        max_flips: int8 only: the ladder's other criterion, the percentage of images whose top-1
            differs from the float model's (either option runs the ladder; the default bound is
            :data:`edgecnn.converters.criteria.DEFAULT_MAX_FLIPS_PCT`).
        progress: a callable taking the ladder's progress lines (each attempt's figures).
        bias_correction: int8 only: correct the mean shift of int8 weight rounding before converting
            (:mod:`edgecnn.converters.bias_correction`; not for QAT runs, which learned their rounding;
            the remedy loop tries both itself).

    Returns:
        The manifest written, plus ``bundle`` (path) and ``messages`` (notes for the user).
    """
    if edgetpu and (mode != "int8" or io != "uint8"):
        raise ConversionError(f"--edgetpu needs --int8 with --io uint8 (got --{mode} --io {io}): the Edge TPU runs "
                              "full-integer models only.")
    src = _load_source(run_dir)
    calib_info, representative = _representative(src, mode, calibration, calibration_size, seed)
    conv = _quantize(src, mode, io, representative, max_drop, max_flips, edgetpu, bias_correction, progress)
    files = {MODEL: conv.content}
    fb_files, fb_names, fb_info, fb_specs = _fallback_files(fallbacks, src.labels)
    files.update(fb_files)
    split, held_out = held_out_split(src.run)
    metrics = _quick_metrics(src, conv.content, split, held_out, eval_size, calib_info)
    golden_files, golden_samples = _golden(src, conv.content, held_out, golden)
    files.update(golden_files)
    edgetpu_name, edgetpu_section = None, None
    if edgetpu:
        edgetpu_section, compiled = _edgetpu(conv, require_edgetpu, edgetpu_timeout)
        if compiled is not None:
            edgetpu_name = MODEL_EDGETPU
            files[edgetpu_name] = compiled
    write_metadata(files, run_about(src.run, src.labels, conv.mode, src.pre["color_order"]),  # before the hashes
                   [MODEL] + ([edgetpu_name] if edgetpu_name else []), fb_specs)
    manifest = _manifest(src, conv, calib_info, metrics, golden_samples, fb_names, fb_info, edgetpu_name,
                         edgetpu_section)
    return _write(out, files, manifest, conv)


class _Source:
    """The run being converted: run.json, labels, the Keras model, its input size and preprocessing."""

    def __init__(self, run: dict, model):
        from edgecnn.converters.tflite import static_input_size

        self.run, self.model = run, model
        self.labels = list(run["labels"])
        self.size = static_input_size(model)
        self.pre = preprocessing(run)
        self.resize = self.pre["resize"]


class _Converted:
    """The model converted: its bytes, the quantization it ended with, the remedy's record, notes."""

    def __init__(self, content: bytes, mode: str, remedy=None, bias_info=None, limits=(None, None), messages=()):
        self.content, self.mode, self.remedy, self.bias_info = content, mode, remedy, bias_info
        self.max_drop, self.max_flips = limits  # the remedy's bounds, as applied
        self.messages = list(messages)
        self.report = None


def _load_source(run_dir) -> _Source:
    from edgecnn.run import load_run, load_run_model

    run = load_run(run_dir)
    src = _Source(run, load_run_model(run))
    recorded = src.pre["input_size"]
    if recorded and recorded != src.size:
        raise ConversionError(f"run.json records input size {recorded} but the model takes {list(src.size)}; the "
                              "run is inconsistent. Re-run the step that wrote it.")
    return src


def _representative(src: _Source, mode: str, calibration, calibration_size: int, seed: int) -> tuple:
    """``(calibration info, images)`` for int8 (a calibration folder, or drawn from the train split)."""
    if mode != "int8":
        return None, None
    from edgecnn.converters.representative import draw_from_run, load_set
    from edgecnn.data.pixels import load_images

    if calibration is not None:
        samples, calib_info = load_set(calibration, src.labels)
    else:
        samples, calib_info = draw_from_run(src.run, calibration_size, seed)
    return calib_info, load_images(samples, src.size, src.resize)[0]


def _quantize(src: _Source, mode, io, representative, max_drop, max_flips, edgetpu, bias_correction,
              progress) -> _Converted:
    """Convert (through the remedy ladder when a drop or flip bound is given for int8), then verify."""
    from edgecnn.converters import tflite

    if (max_drop is not None or max_flips is not None) and mode == "int8":
        conv = _remedy(src, representative, io, max_drop, max_flips, edgetpu, bias_correction, progress)
    else:
        conv = _plain(src, mode, io, representative, bias_correction)
    if conv.remedy and conv.remedy["float_layers"]:  # layers kept in float on purpose: no integer-only check
        conv.report = tflite.describe(tflite.read_tflite(conv.content))
        conv.report["float_layers"] = conv.remedy["float_layers"]
    else:
        conv.report = tflite.verify_tflite(conv.content, conv.mode, io, src.size)
    return conv


def _remedy(src: _Source, representative, io, max_drop, max_flips, edgetpu, bias_correction, progress) -> _Converted:
    from edgecnn.compress.remedy import remedy_for_run
    from edgecnn.converters.criteria import DEFAULT_MAX_FLIPS_PCT

    max_flips = DEFAULT_MAX_FLIPS_PCT if max_flips is None else max_flips
    remedy = remedy_for_run(src.run, src.model, representative, src.size, src.resize, max_drop, io=io,
                            edgetpu=edgetpu, max_flips=max_flips, bias_correction=bias_correction,
                            log=progress or (lambda msg: None))
    # float16 when no integer model was within --max-drop; the remedy tries both bias corrections itself
    return _Converted(remedy["content"], remedy["quantization"], remedy=remedy, limits=(max_drop, max_flips),
                      messages=remedy["messages"])


def _plain(src: _Source, mode, io, representative, bias_correction) -> _Converted:
    from edgecnn.converters import tflite

    converted, bias_info = src.model, None
    if mode == "int8" and bias_correction and not src.run.get("qat"):
        from edgecnn.converters.bias_correction import bias_correct

        converted, corrected = bias_correct(src.model, representative)
        bias_info = {"applied": True, "layers": len(corrected["layers"]), "images": corrected["images"]}
    elif mode == "int8":
        bias_info = {"applied": False, "why": "a QAT run" if src.run.get("qat") else "--no-bias-correction"}
    return _Converted(tflite.convert_model(converted, mode, representative, io), mode, bias_info=bias_info)


def _quick_metrics(src: _Source, content: bytes, split, held_out, eval_size, calib_info) -> dict:
    """Float vs quantized accuracy on (a round robin of) the held-out split; {} when skipped."""
    if not held_out or eval_size == 0:
        return {}
    chosen = held_out if eval_size is None else round_robin(held_out, eval_size)
    metrics = quick_accuracy(src.model, content, chosen, src.labels, src.size, src.resize)
    metrics["data"] = {"run_dir": src.run["run_dir"], "split": split, "n": len(chosen)}
    metrics["calibration"] = calib_info and {k: v for k, v in calib_info.items() if k != "files"}
    metrics["note"] = "quick figure at conversion; `edgecnn evaluate` makes the full comparison"
    return metrics


def _golden(src: _Source, content: bytes, held_out, count: int) -> tuple:
    """``(files, samples)`` of ``count`` golden samples from the held-out split, one class after another."""
    if not (count and held_out):
        return {}, []
    from edgecnn.data.scan import load_image_rgb
    from edgecnn.devices.golden import golden_samples

    paths = [s.path for s in round_robin(held_out, count)]
    return golden_samples(content, [load_image_rgb(p) for p in paths], src.size, src.resize, backend="litert",
                          origins=[Path(p).name for p in paths])


def _edgetpu(conv: _Converted, require: bool, timeout: float) -> tuple:
    """``(report section, compiled model or None)``; the compiler's notes go to the messages."""
    from edgecnn.converters.edgetpu import edgetpu_step

    section, compiled, notes = edgetpu_step(conv.content, require=require, timeout=timeout)
    conv.messages.extend(notes)
    return section, compiled


def _manifest(src: _Source, conv: _Converted, calib_info, metrics, golden_samples, fb_names, fb_info, edgetpu_name,
              edgetpu_section) -> dict:
    from edgecnn.bundle.manifest import make_manifest, sha256_file

    run = src.run
    spec = ModelSpec(input_size=src.size, input_dtype=conv.report["input"]["dtype"],
                     output_dtype=conv.report["output"]["dtype"], quantization=conv.mode, edgetpu=edgetpu_name,
                     fallbacks=fb_names, resize=src.resize, color_order=src.pre["color_order"],
                     tflite_report=conv.report, bias_correction=conv.bias_info)
    source = {
        "run_dir": run["run_dir"],
        "run_json_sha256": sha256_file(Path(run["run_dir"]) / "run.json"),
        "model_sha256": sha256_file(run["model_path"]),
        "parent": run.get("parent"),
        "qat": bool(run.get("qat")),
        "pruning": run.get("pruning"),
        "fallbacks": fb_info,
        # where finetune cut the pretrained base (None: the whole base), from run.json's model config
        "cut_at": (run.get("model") or {}).get("cut_at"),
    }
    extra = {"edgetpu": edgetpu_section} if edgetpu_section is not None else {}
    remedy = conv.remedy
    if remedy is not None:
        extra["attempts"] = {"max_drop_pp": conv.max_drop, "max_flips_pct": conv.max_flips,
                             "chosen": remedy["chosen"], "within": remedy["within"],
                             "float_accuracy": remedy["float_accuracy"], "worst_layers": remedy["worst_layers"],
                             "tried": remedy["attempts"]}
    return make_manifest(src.labels, spec, metrics=metrics, calibration=calib_info, golden=golden_samples,
                         source=source, **extra)


def _write(out, files: dict, manifest: dict, conv: _Converted) -> dict:
    """Write the bundle in one atomic step (after checking it fits); return the result for the user."""
    from edgecnn.bundle.manifest import write_bundle

    _check_space(out, files, manifest)
    write_bundle(out, files, manifest)
    result = dict(manifest)
    result["bundle"] = str(Path(out).resolve())
    result["bytes"] = len(conv.content)
    result["messages"] = conv.messages
    return result
