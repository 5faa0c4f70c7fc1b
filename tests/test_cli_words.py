"""`edgecnn --help` says what each command does, and a mistyped command gets a suggestion (issue 12)."""

from click.testing import CliRunner

from edgecnn.cli import cli


def _help() -> str:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    return " ".join(result.output.split())


def test_help_lines_for_benchmark_and_prune_are_true():
    text = _help()
    assert "benchmark Measure a model's latency, throughput and peak RSS here." in text
    assert "prune Prune a run's model (magnitude or one-shot OBS) into a new run." in text
    assert "Invoke latency" not in text and "Magnitude-prune" not in text
    assert "--verbose Show TensorFlow's and the interpreter's own log lines" in text


def test_a_mistyped_command_gets_did_you_mean():
    result = CliRunner().invoke(cli, ["evalute", "x"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "Error: No such command 'evalute'. Did you mean 'evaluate'?"
    other = CliRunner().invoke(cli, ["xyzzy"])
    assert other.exit_code == 2
    assert other.output.splitlines()[-1] == "Error: No such command 'xyzzy'. See 'edgecnn --help' for the commands."


def test_verbose_reaches_the_commands_through_the_environment(monkeypatch):
    import os

    from edgecnn.native_log import verbose

    monkeypatch.delenv("EDGECNN_VERBOSE", raising=False)
    try:
        result = CliRunner().invoke(cli, ["--verbose", "demo", "--help"])
        assert result.exit_code == 0 and verbose() and os.environ["EDGECNN_VERBOSE"] == "1"
    finally:
        os.environ.pop("EDGECNN_VERBOSE", None)  # click set it in this process; no other test may see it
    assert not verbose()
