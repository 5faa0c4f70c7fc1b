"""``edgecnn run BUNDLE --self-test``: prove on the board that files, preprocessing and interpreter
agree with the workstation.

Checks, in order: every file's sha256 (:func:`edgecnn.bundle.manifest.verify_bundle`), each model loads and
invokes (in a child process, so a corrupt file cannot crash the caller), and each golden sample:
its lossless source image decoded with OpenCV, converted and resized with the manifest's method
must equal the stored input exactly, and the interpreter's dequantized scores on that input must
match the stored scores within ``atol``.
"""

import json
import sys
from pathlib import Path

import numpy as np

from edgecnn.bundle.manifest import load_golden, verify_bundle
from edgecnn.bundle.model import ModelSpec
from edgecnn.devices import backends
from edgecnn.devices.imageio import read_image
from edgecnn.errors import BundleError, EdgecnnError


def self_test(bundle_dir, backend="auto", threads=None, edgetpu=False) -> dict:
    """Run every check; return ``{"ok", "bundle", "checks": [...], "errors": [...]}`` (never raises)."""
    from edgecnn.devices.engine import Engine
    from edgecnn.devices.preprocess import resize_rgb

    bundle_dir = Path(bundle_dir)
    report = {"ok": False, "bundle": str(bundle_dir), "checks": [], "errors": []}
    errors, checks = report["errors"], report["checks"]
    try:
        manifest = verify_bundle(bundle_dir)
        checks.append(f"sha256 of {len(manifest['files'])} files")
        spec = ModelSpec.from_manifest(manifest)
        for name in [spec.tflite] + list(spec.fallbacks):
            backends.probe_model(bundle_dir / name, backend, threads)
            checks.append(f"{name} loads and invokes")
        events = []
        engine = Engine(bundle_dir, backend, threads, edgetpu=edgetpu, on_event=events.append, verify=False,
                        probe=False)
    except EdgecnnError as exc:
        errors.append(str(exc))
        return report
    try:
        report["backend"], report["device"] = engine.primary.backend.name, engine.primary.device
        report["events"] = events
        samples = list(load_golden(bundle_dir, manifest))
        if not samples:
            checks.append("no golden samples in this bundle (only files and loading were checked)")
        for sample, expected_input in samples:
            name = sample["input"]
            if sample.get("source"):
                try:  # through bytes: a bundle under a non-UTF-8 path crashed cv2.imread
                    bgr = read_image(bundle_dir / sample["source"])
                except EdgecnnError as exc:
                    bgr = None
                    errors.append(f"golden source '{sample['source']}' cannot be used: {exc}")
                if bgr is not None:
                    got = resize_rgb(engine.rgb(bgr), engine.primary.size, engine.spec.resize)
                    if got.shape != expected_input.shape or not np.array_equal(got, expected_input):
                        diff = (np.abs(got.astype(int) - expected_input.astype(int))
                                if got.shape == expected_input.shape else None)
                        where = (f"{int((diff > 0).any(-1).sum())} pixels differ, max {int(diff.max())}"
                                 if diff is not None else f"shape {got.shape} vs {expected_input.shape}")
                        errors.append(f"preprocessing of '{sample['source']}' differs from '{name}' ({where}): "
                                      "the board's OpenCV resize disagrees with the workstation's")
                    else:
                        checks.append(f"{sample['source']} preprocesses to {name}")
            scores = engine.primary.invoke(engine.primary.tensor(expected_input))
            want = np.asarray(sample["scores"], dtype=np.float32)
            atol = float(sample.get("atol", 1e-3))
            if scores.shape != want.shape:
                errors.append(f"golden '{name}': model gives {scores.shape[0]} scores, the bundle stores {want.shape[0]}")
                continue
            diff = np.abs(scores - want)
            worst = int(np.argmax(diff))
            if diff[worst] > atol + 1e-6:
                label = engine.labels[worst] if worst < len(engine.labels) else worst
                errors.append(f"golden '{name}': score of class {worst} ({label}) is {scores[worst]:.5f} on the board "
                              f"but {want[worst]:.5f} on the workstation (|diff| {diff[worst]:.5f} > atol {atol:g})")
            else:
                checks.append(f"{name} scores match within {atol:g} (max diff {float(diff.max()):.5f})")
    except EdgecnnError as exc:
        errors.append(str(exc))
    except (RuntimeError, ValueError) as exc:
        errors.append(f"interpreter error during the self-test: {exc}")
    finally:
        engine.close()
    report["ok"] = not errors
    return report


def check(bundle_dir, backend="auto", threads=None, edgetpu=False) -> dict:
    """:func:`self_test`, raising a BundleError that names every mismatch when it fails."""
    report = self_test(bundle_dir, backend, threads, edgetpu)
    if not report["ok"]:
        raise BundleError(f"self-test of bundle '{bundle_dir}' failed: " + "; ".join(report["errors"]))
    return report


def self_test_subprocess(bundle_dir, backend="auto", threads=None, timeout=120.0) -> dict:
    """:func:`self_test` in a child process: a model that crashes the interpreter only kills the child."""
    import subprocess

    cmd = [sys.executable, "-m", "edgecnn.devices.selftest", str(bundle_dir), "--backend", backend]
    if threads:
        cmd += ["--threads", str(threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "bundle": str(bundle_dir), "errors": [f"self-test hung for {timeout:.0f} s"]}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    return {"ok": False, "bundle": str(bundle_dir),
            "errors": [f"self-test process died (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"]}


def _main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Self-test a bundle; print one JSON report.")
    parser.add_argument("bundle")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    report = self_test(args.bundle, args.backend, args.threads)
    print(json.dumps(report, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(_main())
