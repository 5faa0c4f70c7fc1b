"""``ssh://user@host[:port][/path]`` and the OpenSSH ``ssh`` client, run in BatchMode.

One :class:`SSH` per board: it builds the argv (``--`` before the destination, so nothing in a
URL can become an ssh option), runs a command with a timeout, streams a local file or a pipe
to a remote command's stdin (``cat > file``: no SFTP subsystem needed), and turns what went
wrong into one :class:`SSHError` whose ``kind`` says which: ``unreachable`` (ssh's own exit
255), ``timeout``, ``failed`` (the remote command's exit status), ``client`` (no ssh here).

With a ``control_dir`` the commands to one board share one connection (OpenSSH's ControlMaster):
a deploy runs several short commands per board, and each new connection's key exchange cost
about 0.6 s against 0.15 s for a shared one on a loaded two-core machine.
"""

import contextlib
import ipaddress
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import unquote, urlparse

from edgecnn.errors import EdgecnnError

# What a board's user and host name may be. Anything else (a leading '-' above all) could be read
# by ssh as an option: `ssh://-oProxyCommand=CMD@x` would run CMD on this machine.
_SSH_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"  # one part of a host name: never a leading '-'
_SSH_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")
UNREACHABLE = 255  # ssh's own exit status: it could not connect or the connection broke


class SSHError(EdgecnnError):
    """An ssh:// address is malformed, or a command over SSH could not run or failed.

    ``kind``: ``address``, ``unreachable``, ``timeout``, ``failed``, ``client``; ``returncode`` and
    ``stderr`` are the remote command's when it ran."""

    def __init__(self, message, kind, returncode=None, stderr="", stdout=""):
        super().__init__(message)
        self.kind, self.returncode, self.stderr, self.stdout = kind, returncode, stderr, stdout


