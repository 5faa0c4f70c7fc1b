"""The ``edgecnn`` command line: thin click wrappers around library functions (DESIGN rule 4).

Commands live one per module in this package and are imported only when invoked, so
``edgecnn --help`` and the board-side commands never import TensorFlow (DESIGN rule 2).
To add a command, write ``edgecnn/cli/<name>.py`` with a click command and add it to COMMANDS.
"""

import difflib
import importlib
import os
import sys

import click

from edgecnn import __version__
from edgecnn.errors import EdgecnnError

# name -> (module, attribute, one-line help shown by `edgecnn --help` without importing it)
COMMANDS = {
    "audit": ("edgecnn.cli.audit", "audit", "Check DATA_DIR: bad files, duplicates, leakage, imbalance, shortcut cues."),
    "search": ("edgecnn.cli.search", "search", "AutoML for the board: the best int8 model within a latency and size budget."),
    "run": ("edgecnn.cli.run", "run", "Classify camera/video frames on the board with a bundle (no TensorFlow)."),
    "benchmark": ("edgecnn.cli.benchmark", "benchmark", "Measure a model's latency, throughput and peak RSS here."),
    "bundle": ("edgecnn.cli.bundle", "bundle", "Wrap an existing .tflite into a bundle; verify a bundle; export it for MediaPipe, Picamera2, Coral."),
    "finetune": ("edgecnn.cli.finetune", "finetune", "Fine-tune a pretrained backbone on DATA_DIR."),
    "demo": ("edgecnn.cli.demo", "demo", "Run the whole trip on a generated demo dataset."),
    "evaluate": ("edgecnn.cli.evaluate", "evaluate", "Float vs quantized accuracy per class and group; a CI gate."),
    "calibrate": ("edgecnn.cli.calibrate", "calibrate", "Fit a bundle's softmax temperature and per-class thresholds."),
    "convert": ("edgecnn.cli.convert", "convert", "Convert a run to TFLite (int8, float16...) and write a bundle."),
    "calibration": ("edgecnn.cli.calibration", "calibration", "Select a calibration set from training images."),
    "prune": ("edgecnn.cli.prune", "prune", "Prune a run's model (magnitude or one-shot OBS) into a new run."),
    "qat": ("edgecnn.cli.qat", "qat", "Quantization-aware training of a run's model (a new run)."),
    "deploy": ("edgecnn.cli.deploy", "deploy", "Put a bundle on a fleet of boards over SSH: self-test there, switch, roll back."),
    "fleet": ("edgecnn.cli.fleet", "fleet", "What each board runs and how it does (status); roll boards back."),
    "board": ("edgecnn.cli.board", "board", "A board's ROOT: install, switch, roll back, status (what deploy runs there)."),
    "probe-cuts": ("edgecnn.cli.probe_cuts", "probe_cuts", "Measure where to cut the pretrained base: size, latency, accuracy."),
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is used."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=1)
            ctx.fail(f"No such command '{name}'." + (f" Did you mean '{close[0]}'?" if close else
                                                     " See 'edgecnn --help' for the commands."))
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgecnnError as exc:
            # User errors: one clear line, exit 2, no traceback (DESIGN rule 8).
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecnn")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's and the interpreter's own log lines (hidden by default).")
def cli(verbose):
    """edgecnn: from a folder of labelled photos to a classifier on a Raspberry Pi or Coral board."""
    if verbose:
        from edgecnn.native_log import VERBOSE_ENV

        # Read when TensorFlow is imported (edgecnn.tf) and around interpreter calls, by this process
        # and the ones it starts.
        os.environ[VERBOSE_ENV] = "1"


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="edgecnn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
