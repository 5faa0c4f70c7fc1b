"""deploy's parts that need no board: TARGET URLs and inventories, the canary, the dry run, the CLI's
errors, an unreachable board's line (a port where nothing listens)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_helpers import EDGECNN, sha_of
from edgecnn.deploy.inventory import InventoryError, canary_boards, load_boards
from edgecnn.deploy.rollout import deploy
from ssh_helpers import free_port

TINY = Path(__file__).resolve().parent / "device" / "assets" / "tiny_bundle"


def test_target_urls_give_root_port_and_user():
    a, b, c = load_boards(["ssh://pi@10.0.0.7", "ssh://pi@board.local:2222/srv/edgecnn", "ssh://me@h/~/fleet"])
    assert (a.root, a.address.port, a.address.dest) == ("~/edgecnn", 22, "pi@10.0.0.7")
    assert (b.root, b.address.port) == ("/srv/edgecnn", 2222)
    assert c.root == "~/fleet"


@pytest.mark.parametrize("url, why", [("ssh://-oProxyCommand=touch MARKER@x/r", "has the user name"),
                                      ("ssh://pi@-x/r", "has the host"), ("http://pi@x", "is not ssh://"),
                                      ("ssh://pi@x:port/r", "has an invalid port")])
def test_bad_targets_are_refused_naming_them(url, why):
    with pytest.raises(InventoryError, match=rf"^TARGET '.*' {why}"):
        load_boards([url])


def test_inventories_in_lines_toml_and_json(tmp_path):
    lines = tmp_path / "boards.txt"
    lines.write_text("# the hall\nssh://pi@10.0.0.7\n\nssh://pi@10.0.0.8/srv/e  # spare\n")
    assert [b.url for b in load_boards(targets_file=lines)] == ["ssh://pi@10.0.0.7", "ssh://pi@10.0.0.8/srv/e"]
    toml = tmp_path / "fleet.toml"
    toml.write_text('[boards.door]\nurl = "ssh://pi@10.0.0.7"\ngroups = ["canary"]\nedgetpu = true\n'
                    '[boards.hall]\nurl = "ssh://pi@10.0.0.8"\nstatus_url = "http://127.0.0.1:9000/status"\n')
    door, hall = load_boards(targets_file=toml)
    assert (door.name, door.groups, door.edgetpu) == ("door", ("canary",), True)
    assert hall.status_url == "http://127.0.0.1:9000/status"
    assert canary_boards([door, hall], "canary") == [door] and canary_boards([door, hall], "1") == [door]
    js = tmp_path / "fleet.json"
    js.write_text(json.dumps({"boards": [{"name": "x", "url": "ssh://pi@h", "event": "typo"}]}))
    with pytest.raises(InventoryError, match=r"board 1 has unknown key\(s\) event; the keys are name, url"):
        load_boards(targets_file=js)
    with pytest.raises(InventoryError, match="two boards are named 'ssh://pi@10.0.0.7'"):
        load_boards(["ssh://pi@10.0.0.7"], lines)
    with pytest.raises(InventoryError, match=r"--canary 'hall' is neither a number nor a group .*\(groups: canary\)"):
        canary_boards([door, hall], "hall")


def test_the_dry_run_plans_every_board_and_touches_none(tmp_path):
    port = free_port()  # nothing listens: a dry run never connects
    report = deploy(TINY, [f"ssh://pi@127.0.0.1:{port}/srv/a", f"ssh://pi@127.0.0.1:{port}/srv/b"], dry_run=True,
                    canary="1")
    sha = sha_of(TINY)
    assert report["dry_run"] and not report["held"] and report["sha256"] == sha
    assert [b["status"] for b in report["boards"]] == ["planned", "planned"]
    assert report["lines"][0].startswith(f"ssh://pi@127.0.0.1:{port}/srv/a: planned: canary: copy ")
    assert f"to /srv/b/bundles/{sha[:12]}; self-test with edgecnn; switch /srv/b/current (keep 3)" in report["lines"][1]
    assert report["summary"] == "dry run: 2 boards planned, nothing changed"


def test_an_unreachable_board_is_one_line_and_the_exit_status_says_the_rollout_did_not_hold(tmp_path):
    port = free_port()
    proc = subprocess.run([EDGECNN, "deploy", str(TINY), f"ssh://nobody@127.0.0.1:{port}", "--ssh-timeout", "30"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    line, summary = proc.stdout.splitlines()
    assert line.startswith(f"ssh://nobody@127.0.0.1:{port}: unreachable: ") and line.endswith("(during the copy)")
    assert "Connection refused" in line
    assert summary == "rollout did not hold: 1 unreachable"


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([EDGECNN, "deploy", str(TINY)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("Error: no boards given: name one or more"), proc.stderr
    broken = tmp_path / "broken"
    shutil.copytree(TINY, broken)
    (broken / "labels.txt").write_text("a\nb\nc\n")
    proc = subprocess.run([EDGECNN, "deploy", str(broken), "ssh://pi@127.0.0.1"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "does not match its sha256" in proc.stderr and "Traceback" not in proc.stderr


def test_board_commands_import_no_tensorflow(tmp_path):
    code = ("import sys; from edgecnn.cli import main; sys.argv = ['edgecnn', 'board', 'status', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "root")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["current"] is None
