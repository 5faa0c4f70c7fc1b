"""The command line, in-process with click's CliRunner: help for every command, exact error texts."""

import json

import pytest
from click.testing import CliRunner

from train_helpers import TINY_RUN_OPTIONS, finetune_flags
from edgecnn.cli import COMMANDS, cli

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_top_level_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    for name, (_, _, summary) in COMMANDS.items():
        assert name in result.output and summary[:30] in " ".join(result.output.split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_working_help(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ") and name in result.output.splitlines()[0]


def test_finetune_needs_out(tmp_path):
    result = invoke("finetune", tmp_path)
    assert result.exit_code == 2
    assert "Error: Missing option '--out'" in result.output


def test_finetune_missing_data_dir(tmp_path):
    missing = tmp_path / "nope"
    result = invoke("finetune", missing, "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert result.output == (f"Error: data folder '{missing}' does not exist. Pass the folder that holds one "
                             "sub-folder per class (DATA_DIR/<class>/*.jpg).\n")
    assert not (tmp_path / "run").exists()


def test_finetune_option_errors(tmp_path):
    result = invoke("finetune", tmp_path, "--out", tmp_path / "run", "--unfreeze-top", 3, "--unfreeze-from", "x")
    assert (result.exit_code, result.output) == (2, "Error: pass either --unfreeze-top or --unfreeze-from, not both.\n")
    result = invoke("finetune", tmp_path, "--out", tmp_path / "run", "--epochs", 0)
    assert (result.exit_code, result.output) == (2, "Error: --epochs must be an integer >= 1, got 0.\n")
    result = invoke("finetune", tmp_path, "--out", tmp_path / "run", "--balance", "smote")
    assert result.exit_code == 2 and "Invalid value for '--balance'" in result.output


def test_finetune_cli_records_the_same_arguments_as_the_library(tiny_run, demo_data):
    # The fixture ran finetune() in Python; the same options on the command line find it complete.
    result = invoke("finetune", demo_data, "--out", tiny_run, "--json", *finetune_flags(TINY_RUN_OPTIONS))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["status"] == "complete" and set(out["metrics"]) == {"val", "test"}


def test_finetune_cli_refuses_changed_arguments(tiny_run, demo_data):
    flags = finetune_flags(dict(TINY_RUN_OPTIONS, patience=4))
    result = invoke("finetune", demo_data, "--out", tiny_run, *flags)
    assert result.exit_code == 2
    # (the dataset scan's progress bar may print before the error; the error is the last line)
    assert result.output.splitlines()[-1] == (
        f"Error: RUN_DIR '{tiny_run}' holds a finished run made with different arguments: --patience (was 10, "
        "now 4). Use a new --out, or pass --overwrite to replace it.")
