"""The ``ssh://user@board[:port]`` target: latency measured on a real board over SSH.

The model is copied to the board over ``ssh`` (``cat > file``: no SFTP subsystem needed),
``edgecnn benchmark MODEL --json`` runs there, and its JSON is read back. The ``ssh`` client runs
in BatchMode (never a password prompt), with a ConnectTimeout and a timeout per step.
"""

import ipaddress
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlparse

from edgecnn.search.target_base import DEFAULT_RUNS, DEFAULT_STAT, Target, TargetError, stat_from_report

# What a board's user and host name may be. Anything else (a leading '-' above all) could be read
# by ssh as an option: `ssh://-oProxyCommand=CMD@x` would run CMD on this machine.
_SSH_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"  # one part of a host name: never a leading '-'
_SSH_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


class SSHTarget(Target):
    """Measure on a real board over SSH with the OpenSSH ``ssh`` client.

    Args:
        url: ``ssh://user@host[:port]``.
        remote_edgecnn: the ``edgecnn`` command on the board (a venv's absolute path works).
        key: identity file (``-i``); otherwise the ssh agent / default keys.
        options: extra ``-o`` style options, e.g. ``["-o", "UserKnownHostsFile=/path"]``.
        timeout: seconds for each remote step (copy, benchmark).
    """

    def __init__(self, url: str, remote_edgecnn: str = "edgecnn", key: Optional[str] = None,
                 options: Optional[List[str]] = None, timeout: float = 120.0, stat: str = DEFAULT_STAT,
                 connect_timeout: int = 10, runs: int = DEFAULT_RUNS, threads: Optional[int] = None):
        parsed = urlparse(url)
        if parsed.scheme != "ssh" or not parsed.hostname or parsed.path not in ("", "/"):
            raise TargetError(f"--target '{url}' is not ssh://user@board[:port] (for example "
                              "ssh://pi@raspberrypi.local or ssh://pi@10.0.0.7:2222).")
        try:
            self.port = parsed.port or 22
        except ValueError:
            raise TargetError(f"--target '{url}' has an invalid port; use ssh://user@board:PORT.") from None
        self.url, self.host, self.user = url, _checked_host(url, parsed.hostname), _checked_user(url, parsed.username)
        self.name = url
        self.remote_edgecnn, self.key, self.options = remote_edgecnn, key, list(options or [])
        self.timeout, self.stat, self.connect_timeout, self.runs = timeout, stat, connect_timeout, runs
        self.threads = threads

    @property
    def dest(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def _common(self) -> List[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR"]
        if self.key:
            opts += ["-i", str(self.key)]
        return opts + self.options

    def _unreachable(self, detail: str) -> TargetError:
        return TargetError(f"board '{self.url}' is unreachable over SSH ({detail}). Check that it is on and "
                           f"that `ssh -p {self.port} {self.dest}` logs in without a password prompt "
                           "(BatchMode), or pass --ssh-key.")

    def _timed_out(self, what: str, fix: str) -> TargetError:
        return TargetError(f"board '{self.url}' did not finish {what} within {self.timeout:g} s. {fix}, or raise "
                           "--ssh-timeout.")

    def _run(self, argv, what: str) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise TargetError(f"the '{argv[0]}' client is not installed; install OpenSSH (apt-get install "
                              "openssh-client) to measure on a board over SSH.") from None
        except subprocess.TimeoutExpired:
            raise self._timed_out(what, "Check the board's load and network") from None
        if proc.returncode == 255:
            raise self._unreachable(_last_line(proc.stderr))
        if proc.returncode != 0:
            raise TargetError(f"`{self.remote_edgecnn} benchmark` failed on board '{self.url}' (exit "
                              f"{proc.returncode}: {_last_line(proc.stderr, proc.stdout)}). Install edgecnn on the "
                              "board (pip install 'edgecnn[device]') or pass --remote-edgecnn with its path.")
        return proc.stdout

    def _argv(self, command: str) -> List[str]:
        # `--` ends ssh's options: the destination can never be read as one, whatever it holds
        return ["ssh", "-p", str(self.port)] + self._common() + ["--", self.dest, command]

    def ssh(self, command: str, what: str = "the command") -> str:
        return self._run(self._argv(command), what)

    def _copy(self, local: Path, remote: str):
        """Copy a file with ``ssh ... 'cat > remote'`` (works without the SFTP subsystem scp needs)."""
        argv = self._argv(f"cat > {shlex.quote(remote)}")
        try:
            with open(local, "rb") as fh:
                proc = subprocess.run(argv, stdin=fh, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise self._timed_out("the copy", "Check the network") from None
        if proc.returncode != 0:
            detail = _last_line(proc.stderr.decode(errors="replace"))
            if proc.returncode == 255:
                raise self._unreachable(detail)
            raise TargetError(f"cannot copy the model to '{remote}' on board '{self.url}' ({detail}).")

    def check(self):
        """Fail early, before any training, when the board cannot be reached."""
        self.ssh("true", "the connection test")

    def measure(self, model_path) -> dict:
        model_path = Path(model_path)
        remote_dir = self.ssh("mktemp -d /tmp/edgecnn-search.XXXXXX", "creating a folder").strip().splitlines()[-1]
        remote = f"{remote_dir}/{model_path.name}"
        try:
            self._copy(model_path, remote)
            threads = f" --threads {int(self.threads)}" if self.threads else ""
            out = self.ssh(f"{shlex.quote(self.remote_edgecnn)} benchmark {shlex.quote(remote)} --json{threads}",
                           "the benchmark")
        finally:
            try:
                self.ssh(f"rm -rf {shlex.quote(remote_dir)}", "cleaning up")
            except TargetError:
                pass
        report = _last_json_object(out)
        if report is None:
            raise TargetError(f"`{self.remote_edgecnn} benchmark --json` on board '{self.url}' printed no JSON "
                              f"object (last output: {out.strip()[-200:]!r}).")
        value = stat_from_report(report, self.stat)
        if value is None:
            raise TargetError(f"the benchmark report from '{self.url}' has no '{self.stat}' figure "
                              f"(keys: {sorted(report)}).")
        return {"latency_ms": value, "latency_kind": "measured", "target": self.url, "stat": self.stat,
                "benchmark": report}


def _last_line(*outputs: str) -> str:
    """The last line of the first output that has one: what ssh or the remote command said last."""
    for text in outputs:
        lines = text.strip().splitlines()
        if lines:
            return lines[-1]
    return "no message"


def _last_json_object(out: str) -> Optional[dict]:
    """The last line of ``out`` that parses as a JSON object (the board may print other lines first)."""
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _checked_user(url: str, user: Optional[str]) -> Optional[str]:
    if user is None or _SSH_USER.fullmatch(user):
        return user
    raise TargetError(f"--target '{url}' has the user name {user!r}, which ssh could take for an option or "
                      "which is not a login name; use letters, digits, '.', '_' and '-' (not first), e.g. "
                      "ssh://pi@raspberrypi.local.")


def _checked_host(url: str, host: str) -> str:
    try:
        ipaddress.ip_address(host)  # 10.0.0.7, or ::1 (written ssh://pi@[::1])
        return host
    except ValueError:
        pass
    if _SSH_HOST.fullmatch(host):
        return host
    raise TargetError(f"--target '{url}' has the host {host!r}, which is not a host name or IP address (ssh "
                      "could take it for an option); use e.g. ssh://pi@raspberrypi.local or ssh://pi@10.0.0.7.")
