"""One board over SSH: the ``edgecnn board`` and ``edgecnn run --self-test`` commands deploy runs there.

Each method is one ``ssh`` command; what goes wrong becomes a :class:`BoardFailure` whose
``status`` is the word of the board's line (``unreachable``, ``failed``) and whose message is
what the board said (its ``Error: ...`` line), not ssh's whole stderr.
"""

import json
import shlex

from edgecnn.deploy.inventory import Board
from edgecnn.deploy.options import FleetOptions
from edgecnn.errors import EdgecnnError
from edgecnn.remote.ssh import SSH, SSHError, last_json_object, last_line

SELF_TEST_PREFIX = "self-test of bundle "


class BoardFailure(EdgecnnError):
    """One step on one board did not work; ``status`` says how the board's line reads."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def remote_error(exc: SSHError, what: str) -> BoardFailure:
    """What the board said, as a BoardFailure: its ``Error: ...`` line when there is one."""
    if exc.kind == "unreachable":
        return BoardFailure("unreachable", f"{exc.stderr or 'connection failed'} (during {what})")
    if exc.kind != "failed":
        return BoardFailure("failed", str(exc))
    lines = [line for line in (exc.stderr or "").splitlines() if line.startswith("Error: ")]
    said = lines[-1][len("Error: "):] if lines else last_line(exc.stderr, exc.stdout)
    return BoardFailure("failed", f"{what}: {said}" if not lines else said)


class HomePath(str):
    """A board path that may start with ``~/``: the remote shell expands it to ``$HOME`` (``edgecnn board``
    commands expand ROOT themselves; ``edgecnn run`` takes the path as given)."""


def _word(arg) -> str:
    if isinstance(arg, HomePath) and arg.startswith("~/"):
        return '"$HOME"/' + shlex.quote(arg[2:])
    return shlex.quote(str(arg))


class BoardLink:
    """Args: board (where and what), options (the ssh client, the remote command, the app's status)."""

    def __init__(self, board: Board, options: FleetOptions, control_dir=None):
        self.board, self.options = board, options
        self.ssh = SSH(board.address, options.ssh_key, list(options.ssh_options), options.ssh_timeout,
                       options.connect_timeout, control_dir)
        self.edgecnn = board.remote_edgecnn or options.remote_edgecnn
        self.root = board.root

    def _command(self, *args) -> str:
        return " ".join(_word(a) for a in (self.edgecnn, *args))

    def _json(self, what: str, *args, stdin=None) -> dict:
        try:
            out = self.ssh.output(self._command(*args), what, stdin=stdin)
        except SSHError as exc:
            raise remote_error(exc, what) from None
        report = last_json_object(out)
        if report is not None:
            return report
        raise BoardFailure("failed", f"{what}: `{self.edgecnn}` printed no JSON (last output: {out.strip()[-200:]!r}); "
                                     "is edgecnn on the board this version? (--remote-edgecnn names it)")

    def bundle_path(self, sha: str) -> str:
        return f"{self.root}/bundles/{sha}"

    def receive(self, tar_path, sha: str, size: int, name: str) -> dict:
        with open(tar_path, "rb") as fh:
            return self._json("the copy", "board", "receive", self.root, sha, "--bytes", size, "--name", name,
                              stdin=fh)

    def self_test(self, sha: str) -> dict:
        """``edgecnn run ROOT/bundles/SHA --self-test --json`` there; a failure says which check."""
        edgetpu = self.board.edgetpu if self.board.edgetpu is not None else self.options.edgetpu
        args = ["run", HomePath(self.bundle_path(sha)), "--self-test", "--json"] + (["--edgetpu"] if edgetpu else [])
        try:
            return self._json("the self-test", *args)
        except BoardFailure as exc:
            text = str(exc)
            if text.startswith(SELF_TEST_PREFIX) and " failed: " in text:  # drop the long bundle path
                text = "self-test failed: " + text.split(" failed: ", 1)[1]
            raise BoardFailure(exc.status, text) from None

    def switch(self, sha: str, report: dict) -> dict:
        return self._json("the switch", "board", "switch", self.root, sha, "--keep", self.options.keep,
                          stdin=json.dumps(report).encode())

    def rollback(self, failed: bool = False) -> dict:
        return self._json("the rollback", "board", "rollback", self.root, *(["--failed"] if failed else []))

    def discard(self, sha: str) -> dict:
        return self._json("removing the bundle", "board", "discard", self.root, sha)

    def watched(self):
        """(status URL, events file) of this board's app; an inventory's "" means none (not the default)."""
        pick = lambda own, default: own if own is not None else default  # noqa: E731
        return pick(self.board.status_url, self.options.status_url), pick(self.board.events, self.options.events)

    def status(self) -> dict:
        args = ["board", "status", self.root]
        url, events = self.watched()
        args += (["--status-url", url] if url else []) + (["--events", events] if events else [])
        return self._json("reading the status", *args)

    def close(self):
        self.ssh.close()

    def restart(self, service: str):
        sudo = "" if self.board.address.user == "root" else "sudo -n "
        try:
            self.ssh.run(f"{sudo}systemctl restart {shlex.quote(service)}", f"restarting {service}")
        except SSHError as exc:
            raise remote_error(exc, f"restarting {service}") from None
