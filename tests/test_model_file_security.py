"""No code runs from a model file (issue 22, item 1).

tf_keras honours ``safe_mode`` only for zip ``.keras`` files: an HDF5 file (even one named
``model.keras``) goes to the legacy loader, which runs a Lambda layer's bytecode, and a ``.keras``
config's ``module`` is imported. Each payload here writes a marker file when it runs; every command
that loads a model must refuse the file with one ``Error:`` line and leave no marker.
"""

import json
import shutil
import zipfile

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def lambda_payload_model(marker, size=32, classes=4):
    """A classifier whose Lambda layer writes ``marker`` whenever it is called (built, loaded, run)."""
    from edgecnn.tf import keras

    code = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Lambda(eval(code), name="payload")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax", name="head_dense")(x))
    marker.unlink()  # building the model called the lambda once; what follows must not
    return model


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "MARKER"


@pytest.fixture
def evil_h5(tmp_path, marker):
    path = tmp_path / "evil.h5"
    lambda_payload_model(marker).save(path)
    assert not marker.exists()
    return path


def evil_run(mini_run, tmp_path, evil_h5):
    """A copy of a real RUN_DIR whose model.keras holds the HDF5 payload model (the name lies)."""
    run = tmp_path / "run"
    shutil.copytree(mini_run, run)
    shutil.copy(evil_h5, run / "model.keras")
    return run


LAMBDA_ERROR = ("contains a Lambda layer (layer 'payload'), which runs arbitrary Python code when loaded; edgecnn "
                "refuses it. Replace the Lambda with a built-in layer and save the model again.\n")


def test_finetune_base_h5_with_lambda_is_refused_and_runs_nothing(demo_data, tmp_path, evil_h5, marker):
    res = invoke("finetune", demo_data, "--out", tmp_path / "r", "--base", evil_h5, "--epochs", 1,
                 "--fine-tune-epochs", 0, "--quiet")
    assert res.exit_code == 2, res.output
    assert res.stderr == f"Error: --base '{evil_h5}' {LAMBDA_ERROR}"
    assert not marker.exists()


@pytest.mark.parametrize("command", [["convert", "--int8"], ["prune"], ["qat"]])
def test_run_commands_refuse_an_hdf5_payload_named_model_keras(command, mini_run, tmp_path, evil_h5, marker):
    run = evil_run(mini_run, tmp_path, evil_h5)
    res = invoke(command[0], run, *command[1:], "--out", tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert res.stderr == f"Error: model '{run / 'model.keras'}' {LAMBDA_ERROR}"
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_evaluate_against_a_payload_run_is_refused(tiny_bundle, mini_run, tmp_path, evil_h5, marker):
    run = evil_run(mini_run, tmp_path, evil_h5)
    res = invoke("evaluate", tiny_bundle, "--against", run)
    assert res.exit_code == 2, res.output
    # evaluate says which images it reads before it loads the model; the error is its last line
    assert res.stderr.splitlines(keepends=True)[-1] == f"Error: model '{run / 'model.keras'}' {LAMBDA_ERROR}"
    assert not marker.exists()


def test_a_keras_zip_with_a_lambda_is_refused_before_keras_reads_it(tmp_path, marker):
    from edgecnn.errors import ModelError
    from edgecnn.models.classifier import load_classifier

    path = tmp_path / "model.keras"
    lambda_payload_model(marker).save(path)
    with pytest.raises(ModelError) as info:
        load_classifier(path)
    assert str(info.value) == f"model '{path}' {LAMBDA_ERROR}".rstrip("\n")
    assert not marker.exists()


def rewrite_config(path, change):
    """Rewrite ``config.json`` inside the zip ``path`` with ``change(config)`` (an attacker's edit)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_module_gadget_in_a_keras_config_is_not_imported(mini_run, tmp_path, marker, monkeypatch):
    """CVE-2025-1550's shape: a config entry names a module that Keras would import."""
    from edgecnn.errors import ModelError
    from edgecnn.models.classifier import load_classifier

    (tmp_path / "gadget_module.py").write_text(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "model.keras"
    shutil.copy(mini_run / "model.keras", path)

    def gadget(config):
        config["config"]["layers"][1]["module"] = "gadget_module"

    rewrite_config(path, gadget)
    with pytest.raises(ModelError) as info:
        load_classifier(path)
    assert str(info.value) == (f"model '{path}' contains an entry 'Rescaling' from module 'gadget_module', which "
                               "Keras would import; edgecnn loads only built-in Keras and "
                               "tensorflow-model-optimization objects.")
    assert not marker.exists()


def test_tf_op_layers_may_only_call_side_effect_free_ops(tmp_path):
    from edgecnn.errors import ModelError
    from edgecnn.models.safe_load import check_model_file
    from edgecnn.tf import keras, tf

    inputs = keras.Input((8, 8, 3))
    ok = keras.Model(inputs, tf.math.multiply(inputs, 2.0))
    ok.save(tmp_path / "ok.keras")
    assert check_model_file(tmp_path / "ok.keras") == "keras"

    path = tmp_path / "write.keras"
    ok.save(path)

    def write_file(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "TFOpLambda":
                layer["config"]["function"] = "io.write_file"

    rewrite_config(path, write_file)
    with pytest.raises(ModelError, match=r"a TensorFlow op layer calling 'tf.io.write_file'"):
        check_model_file(path)


def test_custom_layers_savedmodel_folders_and_weights_only_files_are_refused(tmp_path, mini_run):
    from edgecnn.errors import ModelError
    from edgecnn.models.safe_load import check_model_file
    from edgecnn.tf import keras

    path = tmp_path / "custom.keras"
    shutil.copy(mini_run / "model.keras", path)
    rewrite_config(path, lambda c: c["config"]["layers"][2].update(class_name="MyConv", module=None))
    with pytest.raises(ModelError) as info:
        check_model_file(path)
    assert str(info.value) == (f"model '{path}' contains a layer of class 'MyConv' (layer 'conv1'), which is not a "
                               "built-in Keras layer: custom layers carry code, so edgecnn refuses them. Rebuild "
                               "the model from built-in layers.")

    folder = tmp_path / "saved_model"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"is a folder \(a TensorFlow SavedModel\?\)"):
        check_model_file(folder, "--base")

    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save_weights(tmp_path / "w.h5")
    with pytest.raises(ModelError, match=r"holds weights only, no model config"):
        check_model_file(tmp_path / "w.h5")

    (tmp_path / "x.keras").write_text("not a model")
    with pytest.raises(ModelError, match=r"is neither a \.keras \(zip\) nor an \.h5 \(HDF5\) Keras model"):
        check_model_file(tmp_path / "x.keras")


def test_models_edgecnn_writes_pass_the_check(mini_run, tmp_path):
    """The real thing must still load: a run's model.keras, and the same model saved as HDF5."""
    from edgecnn.models.safe_load import check_model_file
    from edgecnn.models.classifier import load_classifier

    model = load_classifier(mini_run / "model.keras")
    model.save(tmp_path / "m.h5")
    assert check_model_file(tmp_path / "m.h5") == "h5"
    assert load_classifier(tmp_path / "m.h5").count_params() == model.count_params()
