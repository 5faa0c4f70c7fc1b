"""Hostile and careless inputs to every workstation command, through the real `edgecnn` CLI.

Each case must exit 2 with exactly one `Error:` line that names the value at fault, and print no
traceback. The first case of each command runs the real script in a subprocess; the others run the
same `cli` in this process (click's runner), which saves a TensorFlow import per case (about 60 cases). Board commands (`run`, `benchmark`, `bundle verify`) have their
own suite in tests/device.
"""

import json
import os
import shutil

import pytest

from cli_helpers import assert_user_error, edgecnn, edgecnn_in_process

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

MICRO = ["--backbone", "mobilenet_v1", "--alpha", "0.25", "--input-size", "32", "--weights", "none", "--epochs", "1",
         "--fine-tune-epochs", "0"]


@pytest.fixture(scope="module")
def bad(tmp_path_factory, mini_run, demo_data):
    """Paths of bad inputs, built once: ``{name: path}`` (``run`` and ``bundle`` are good ones)."""
    from edgecnn.compress.convert import convert_run
    from edgecnn.tf import keras

    root = tmp_path_factory.mktemp("hostile")
    p = {"run": mini_run, "data": demo_data, "missing": root / "does-not-exist"}
    p["file"] = root / "a-file.txt"
    p["file"].write_text("not a folder\n")
    p["under_file"] = p["file"] / "sub"
    p["one_class"] = root / "one_class"
    shutil.copytree(demo_data / "circle", p["one_class"] / "circle")
    p["empty_classes"] = root / "empty_classes"
    for name in ("a", "b"):
        (p["empty_classes"] / name).mkdir(parents=True)
    p["junk_classes"] = root / "junk_classes"
    for name in ("a", "b"):
        (p["junk_classes"] / name).mkdir(parents=True)
        (p["junk_classes"] / name / "x.jpg").write_bytes(b"no image at all")
    p["latin1_class"] = root / "latin1_class"
    shutil.copytree(demo_data, p["latin1_class"])
    os.rename(os.fsencode(p["latin1_class"] / "circle"), os.path.join(os.fsencode(p["latin1_class"]), b"caf\xe9"))
    p["garbage_keras"] = root / "garbage.keras"
    p["garbage_keras"].write_bytes(b"PK\x03\x04 not really a zip")
    p["garbage_h5"] = root / "garbage.h5"
    p["garbage_h5"].write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    p["dynamic_base"] = root / "dynamic_base.keras"
    inputs = keras.Input((None, None, 3))
    keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)).save(p["dynamic_base"])
    for name, edit in (("run_no_model", lambda d: (d / "model.keras").unlink()),
                       ("run_bad_json", lambda d: (d / "run.json").write_text("{")),
                       ("run_garbage_model", lambda d: (d / "model.keras").write_bytes(b"garbage"))):
        p[name] = root / name
        shutil.copytree(mini_run, p[name])
        edit(p[name])
    p["empty_dir"] = root / "empty_dir"
    p["empty_dir"].mkdir()
    p["junk_calibration"] = root / "junk_calibration"
    (p["junk_calibration"] / "circle").mkdir(parents=True)
    (p["junk_calibration"] / "circle" / "x.jpg").write_bytes(b"no image")
    p["bundle"] = root / "bundle"
    convert_run(mini_run, p["bundle"], calibration_size=16, eval_size=0, golden=1)
    p["bundle_bad_manifest"] = root / "bundle_bad_manifest"
    shutil.copytree(p["bundle"], p["bundle_bad_manifest"])
    (p["bundle_bad_manifest"] / "edgecnn.json").write_text("{ not json")
    p["bundle_flipped"] = root / "bundle_flipped"
    shutil.copytree(p["bundle"], p["bundle_flipped"])
    model = bytearray((p["bundle_flipped"] / "model.tflite").read_bytes())
    model[len(model) // 2] ^= 0xFF
    (p["bundle_flipped"] / "model.tflite").write_bytes(bytes(model))
    p["labels_latin1"] = root / "labels_latin1.txt"
    p["labels_latin1"].write_bytes(b"circle\nsquare\nstripes\ncaf\xe9\n")
    p["labels_two"] = root / "labels_two.txt"
    p["labels_two"].write_text("a\nb\n")
    p["garbage_tflite"] = root / "garbage.tflite"
    p["garbage_tflite"].write_bytes(b"TFL3 but not a flatbuffer at all")
    p["groups_bad"] = root / "groups.csv"
    p["groups_bad"].write_text("this,is,not\nthe,format,wanted\n")
    return p


# (case id, argv with {name} for the paths above, fragments the Error line must hold)
CASES = [
    # finetune
    ("finetune-missing-data", ["finetune", "{missing}", "--out", "{root}/r1"], ["{missing}", "does not exist"]),
    ("finetune-data-is-a-file", ["finetune", "{file}", "--out", "{root}/r2"], ["{file}"]),
    ("finetune-one-class", ["finetune", "{one_class}", "--out", "{root}/r3"], ["only one class"]),
    ("finetune-empty-classes", ["finetune", "{empty_classes}", "--out", "{root}/r4"], ["no usable images"]),
    ("finetune-only-junk", ["finetune", "{junk_classes}", "--out", "{root}/r5"], ["no usable images"]),
    ("finetune-latin1-class", ["finetune", "{latin1_class}", "--out", "{root}/r6"], ["caf\\xe9", "UTF-8"]),
    ("finetune-out-is-a-file", ["finetune", "{data}", "--out", "{file}"], ["{file}", "is a file"]),
    ("finetune-out-under-a-file", ["finetune", "{data}", "--out", "{under_file}"], ["{under_file}"]),
    ("finetune-missing-base", ["finetune", "{data}", "--out", "{root}/r7", "--base", "{missing}"], ["{missing}"]),
    ("finetune-garbage-base", ["finetune", "{data}", "--out", "{root}/r8", "--base", "{garbage_keras}"],
     ["{garbage_keras}"]),
    ("finetune-garbage-h5-base", ["finetune", "{data}", "--out", "{root}/r9", "--base", "{garbage_h5}"],
     ["{garbage_h5}"]),
    ("finetune-dynamic-base", ["finetune", "{data}", "--out", "{root}/r10", "--base", "{dynamic_base}"],
     ["{dynamic_base}", "fixed square input"]),
    ("finetune-missing-weights", ["finetune", "{data}", "--out", "{root}/r11", "--backbone", "mobilenet_v1",
                                  "--alpha", "0.25", "--input-size", "128", "--weights", "{missing}"], ["{missing}"]),
    ("finetune-garbage-weights", ["finetune", "{data}", "--out", "{root}/r12", "--backbone", "mobilenet_v1",
                                  "--alpha", "0.25", "--input-size", "128", "--weights", "{garbage_h5}"],
     ["{garbage_h5}"]),
    ("finetune-unknown-backbone", ["finetune", "{data}", "--out", "{root}/r13", "--backbone", "resnet9000"],
     ["resnet9000"]),
    ("finetune-zero-epochs", ["finetune", "{data}", "--out", "{root}/r14", "--epochs", "0"], ["--epochs"]),
    ("finetune-dropout-1.5", ["finetune", "{data}", "--out", "{root}/r15", "--dropout", "1.5"], ["--dropout"]),
    ("finetune-negative-lr", ["finetune", "{data}", "--out", "{root}/r16", "--lr", "-1"], ["--lr"]),
    ("finetune-val-fraction-1", ["finetune", "{data}", "--out", "{root}/r17", "--val-fraction", "1.0"],
     ["val_fraction"]),
    ("finetune-both-unfreeze", ["finetune", "{data}", "--out", "{root}/r18", "--unfreeze-top", "3",
                                "--unfreeze-from", "x"], ["--unfreeze-top", "--unfreeze-from"]),
    ("finetune-unknown-unfreeze-layer", ["finetune", "{data}", "--out", "{root}/r19", *MICRO, "--fine-tune-epochs",
                                         "1", "--unfreeze-from", "no_such_layer"], ["no_such_layer"]),
    # convert
    ("convert-missing-run", ["convert", "{missing}", "--out", "{root}/b1"], ["{missing}", "does not exist"]),
    ("convert-run-without-model", ["convert", "{run_no_model}", "--out", "{root}/b2"], ["model.keras"]),
    ("convert-run-bad-json", ["convert", "{run_bad_json}", "--out", "{root}/b3"], ["run.json", "not valid JSON"]),
    ("convert-garbage-model", ["convert", "{run_garbage_model}", "--out", "{root}/b4"], ["model.keras"]),
    ("convert-empty-calibration", ["convert", "{run}", "--out", "{root}/b5", "--calibration", "{empty_dir}"],
     ["{empty_dir}"]),
    ("convert-junk-calibration", ["convert", "{run}", "--out", "{root}/b6", "--calibration", "{junk_calibration}"],
     ["x.jpg"]),
    ("convert-out-is-a-file", ["convert", "{run}", "--out", "{file}", "--calibration-size", "8"], ["{file}"]),
    ("convert-out-under-a-file", ["convert", "{run}", "--out", "{under_file}", "--calibration-size", "8"],
     ["{under_file}"]),
    ("convert-fallback-not-a-bundle", ["convert", "{run}", "--out", "{root}/b7", "--fallback", "{empty_dir}"],
     ["{empty_dir}"]),
    ("convert-fallback-corrupt", ["convert", "{run}", "--out", "{root}/b8", "--fallback", "{bundle_flipped}"],
     ["model.tflite", "sha256"]),
    ("convert-edgetpu-float16", ["convert", "{run}", "--out", "{root}/b9", "--float16", "--edgetpu"], ["--edgetpu"]),
    # evaluate
    ("evaluate-missing-bundle", ["evaluate", "{missing}", "--against", "{run}"], ["{missing}"]),
    ("evaluate-bad-manifest", ["evaluate", "{bundle_bad_manifest}", "--against", "{run}"], ["edgecnn.json"]),
    ("evaluate-corrupt-model", ["evaluate", "{bundle_flipped}", "--against", "{run}"], ["sha256"]),
    ("evaluate-garbage-against", ["evaluate", "{bundle}", "--against", "{run_garbage_model}"], ["model.keras"]),
    ("evaluate-bad-groups", ["evaluate", "{bundle}", "--against", "{run}", "--groups", "{groups_bad}"],
     ["{groups_bad}"]),
    # calibrate
    ("calibrate-not-a-bundle", ["calibrate", "{empty_dir}", "--against", "{run}"], ["edgecnn.json"]),
    ("calibrate-missing-run", ["calibrate", "{bundle}", "--against", "{missing}"], ["{missing}"]),
    ("calibrate-precision-1.5", ["calibrate", "{bundle}", "--against", "{run}", "--target-precision", "1.5"],
     ["1.5"]),
    ("calibrate-coverage-negative", ["calibrate", "{bundle}", "--against", "{run}", "--coverage", "-0.5"], ["-0.5"]),
    # calibration select
    ("calibration-missing-source", ["calibration", "select", "{missing}", "--out", "{root}/c1"], ["{missing}"]),
    ("calibration-out-under-a-file", ["calibration", "select", "{run}", "--out", "{under_file}"], ["{under_file}"]),
    # prune, qat
    ("prune-missing-run", ["prune", "{missing}", "--out", "{root}/p1"], ["{missing}"]),
    ("prune-garbage-model", ["prune", "{run_garbage_model}", "--out", "{root}/p2"], ["model.keras"]),
    ("prune-sparsity-1.5", ["prune", "{run}", "--out", "{root}/p3", "--sparsity", "1.5"], ["1.5"]),
    ("prune-bad-m-by-n", ["prune", "{run}", "--out", "{root}/p4", "--m-by-n", "4:2"], ["4:2"]),
    ("qat-missing-run", ["qat", "{missing}", "--out", "{root}/q1"], ["{missing}"]),
    ("qat-garbage-model", ["qat", "{run_garbage_model}", "--out", "{root}/q2"], ["model.keras"]),
    # audit
    ("audit-missing", ["audit", "{missing}"], ["{missing}"]),
    ("audit-a-file", ["audit", "{file}"], ["{file}"]),
    ("audit-unknown-fail-on", ["audit", "{data}", "--fail-on", "leakage,bogus"], ["bogus"]),
    ("audit-latin1-class", ["audit", "{latin1_class}"], ["caf\\xe9"]),
    ("audit-report-under-a-file", ["audit", "{data}", "--report", "--out", "{under_file}"], ["{under_file}"]),
    # bundle wrap
    ("wrap-garbage-model", ["bundle", "wrap", "{garbage_tflite}", "--labels", "{labels_two}", "--out", "{root}/w1"],
     ["{garbage_tflite}"]),
    ("wrap-labels-count", ["bundle", "wrap", "{bundle}/model.tflite", "--labels", "{labels_two}", "--out",
                           "{root}/w2"], ["2"]),
    ("wrap-out-is-a-file", ["bundle", "wrap", "{bundle}/model.tflite", "--labels", "{bundle}/labels.txt", "--out",
                            "{file}"], ["{file}"]),
    ("wrap-junk-image", ["bundle", "wrap", "{bundle}/model.tflite", "--labels", "{bundle}/labels.txt", "--out",
                         "{root}/w3", "--image", "{garbage_tflite}"], ["{garbage_tflite}"]),
    ("wrap-latin1-labels", ["bundle", "wrap", "{bundle}/model.tflite", "--labels", "{labels_latin1}", "--out",
                            "{root}/w4"], ["{labels_latin1}", "not UTF-8"]),
]


# the first case of each command (``bundle wrap`` counts as one) goes through a real subprocess
_FIRST = {}
for _name, _argv, _ in CASES:
    _FIRST.setdefault(tuple(_argv[:2] if _argv[0] == "bundle" else _argv[:1]), _name)
SUBPROCESS = set(_FIRST.values())


def _fill(text: str, paths: dict) -> str:
    return text.format(**{k: str(v) for k, v in paths.items()})


@pytest.mark.parametrize("name, argv, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error(name, argv, fragments, bad, tmp_path):
    paths = dict(bad, root=tmp_path)
    args = [_fill(a, paths) for a in argv]
    proc = edgecnn(*args, timeout=300) if name in SUBPROCESS else edgecnn_in_process(*args)
    assert_user_error(proc, *[_fill(f, paths) for f in fragments])
    leftovers = [p.name for p in tmp_path.iterdir()] if tmp_path.exists() else []
    assert not [n for n in leftovers if n.startswith(".")], leftovers  # no temporary left behind


def test_the_good_inputs_of_this_suite_are_good(bad):
    """The fixtures the bad cases lean on work, so each refusal is about its one bad value."""
    verify = edgecnn("bundle", "verify", bad["bundle"], "--json", timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert json.loads((bad["run"] / "run.json").read_text())["labels"]
