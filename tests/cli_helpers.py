"""Run the real `edgecnn` command line in a subprocess (the hostile-input and fault tests)."""

import subprocess
import sys

from train_helpers import ROOT

EDGECNN = [sys.executable, "-c", "import sys; from edgecnn.cli import main; sys.exit(main())"]


def edgecnn(*args, timeout=300, env=None, **kwargs) -> subprocess.CompletedProcess:
    """``edgecnn ARGS`` in a subprocess from the project root; text output captured."""
    return subprocess.run(EDGECNN + [str(a) for a in args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, **kwargs)


def edgecnn_in_process(*args) -> subprocess.CompletedProcess:
    """``edgecnn ARGS`` in this process, through click's runner: the same ``cli`` object, options and
    error handling the ``edgecnn`` script runs, without a TensorFlow import per call (seconds each).
    An exception that escapes the command is appended to stderr as the traceback a user would see."""
    import traceback

    from click.testing import CliRunner

    from edgecnn.cli import cli

    res = CliRunner().invoke(cli, [str(a) for a in args], prog_name="edgecnn", catch_exceptions=True)
    stderr = res.stderr
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        stderr += "".join(traceback.format_exception(res.exception))
    return subprocess.CompletedProcess(list(args), res.exit_code, res.stdout, stderr)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments):
    """Exit 2, exactly one ``Error:`` line holding each fragment, and no traceback."""
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    assert proc.returncode == 2, f"exit {proc.returncode}: {output[-3000:]}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
