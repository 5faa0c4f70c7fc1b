"""`edgecnn evaluate` and `edgecnn calibrate` end to end on tiny runs and bundles (CLI exit codes, texts)."""

import json

import pytest
from click.testing import CliRunner

from edgecnn.bundle.manifest import verify_bundle
from edgecnn.cli import cli
from evaluate_helpers import build

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_data):
    return build(tmp_path_factory.mktemp("evaluate"), demo_data)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_gate_passes_on_good_bundle(built):
    res = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--max-drop", "10", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["models"]) == {"float", "int8"}
    assert out["data"]["split"] == "test" and out["data"]["n"] == 60
    assert out["gate"]["passed"] and out["debug"] is None
    assert set(out["vs_float"]["int8"]["per_class"]) == set(out["labels"])
    assert 0.0 <= out["vs_float"]["int8"]["agreement"] <= 1.0


def test_gate_fails_with_exit_1_and_names_the_bad_layer(built):
    res = invoke("evaluate", built["broken_bundle"], "--against", built["broken_run"], "--max-drop", "5", "--json")
    assert res.exit_code == 1, res.output
    out = json.loads(res.output)
    assert not out["gate"]["passed"]
    assert out["gate"]["failures"][0].startswith("int8: top-1 accuracy dropped")
    assert out["debug"]["worst_layer"] == "conv_bad"  # the debugger ran because the gate failed


def test_class_gate_and_groups(built, tmp_path):
    files = [s.path for s in built["dataset"].splits["test"]]
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\n" + "".join(f"{f.name},{'day' if i % 2 else 'night'}\n"
                                               for i, f in enumerate(files)))
    res = invoke("evaluate", built["broken_bundle"], "--against", built["broken_run"], "--groups", groups,
                 "--max-class-drop", "5", "--json")
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert sorted(out["groups"]) == ["day", "night"]
    assert out["groups"]["day"]["n"] + out["groups"]["night"]["n"] == 60
    # The broken bundle drops more than 5 pp overall (test_gate_fails_with_exit_1_and_names_the_bad_layer), and the
    # two groups split those 60 images between them, so at least one group drops more than 5 pp: its gate fails.
    assert any(f.startswith("int8: group '") and "accuracy dropped" in f for f in out["gate"]["failures"]), out["gate"]


