"""`edgecnn deploy` and `edgecnn fleet` against three real boards on 127.0.0.1.

Each board is its own OpenSSH server (its own port) and ROOT, set up by hand as the README says,
running the real `edgecnn run ROOT/current --watch-bundle` on a looped video with its status
endpoint. The board's edgecnn is this checkout's venv (`--remote-edgecnn`). Board b3's ROOT is a
small tmpfs (we are root here), so a large bundle fills its disk. The tests run in order and share
the fleet: each starts from the state the one before left, which they check.
"""

import json
import subprocess
from pathlib import Path

import pytest

from deploy_helpers import (EDGECNN, LocalBoard, classifies_with, hand_install, read_events, sha_of, variant,
                            wait_for, write_video)
from ssh_helpers import CuttingRelay, free_port, make_keys

pytestmark = pytest.mark.slow
HEALTH_S = 180  # the app's watcher polls every 2 s and self-tests in a child; generous for a slow CPU
TMPFS_BYTES = 1_000_000
FLUSH_S = 30  # the app's events file is flushed every 0.2 s: what the status page shows may not be there yet


def _mount_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    base = tmp_path_factory.mktemp("fleet")
    bundles = base / "bundles"
    bundles.mkdir()
    b = {"a": variant(bundles / "a", "a"), "good": variant(bundles / "good", "good"),
         "bad": variant(bundles / "bad", "bad", tamper=True),
         "big": variant(bundles / "big", "big", pad_bytes=2 * TMPFS_BYTES), "late": variant(bundles / "late", "late")}
    key = make_keys(base / "keys")
    small = _mount_tmpfs(base / "b3" / "root")
    boards = []
    try:
        for name in ("b1", "b2", "b3"):
            boards.append(LocalBoard(name, base / name, key, base / name / "root"))
        video = write_video(base / "video.avi")
        for board in boards:
            hand_install(board.root, b["a"])
            board.start_app(video, free_port())
        sha_a = sha_of(b["a"])
        for board in boards:
            wait_for(lambda: classifies_with(read_events(board.events), sha_a), HEALTH_S, f"{board.name}'s app")
        inventory = base / "fleet.toml"
        # b3's app is watched through its events file, the others through their status endpoints
        watch = {bd.name: f'status_url = "{bd.status_url}"' for bd in boards[:2]}
        watch["b3"] = f'status_url = ""\nevents = "{boards[2].events}"'
        inventory.write_text("".join(
            f'[[boards]]\nname = "{bd.name}"\nurl = "{bd.url}"\n{watch[bd.name]}\n'
            f'groups = {json.dumps(["canary"] if bd.name == "b1" else ["rest"])}\n\n' for bd in boards))
        yield {"boards": boards, "bundles": b, "inventory": inventory, "key": str(key), "small": small,
               "options": boards[0].sshd["options"][1]}
    finally:
        for board in boards:
            board.close()
        if small:
            subprocess.run(["umount", "-l", str(base / "b3" / "root")], capture_output=True)


def _opts(fleet, **extra) -> dict:
    return {"remote_edgecnn": EDGECNN, "ssh_key": fleet["key"], "ssh_options": ["-o", fleet["options"]],
            "health_timeout": HEALTH_S, **extra}


