"""The board counts what `evaluate` promised: hymenoptera's val photos replayed through `edgecnn run`.

Both sides decode with the same pixels, resize with the same function and take the top-1 with the
same rule (``edgecnn.devices.decision.top1``), so the board's accuracy on a folder is exactly the
int8 accuracy `evaluate` reports on it (issue 13: the board measured 0.96 where evaluate said 0.97).
"""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def board_labels(bundle, folder, events):
    code = "import sys; from edgecnn.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", code, "run", str(bundle), "--source", str(folder), "--replay",
                           "--events", str(events), "--exit-on-source-end", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames = [json.loads(line) for line in events.read_text().splitlines()]
    return [e for e in frames if e.get("event") == "frame"]


def test_board_replay_of_val_photos_matches_evaluate_exactly(hymenoptera_run, hymenoptera, tmp_path):
    from edgecnn.compress.convert import convert_run

    bundle = tmp_path / "bundle"
    convert_run(hymenoptera_run, bundle, eval_size=0, golden=0)
    val = hymenoptera / "val"
    res = CliRunner().invoke(cli, ["evaluate", str(bundle), str(val), "--against", str(hymenoptera_run), "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    promised = json.loads(res.output)["models"]["int8"]
    correct = total = 0
    for label in ("ants", "bees"):
        frames = board_labels(bundle, val / label, tmp_path / f"{label}.jsonl")
        assert len(frames) == promised["per_class"][label]["support"]
        correct += sum(e["label"] == label for e in frames)
        total += len(frames)
    assert total == promised["n"] == 153
    assert correct / total == promised["accuracy"]
