"""``edgecnn bundle wrap|verify|export``: wrap an existing .tflite into a bundle; check a bundle; export its
model for MediaPipe, Picamera2 or Coral. No TensorFlow."""

import click

from edgecnn.bundle.model import DEFAULT_RESIZE, RESIZE_METHODS
from edgecnn.converters.export import FORMATS  # standard library and the bundle only: the board imports this too

from edgecnn.cli.common import emit, output_options


@click.group("bundle")
def bundle():
    """Wrap an existing .tflite into a bundle, verify a bundle, or export its model for other tools."""


@bundle.command("wrap")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--labels", default=None, type=click.Path(exists=True, dir_okay=False),
              help="One class name per line, in output order (default: the label file in the model's TFLite metadata).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The bundle folder to write.")
@click.option("--mean", type=float, default=None,
              help="Input mean: the model sees (pixel - mean) / std (default: the model's TFLite metadata, else 0).")
@click.option("--std", type=float, default=None,
              help="Input std (Coral ImageNet models: 127.5 or 128; default: the model's TFLite metadata, else 1).")
@click.option("--edgetpu-model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The *_edgetpu.tflite twin, stored as model_edgetpu.tflite.")
@click.option("--fallback", "fallbacks", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A fallback .tflite with the same labels; repeatable.")
@click.option("--resize", type=click.Choice(RESIZE_METHODS), default=DEFAULT_RESIZE, show_default=True,
              help="How frames are resized to the model's input: as its training images were.")
@click.option("--image", "images", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Golden sample image; repeatable (default: 3 synthetic images).")
@click.option("--backend", type=click.Choice(["auto", "litert", "tflite-runtime", "tensorflow"]), default="auto",
              show_default=True, help="Interpreter that computes the golden scores.")
@output_options
def wrap(model, labels, out, mean, std, edgetpu_model, fallbacks, resize, images, backend, quiet, as_json):
    """Wrap MODEL into a bundle with golden samples computed by the interpreter."""
    from edgecnn.bundle.manifest import load_manifest
    from edgecnn.devices.wrap import wrap_tflite

    path = wrap_tflite(model, labels, out, mean=mean, std=std, edgetpu_model=edgetpu_model, fallbacks=fallbacks,
                       resize=resize, images=list(images) or None, backend=backend)
    manifest = load_manifest(path)
    result = {"bundle": str(path), "files": sorted(manifest["files"]), "labels": len(manifest["labels"]),
              "model": manifest["model"], "golden": len(manifest["golden"])}
    emit(result, as_json, quiet, f"wrote bundle {path}: {len(manifest['labels'])} labels, "
                                 f"{len(manifest['golden'])} golden samples, files {', '.join(result['files'])}")


@bundle.command("verify")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--self-test", "self_test", is_flag=True, help="Also run the golden samples on this machine.")
@click.option("--backend", type=click.Choice(["auto", "litert", "tflite-runtime", "tensorflow"]), default="auto",
              show_default=True)
@output_options
def verify(bundle_dir, self_test, backend, quiet, as_json):
    """Check every file's sha256 (and with --self-test the golden samples); exit 2 naming what differs.

    With --json, one JSON object on stdout whatever the outcome (``ok`` false and ``errors`` when it fails).
    """
    from edgecnn.bundle.manifest import verify_bundle
    from edgecnn.errors import BundleError, EdgecnnError

    if self_test:
        from edgecnn.devices.selftest import self_test as run_self_test

        report = run_self_test(bundle_dir, backend)
    else:
        try:
            report = {"ok": True, "bundle": str(bundle_dir), "files": len(verify_bundle(bundle_dir)["files"])}
        except EdgecnnError as exc:
            report = {"ok": False, "bundle": str(bundle_dir), "errors": [str(exc)]}
    if not report["ok"]:
        if as_json:
            emit(report, True, quiet)
        what = "self-test" if self_test else "verification"
        raise BundleError(f"{what} of bundle '{bundle_dir}' failed: " + "; ".join(report["errors"]))
    summary = (lambda: "\n".join(f"ok  {line}" for line in report["checks"])) if self_test else \
        f"ok: {report['files']} files match their sha256 in {bundle_dir}"
    emit(report, as_json, quiet, summary)


@bundle.command("export")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="mediapipe: model.tflite with metadata; picamera2: + labels.txt and classify.py; coral: + "
                   "model_edgetpu.tflite and labels.txt as `index label`.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The folder to write (replaced).")
@output_options
def export(bundle_dir, fmt, out, quiet, as_json):
    """Write BUNDLE_DIR's model (with TFLite metadata) in the layout FORMAT's tools take; print the run command."""
    from edgecnn.converters.export import export_bundle

    result = export_bundle(bundle_dir, fmt, out)
    emit(result, as_json, quiet, lambda: "\n".join([f"wrote {result['out']}: {', '.join(result['files'])}"]
                                                   + [f"note: {m}" for m in result["messages"]]
                                                   + [f"run: {result['command']}"]))
