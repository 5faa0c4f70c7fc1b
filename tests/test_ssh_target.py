"""The ssh:// latency target against a real OpenSSH server started on 127.0.0.1 for the test.

The server runs as the current user with a generated host key and user key in tmp; the remote
command is this project's own `edgecnn benchmark`, by the venv's absolute path. The test skips
with the reason when /usr/sbin/sshd is not installed (`make test` installs openssh-server when
apt is available).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.search.ssh_target import SSHTarget
from edgecnn.search.target_base import TargetError
from edgecnn.search.targets import make_target
from ssh_helpers import free_port as _free_port, make_keys, start_sshd, stop


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    server = start_sshd(d / "server", make_keys(d / "keys"))  # skips, saying why, without sshd
    yield server
    stop(server["proc"])


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """A small real float model: the Coral-free tiny test asset if there is one, else made with TF."""
    out = tmp_path_factory.mktemp("model") / "tiny.tflite"
    from edgecnn.tf import keras, tf

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    out.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return out


def test_measures_on_the_board_over_ssh(sshd, tiny_tflite):
    edgecnn = str(Path(sys.executable).with_name("edgecnn"))
    target = make_target(sshd["url"], ssh_key=sshd["key"], ssh_options=sshd["options"], remote_edgecnn=edgecnn,
                         ssh_timeout=60, threads=2)
    assert isinstance(target, SSHTarget)
    target.check()
    out = target.measure(tiny_tflite)
    assert out["latency_kind"] == "measured"
    assert out["target"] == sshd["url"]
    assert 0 < out["latency_ms"] < 1000
    assert out["benchmark"]["results"][0]["p50_ms"] == pytest.approx(out["latency_ms"])
    assert out["benchmark"]["results"][0]["threads"] == 2  # --threads reached the board's benchmark


def test_remote_command_missing_is_explained(sshd, tiny_tflite):
    target = make_target(sshd["url"], ssh_key=sshd["key"], ssh_options=sshd["options"],
                         remote_edgecnn="/nonexistent/edgecnn", ssh_timeout=30)
    with pytest.raises(TargetError, match=r"`/nonexistent/edgecnn benchmark` failed on board"):
        target.measure(tiny_tflite)


def test_unreachable_board_has_a_clear_error():
    port = _free_port()  # nothing listens there
    target = make_target(f"ssh://nobody@127.0.0.1:{port}", ssh_timeout=20)
    with pytest.raises(TargetError) as info:
        target.check()
    msg = str(info.value)
    assert msg.startswith(f"board 'ssh://nobody@127.0.0.1:{port}' is unreachable over SSH (")
    assert msg.endswith(f"Check that it is on and that `ssh -p {port} nobody@127.0.0.1` logs in without a password "
                        "prompt (BatchMode), or pass --ssh-key.")


@pytest.mark.parametrize("url", ["ssh://", "ssh://host:notaport", "ssh://user@host/path"])
def test_malformed_ssh_url(url):
    with pytest.raises(TargetError, match="is not ssh://user@board|invalid port"):
        make_target(url).check()


@pytest.mark.parametrize("url", ["ssh://-oProxyCommand=touch MARKER@x", "ssh://pi@-oProxyCommand=touch MARKER",
                                 "ssh://-oProxyCommand=touch%20MARKER@x", "ssh://pi@x;touch MARKER",
                                 "ssh://p i@x", "ssh://pi@-x"])
def test_option_like_user_or_host_is_refused_and_runs_nothing(tmp_path, monkeypatch, url):
    # Before the fix ssh read the user part as `-oProxyCommand=...` and ran `touch MARKER@x` here.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetError, match=r"--target '.*' has the (user name|host)"):
        make_target(url, ssh_timeout=10).check()
    assert not list(tmp_path.glob("MARKER*"))


def test_the_destination_follows_an_end_of_options_marker():
    target = make_target("ssh://pi@raspberrypi.local:2222")
    argv = target._argv("true")
    assert argv[-3:] == ["--", "pi@raspberrypi.local", "true"]
    assert make_target("ssh://pi@[::1]:22").dest == "pi@::1" and make_target("ssh://10.0.0.7").dest == "10.0.0.7"


def test_search_cli_refuses_an_option_like_target_before_any_work(tmp_path):
    data = tmp_path / "data"
    data.mkdir()  # the target is checked right after DATA_DIR exists, before any scan or training
    edgecnn = str(Path(sys.executable).with_name("edgecnn"))
    proc = subprocess.run([edgecnn, "search", str(data), "--target",
                           "ssh://-oProxyCommand=touch MARKER@x", "--max-latency-ms", "30", "--max-size-kb", "100",
                           "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "has the user name '-oProxyCommand=touch MARKER'" in proc.stderr
    assert not list(tmp_path.glob("MARKER*"))