def test_data_folder_and_ensemble(built, demo_data):
    res = invoke("evaluate", built["good_bundle"], built["good_bundle"], demo_data, "--against", built["good_run"],
                 "--debug-layers", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["data"]["kind"] == "data" and out["data"]["n"] == 240
    assert set(out["models"]) == {"float", "good_bundle", "good_bundle_1", "ensemble"}
    assert out["debug"]["worst"] and out["debug"]["images"] == "train split"
    # Two identical bundles: the ensemble is the same model.
    assert out["models"]["ensemble"]["accuracy"] == out["models"]["good_bundle"]["accuracy"]


def test_val_fallback_note(built, tmp_path):
    run = json.loads((built["good_run"] / "run.json").read_text())
    del run["data"]["splits"]["test"]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes((built["good_run"] / "model.keras").read_bytes())
    (run_dir / "run.json").write_text(json.dumps(run))
    res = invoke("evaluate", built["good_bundle"], "--against", run_dir, "--json")
    out = json.loads(res.output)
    assert out["data"]["split"] == "val"
    assert out["notes"][0].startswith("the run has no test split: evaluating on its val split")


def test_user_errors_exit_2(built, tmp_path):
    res = invoke("evaluate", tmp_path, "--against", built["good_run"])
    assert res.exit_code == 2
    assert res.output.strip() == (f"Error: no bundle among {tmp_path}: a bundle is a folder with edgecnn.json. "
                                  "Create one with `edgecnn convert RUN_DIR --out BUNDLE_DIR`.")
    res = invoke("evaluate", built["good_bundle"], "--against", tmp_path / "nope")
    assert res.exit_code == 2
    assert res.output.strip() == (f"Error: RUN_DIR '{tmp_path / 'nope'}' does not exist. Create it with "
                                  f"`edgecnn finetune DATA_DIR --out {tmp_path / 'nope'}`.")
    res = invoke("calibrate", built["good_bundle"], "--against", built["good_run"], "--coverage", "0.9",
                 "--target-precision", "0.9")
    assert res.exit_code == 2
    assert res.output.strip() == ("Error: pass --target-precision or --coverage, not both: thresholds are chosen "
                                  "for one goal.")
    res = invoke("calibrate", built["good_bundle"], "--against", built["good_run"], "--coverage", "1.5")
    assert res.output.strip() == "Error: --coverage must be in (0, 1], got 1.5."


def test_calibrate_writes_decision(built, tmp_path):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(built["good_bundle"], bundle)
    res = invoke("calibrate", bundle, "--against", built["good_run"], "--target-precision", "0.8", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    manifest = verify_bundle(bundle)  # the model files are untouched; the manifest still checks
    decision = manifest["decision"]
    assert decision["temperature"] == pytest.approx(out["temperature"])
    assert decision["thresholds"] == pytest.approx(out["thresholds"]) and len(decision["thresholds"]) == 4
    assert out["fit"]["nll_after"] <= out["fit"]["nll_before"] + 1e-9
    assert "held_out" in out and out["held_out"]["n"] == 60
    assert manifest["metrics"]["calibration"]["temperature"] == pytest.approx(out["temperature"])


def test_demo_step(built, tmp_path):
    import shutil

    from edgecnn.demo.evaluate_step import evaluate_step

    bundle = tmp_path / "bundle"
    shutil.copytree(built["good_bundle"], bundle)
    out = evaluate_step(built["good_run"], bundle, tmp_path / "demo", max_drop=10)
    assert out["passed"] and (tmp_path / "demo" / "evaluate" / "report.html").is_file()
    assert (tmp_path / "demo" / "evaluate" / "report.json").is_file()
    cal = out["calibration"]
    # The temperature changes only when it makes ECE better on images the fit never saw.
    assert verify_bundle(bundle)["decision"]["temperature"] == pytest.approx(cal["temperature"])
    assert cal["kept_previous"] == (cal["temperature"] == 1.0) and cal["summary"].startswith("confidence: ")
    assert out["summary"].splitlines()[1] == cal["summary"]
    assert out["summary"].startswith(f"evaluate: {out['n']} test images: float ")
    assert "'int8' vs 'float': clean" in out["robustness"] and "FGSM on 'float'" in out["summary"]


def test_robustness_float_vs_int8(built):
    res = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--robustness", "--corruptions",
                 "gaussian_noise,occlusion", "--severities", "1,5", "--fgsm-eps", "4,32", "--json")
    assert res.exit_code == 0, res.output
    rob = json.loads(res.output)["robustness"]
    assert rob["models"] == ["float", "int8"] and rob["kinds"] == ["gaussian_noise", "occlusion"]
    assert rob["severities"] == [1, 5] and rob["n"] == 60
    # the clean accuracies are the evaluate figures themselves (same images, same models)
    models = json.loads(res.output)["models"]
    assert rob["clean"] == {m: pytest.approx(models[m]["accuracy"]) for m in ("float", "int8")}
    for m in rob["models"]:
        for kind in rob["kinds"]:
            assert set(rob["accuracy"][m][kind]) == {"1", "5"}
            assert all(0.0 <= a <= 1.0 for a in rob["accuracy"][m][kind].values())
    fg = rob["fgsm"]
    assert fg["epsilons"] == [0.0, 4.0, 32.0] and set(fg["accuracy"]) == {"float", "int8"}
    assert fg["accuracy"]["float"][0] == pytest.approx(rob["clean"]["float"])
    assert fg["accuracy"]["float"][2] < fg["accuracy"]["float"][0]  # 32/255 steps crafted on it hurt it
    assert "'int8' vs 'float': clean" in rob["summary"] and "FGSM on 'float'" in rob["summary"]
    text = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--robustness", "--corruptions",
                  "jpeg", "--severities", "3", "--fgsm-eps", "none")
    assert text.exit_code == 0, text.output
    assert "robustness (mean accuracy under corruptions): float " in text.output and "FGSM" not in text.output


def test_robustness_option_errors(built):
    res = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--severities", "1")
    assert res.exit_code == 2
    assert res.output.strip() == "Error: --severities only apply with --robustness; add --robustness."
    res = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--robustness", "--severities", "7")
    assert res.exit_code == 2
    assert res.output.strip() == "Error: --severities: '7' is not one of 1, 2, 3, 4, 5."
    res = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--robustness",
                 "--corruptions", "fog")
    assert res.output.strip() == ("Error: --corruptions: 'fog' is not one of gaussian_noise, motion_blur, defocus_blur, "
                                  "brightness, contrast, exposure, jpeg, rotation, occlusion.")
    res = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--robustness", "--fgsm-eps", "-1")
    assert res.output.strip() == "Error: --fgsm-eps: epsilons must be > 0 (pixel units out of 255), got -1."


def test_max_flips_is_its_own_gate(built):
    """--max-flips counts images whose top-1 differs from the float model's, labels or not; --max-drop
    is the accuracy drop. Same meaning as convert's options."""
    res = invoke("evaluate", built["broken_bundle"], "--against", built["broken_run"], "--max-flips", "0", "--json")
    assert res.exit_code == 1, res.output
    out = json.loads(res.output)
    vs = out["vs_float"]["int8"]
    assert vs["flip_pct"] == pytest.approx(100 * (1 - vs["agreement"]), abs=1e-3) and vs["flip_pct"] > 0
    assert any("top-1 changed against the float model" in f and "--max-flips 0" in f for f in out["gate"]["failures"])
    assert out["gate"]["max_flips_pct"] == 0
    res = invoke("evaluate", built["good_bundle"], "--against", built["good_run"], "--max-flips", "100", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["gate"]["passed"]