@dataclass(frozen=True)
class SSHAddress:
    """A parsed ``ssh://user@host[:port][/path]``; ``path`` is '' when the URL has none."""

    url: str
    user: Optional[str]
    host: str
    port: int
    path: str = ""

    @property
    def dest(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


def parse_ssh_url(url: str, flag: str = "--target", with_path: bool = False) -> SSHAddress:
    """Check and split an ssh:// URL; ``flag`` names the option in the error messages."""
    parsed = urlparse(url)
    path = unquote(parsed.path)
    if parsed.scheme != "ssh" or not parsed.hostname or (path not in ("", "/") and not with_path):
        example = "ssh://pi@raspberrypi.local[/srv/edgecnn]" if with_path else "ssh://pi@raspberrypi.local"
        raise SSHError(f"{flag} '{url}' is not ssh://user@board[:port]{'[/root]' if with_path else ''} (for example "
                       f"{example} or ssh://pi@10.0.0.7:2222).", "address")
    try:
        port = parsed.port or 22
    except ValueError:
        raise SSHError(f"{flag} '{url}' has an invalid port; use ssh://user@board:PORT.", "address") from None
    if any(ord(c) < 32 for c in path):
        raise SSHError(f"{flag} '{url}' has a control character in its path; name a plain folder.", "address")
    return SSHAddress(url, _checked_user(url, parsed.username, flag), _checked_host(url, parsed.hostname, flag), port,
                      "" if path == "/" else path)


class SSH:
    """Run commands on one machine with the ``ssh`` client (BatchMode: never a password prompt).

    Args:
        address: an :class:`SSHAddress` (or an ssh:// URL without a path).
        key: identity file (``-i``); otherwise the ssh agent / default keys.
        options: extra ssh options, e.g. ``["-o", "UserKnownHostsFile=/path"]``.
        timeout: seconds for each command; connect_timeout: seconds to connect.
        control_dir: share one connection for every command, its socket in this folder (:func:`control_dir`);
            :meth:`close` ends it.
    """

    def __init__(self, address, key: Optional[str] = None, options: Optional[List[str]] = None,
                 timeout: float = 120.0, connect_timeout: int = 10, control_dir=None):
        self.address = address if isinstance(address, SSHAddress) else parse_ssh_url(address)
        self.key, self.options = key, list(options or [])
        self.timeout, self.connect_timeout = float(timeout), int(connect_timeout)
        self.control = ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/%C",
                        "-o", "ControlPersist=120"] if control_dir else []

    @property
    def url(self) -> str:
        return self.address.url

    def _common(self) -> List[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR"]
        if self.key:
            opts += ["-i", str(self.key)]
        return opts + self.control + self.options

    def argv(self, command: str) -> List[str]:
        # `--` ends ssh's options: the destination can never be read as one, whatever it holds
        return ["ssh", "-p", str(self.address.port)] + self._common() + ["--", self.address.dest, command]

    def unreachable(self, detail: str) -> SSHError:
        a = self.address
        return SSHError(f"board '{a.url}' is unreachable over SSH ({detail}). Check that it is on and that "
                        f"`ssh -p {a.port} {a.dest}` logs in without a password prompt (BatchMode), or pass "
                        "--ssh-key.", "unreachable", UNREACHABLE, stderr=detail)

    def timed_out(self, what: str, fix: str, timeout=None) -> SSHError:
        return SSHError(f"board '{self.url}' did not finish {what} within {timeout or self.timeout:g} s. {fix}, or "
                        "raise --ssh-timeout.", "timeout")

    def run(self, command: str, what: str = "the command", stdin=None, timeout: Optional[float] = None,
            fix: str = "Check the board's load and network") -> subprocess.CompletedProcess:
        """Run ``command`` there; return the finished process (text output) when it exits 0.

        ``stdin``: bytes, a binary file, or None (nothing). Raises SSHError otherwise."""
        timeout = timeout or self.timeout
        as_bytes = stdin is not None and not isinstance(stdin, (bytes, bytearray))
        try:
            proc = subprocess.run(self.argv(command), input=stdin if isinstance(stdin, (bytes, bytearray)) else None,
                                  stdin=stdin if as_bytes else (None if stdin is not None else subprocess.DEVNULL),
                                  capture_output=True, timeout=timeout)
        except FileNotFoundError:
            raise SSHError("the 'ssh' client is not installed; install OpenSSH (apt-get install openssh-client) to "
                           "reach a board over SSH.", "client") from None
        except subprocess.TimeoutExpired:
            raise self.timed_out(what, fix, timeout) from None
        out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        if proc.returncode == UNREACHABLE:
            raise self.unreachable(last_line(err))
        if proc.returncode != 0:
            raise SSHError(f"{what} failed on board '{self.url}' (exit {proc.returncode}: {last_line(err, out)}).",
                           "failed", proc.returncode, err, out)
        return subprocess.CompletedProcess(proc.args, 0, out, err)

    def output(self, command: str, what: str = "the command", **kwargs) -> str:
        return self.run(command, what, **kwargs).stdout

    def close(self):
        """End the shared connection, if there is one (nothing to do otherwise)."""
        if self.control:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(["ssh", "-p", str(self.address.port)] + self.control + ["-O", "exit", "--",
                               self.address.dest], capture_output=True, timeout=10)


@contextlib.contextmanager
def control_dir():
    """A private folder for shared-connection sockets, removed afterwards (short: a socket path has ~100 bytes)."""
    folder = tempfile.mkdtemp(prefix="edgecnn-ssh-", dir="/tmp")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def last_json_object(out: str) -> Optional[dict]:
    """The last line of ``out`` that parses as a JSON object (a remote command may print other lines first)."""
    for line in reversed((out or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def last_line(*outputs: str) -> str:
    """The last line of the first output that has one: what ssh or the remote command said last."""
    for text in outputs:
        lines = (text or "").strip().splitlines()
        if lines:
            return lines[-1]
    return "no message"


def _checked_user(url: str, user: Optional[str], flag: str) -> Optional[str]:
    if user is None or _SSH_USER.fullmatch(user):
        return user
    raise SSHError(f"{flag} '{url}' has the user name {user!r}, which ssh could take for an option or which is "
                   "not a login name; use letters, digits, '.', '_' and '-' (not first), e.g. "
                   "ssh://pi@raspberrypi.local.", "address")


def _checked_host(url: str, host: str, flag: str) -> str:
    try:
        ipaddress.ip_address(host)  # 10.0.0.7, or ::1 (written ssh://pi@[::1])
        return host
    except ValueError:
        pass
    if _SSH_HOST.fullmatch(host):
        return host
    raise SSHError(f"{flag} '{url}' has the host {host!r}, which is not a host name or IP address (ssh could take "
                   "it for an option); use e.g. ssh://pi@raspberrypi.local or ssh://pi@10.0.0.7.", "address")