def _cli(fleet, *args):
    cmd = [EDGECNN, *args, "--remote-edgecnn", EDGECNN, "--ssh-key", fleet["key"], "--ssh-option", fleet["options"],
           "--health-timeout", str(HEALTH_S)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _installed(board) -> list:
    """Every name in ROOT/bundles that is not a hidden temporary one."""
    return sorted(p.name for p in (board.root / "bundles").iterdir() if not p.name.startswith("."))


def test_a_good_bundle_reaches_every_board_and_each_classifies_with_it(fleet):
    from edgecnn.deploy.rollout import deploy

    good, a = sha_of(fleet["bundles"]["good"]), sha_of(fleet["bundles"]["a"])
    lines = []
    report = deploy(fleet["bundles"]["good"], targets_file=fleet["inventory"], canary="canary", parallel=2,
                    progress=lambda o: lines.append(o.line()), **_opts(fleet))
    assert report["held"], report["lines"]
    assert report["canary"] == ["b1"] and lines[0].startswith("b1: ok (")  # the canary went first
    for board, outcome in zip(fleet["boards"], report["boards"]):
        assert outcome["status"] == "ok" and outcome["copied"] and outcome["previous"] == a, outcome
        assert board.current() == good and board.previous() == a
        # its own events say it runs the new sha
        wait_for(lambda: classifies_with(read_events(board.events), good), FLUSH_S, "its events")
    assert report["summary"] == f"rollout held: 3 of 3 boards run {good[:12]} (good)"


def test_a_bundle_failing_its_golden_samples_is_rolled_back_on_the_canary_and_goes_nowhere_else(fleet):
    good, bad = sha_of(fleet["bundles"]["good"]), sha_of(fleet["bundles"]["bad"])
    proc = _cli(fleet, "deploy", str(fleet["bundles"]["bad"]), "--targets", str(fleet["inventory"]), "--canary", "1")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("b1: rolled back: self-test failed: golden 'golden/001.npy': score of class 0 (red) is "
                        "0.00000 on the board but 0.25000 on the workstation (|diff| 0.25000 > atol 0.0078125)")
    assert lines[1:3] == [f"{n}: skipped: canary b1 rolled back; the rollout stopped" for n in ("b2", "b3")]
    assert lines[-1] == "rollout did not hold: 1 rolled back, 2 skipped"
    for board in fleet["boards"]:
        assert board.current() == good and bad not in _installed(board)  # never switched to, not left there
    wait_for(lambda: classifies_with(read_events(fleet["boards"][0].events), good), FLUSH_S, "its events")


def test_a_copy_cut_in_the_middle_installs_nothing_and_the_rerun_completes(fleet):
    from edgecnn.deploy.rollout import deploy

    b1 = fleet["boards"][0]
    good, big = sha_of(fleet["bundles"]["good"]), sha_of(fleet["bundles"]["big"])
    relay = CuttingRelay(b1.sshd["port"], cut_after=500_000)  # the 2 MB copy crosses it, a handshake never
    try:
        url = b1.url.replace(f":{b1.sshd['port']}/", f":{relay.port}/")
        report = deploy(fleet["bundles"]["big"], [url], **_opts(fleet))
        outcome = report["boards"][0]
        assert relay.cuts == 1 and outcome["status"] == "unreachable", outcome
        assert outcome["reason"].endswith("(during the copy)")
        assert b1.current() == good and big not in _installed(b1)
        wait_for(lambda: classifies_with(read_events(b1.events), good), FLUSH_S, "its events")
        relay.cut_after = None
        report = deploy(fleet["bundles"]["big"], [url], status_url=b1.status_url, **_opts(fleet))
    finally:
        relay.close()
    assert report["held"], report["lines"]
    assert b1.current() == big and b1.previous() == good
    assert not [p.name for p in (b1.root / "bundles").iterdir() if p.name.startswith(".")]  # no leftover copy
    wait_for(lambda: classifies_with(read_events(b1.events), big), FLUSH_S, "its events")


def test_a_full_disk_on_one_board_is_reported_and_the_others_complete(fleet):
    if not fleet["small"]:
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    from edgecnn.deploy.rollout import deploy

    good, big = sha_of(fleet["bundles"]["good"]), sha_of(fleet["bundles"]["big"])
    report = deploy(fleet["bundles"]["big"], targets_file=fleet["inventory"], **_opts(fleet))
    b1, b2, b3 = report["boards"]
    assert b1["status"] == "ok" and not b1["copied"]  # there since the last test: not copied again
    assert b2["status"] == "ok" and b2["copied"]
    assert b3["status"] == "failed" and b3["reason"].startswith("disk full on this board: "), b3
    assert "Free some space there" in b3["reason"]
    assert not report["held"] and report["summary"] == "rollout did not hold: 2 ok, 1 failed"
    board3 = fleet["boards"][2]
    assert board3.current() == good and _installed(board3) == sorted([good, sha_of(fleet["bundles"]["a"])])
    assert not [p for p in (board3.root / "bundles").iterdir() if p.name.startswith(".")]
    wait_for(lambda: classifies_with(read_events(fleet["boards"][1].events), big), FLUSH_S, "its events")


def test_fleet_status_json_lists_every_board_with_what_it_runs(fleet):
    proc = _cli(fleet, "fleet", "status", "--targets", str(fleet["inventory"]), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["boards"]
    assert [r["board"] for r in rows] == ["b1", "b2", "b3"]
    for row, board in zip(rows, fleet["boards"]):
        assert row["status"] == "ok"
        assert row["current"]["sha256"] == board.current() == row["running_sha256"]
        assert row["current"]["name"] in ("good", "big")  # named by deploy (ROOT/history.json)
        assert row["self_test"]["ok"] is True and row["self_test"]["checks"] > 0
        assert row["uptime_s"] > 0 and row["fps"] > 0 and 0 <= row["fallback_rate"] <= 1
        assert row["disk_free_bytes"] > 0
        assert row["last_error"] is None or row["last_error"]["age_s"] >= 0  # the looped video's source_lost
    assert rows[2]["disk_free_bytes"] < TMPFS_BYTES or not fleet["small"]
    assert rows[0]["watched"] == fleet["boards"][0].status_url and rows[2]["watched"] == str(fleet["boards"][2].events)


def test_fleet_rollback_restores_the_previous_bundle_and_the_app_follows(fleet):
    b2 = fleet["boards"][1]
    good, big = sha_of(fleet["bundles"]["good"]), sha_of(fleet["bundles"]["big"])
    assert b2.current() == big
    proc = _cli(fleet, "fleet", "rollback", b2.url, "--status-url", b2.status_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{b2.url}: ok (back on {good[:12]}, previous {big[:12]}, the app classifies "
                                  "with it after ")
    assert b2.current() == good and b2.previous() == big
    wait_for(lambda: classifies_with(read_events(b2.events), good), FLUSH_S, "its events")


def test_a_board_whose_app_does_not_show_the_new_bundle_in_time_rolls_back_saying_why(fleet):
    from edgecnn.deploy.rollout import deploy

    b1 = fleet["boards"][0]
    good, big, late = (sha_of(fleet["bundles"][k]) for k in ("good", "big", "late"))
    dead = f"http://127.0.0.1:{free_port()}/status"  # nothing answers there: the health check cannot pass
    report = deploy(fleet["bundles"]["late"], [b1.url], **_opts(fleet, health_timeout=3, status_url=dead))
    outcome = report["boards"][0]
    assert outcome["status"] == "rolled back", outcome
    assert outcome["reason"].startswith(f"health check: status endpoint {dead} did not answer (")
    assert outcome["reason"].endswith(f" within 3 s; back on {big[:12]}")
    assert b1.current() == big and b1.previous() == good and late not in _installed(b1)  # the failed one is gone
    wait_for(lambda: classifies_with(read_events(b1.events), big), HEALTH_S, "b1's app back on the old bundle")
