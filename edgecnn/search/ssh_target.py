"""The ``ssh://user@board[:port]`` target: latency measured on a real board over SSH.

The model is copied to the board over ``ssh`` (``cat > file``: no SFTP subsystem needed),
``edgecnn benchmark MODEL --json`` runs there, and its JSON is read back. The ``ssh`` client runs
in BatchMode (never a password prompt), with a ConnectTimeout and a timeout per step.
"""

import shlex
from pathlib import Path
from typing import List, Optional

from edgecnn.remote.ssh import SSH, SSHError, last_json_object, last_line, parse_ssh_url
from edgecnn.search.target_base import DEFAULT_RUNS, DEFAULT_STAT, Target, TargetError, stat_from_report


class SSHTarget(Target):
    """Measure on a real board over SSH with the OpenSSH ``ssh`` client (:mod:`edgecnn.remote.ssh`).

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
        try:
            address = parse_ssh_url(url)
        except SSHError as exc:
            raise TargetError(str(exc)) from None
        self.url, self.host, self.user, self.port = url, address.host, address.user, address.port
        self.name = url
        self.transport = SSH(address, key, options, timeout, connect_timeout)
        self.remote_edgecnn, self.key, self.options = remote_edgecnn, key, list(options or [])
        self.timeout, self.stat, self.connect_timeout, self.runs = timeout, stat, connect_timeout, runs
        self.threads = threads

    @property
    def dest(self) -> str:
        return self.transport.address.dest

    def _argv(self, command: str) -> List[str]:
        return self.transport.argv(command)

    def ssh(self, command: str, what: str = "the command", stdin=None) -> str:
        try:
            return self.transport.output(command, what, stdin=stdin)
        except SSHError as exc:
            if exc.kind != "failed":
                raise TargetError(str(exc)) from None
            raise TargetError(f"`{self.remote_edgecnn} benchmark` failed on board '{self.url}' (exit "
                              f"{exc.returncode}: {last_line(exc.stderr, exc.stdout)}). Install edgecnn on the "
                              "board (pip install 'edgecnn[device]') or pass --remote-edgecnn with its path.") from None

    def _copy(self, local: Path, remote: str):
        """Copy a file with ``ssh ... 'cat > remote'`` (works without the SFTP subsystem scp needs)."""
        try:
            with open(local, "rb") as fh:
                self.transport.run(f"cat > {shlex.quote(remote)}", "the copy", stdin=fh, fix="Check the network")
        except SSHError as exc:
            if exc.kind != "failed":
                raise TargetError(str(exc)) from None
            raise TargetError(f"cannot copy the model to '{remote}' on board '{self.url}' "
                              f"({last_line(exc.stderr)}).") from None

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
        report = last_json_object(out)
        if report is None:
            raise TargetError(f"`{self.remote_edgecnn} benchmark --json` on board '{self.url}' printed no JSON "
                              f"object (last output: {out.strip()[-200:]!r}).")
        value = stat_from_report(report, self.stat)
        if value is None:
            raise TargetError(f"the benchmark report from '{self.url}' has no '{self.stat}' figure "
                              f"(keys: {sorted(report)}).")
        return {"latency_ms": value, "latency_kind": "measured", "target": self.url, "stat": self.stat,
                "benchmark": report}


