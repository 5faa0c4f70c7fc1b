"""Real OpenSSH servers on 127.0.0.1 for the tests (one per "board"), and a TCP relay that can cut a link.

Each server runs as the current user (root here) with a generated host key and one user key, from
a folder of its own; :func:`start_sshd` skips the test, saying why, when /usr/sbin/sshd or the
clients are missing (`make test` installs openssh-server when apt is there).
"""

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVERS = [Path("/usr/lib/openssh/sftp-server"), Path("/usr/libexec/openssh/sftp-server")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_keys(folder: Path) -> Path:
    """A user key pair in ``folder`` (user_key, user_key.pub), made once."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    if not (folder / "user_key").exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "user_key")], check=True)
    return folder / "user_key"


def start_sshd(folder: Path, user_key: Path, port: int = None) -> dict:
    """Start sshd on 127.0.0.1 (a free port unless given) accepting ``user_key``; returns
    ``{"proc", "port", "url", "key", "options"}`` (url: ``ssh://USER@127.0.0.1:PORT``)."""
    if not SSHD.exists():
        pytest.skip("needs /usr/sbin/sshd (apt-get install openssh-server; `make test` does it when apt is there)")
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("needs the ssh and ssh-keygen clients (openssh-client)")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key")], check=True)
    (folder / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
    os.chmod(folder / "authorized_keys", 0o600)
    port = port or free_port()
    sftp = next((p for p in SFTP_SERVERS if p.exists()), None)
    cfg = folder / "sshd_config"
    cfg.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {folder / 'host_key'}
AuthorizedKeysFile {folder / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
MaxStartups 100
PidFile {folder / 'sshd.pid'}
""" + (f"Subsystem sftp {sftp}\n" if sftp else ""))
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory when run as root
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"sshd did not start: {proc.stdout.read().decode(errors='replace')[-300:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    user = os.environ.get("USER") or __import__("getpass").getuser()
    options = ["-o", f"UserKnownHostsFile={folder / 'known_hosts'}"]
    return {"proc": proc, "port": port, "url": f"ssh://{user}@127.0.0.1:{port}", "key": str(user_key),
            "options": options, "user": user}


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class CuttingRelay:
    """A TCP relay to 127.0.0.1:``port`` that cuts a connection once more than ``cut_after`` bytes went
    through it towards the server (a link dropped in the middle of a copy). ``cut_after=None``: never."""

    def __init__(self, port: int, cut_after: int = None):
        self.target, self.cut_after, self.cuts = port, cut_after, 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, towards_server):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                sent += len(data)
                if towards_server and self.cut_after is not None and sent > self.cut_after:
                    self.cuts += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.server.close()
