"""A throwaway PostgreSQL 15 server on 127.0.0.1 for the tests of search workers sharing a study.

``initdb`` + ``pg_ctl`` in a temporary folder, on a free port, with trust authentication for
127.0.0.1 only. PostgreSQL refuses to run as root, so under root the server runs as a system user
(Debian's ``postgres`` when the package made it, else one created here with ``useradd``) that owns
the folder. When the binaries are missing (``make test`` installs postgresql-15 when apt is there)
or the server does not start, the tests skip saying why; under EDGECNN_REQUIRE_SHARED=1 (CI) they fail.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("EDGECNN_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVICE_USER = "edgecnn-pg"  # created only when running as root on a system without a `postgres` user
DB_USER = "edgecnn"


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be had here; the message says why."""


def unavailable(reason: str):
    raise PostgresUnavailable(reason)


def postgres_server():
    """A started :class:`PostgresServer` for a fixture: skips saying why when PostgreSQL cannot be had,
    fails instead under EDGECNN_REQUIRE_SHARED=1 (CI must run these tests)."""
    try:
        return PostgresServer()
    except PostgresUnavailable as exc:
        if os.environ.get("EDGECNN_REQUIRE_SHARED") == "1":
            pytest.fail(f"EDGECNN_REQUIRE_SHARED=1 but {exc}")
        pytest.skip(str(exc))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user():
    """The user the server runs as: this one, or under root a system user (made when missing)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVICE_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    done = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                          capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"PostgreSQL cannot run as root and useradd {SERVICE_USER} failed: {done.stderr.strip()}")
    return pwd.getpwnam(SERVICE_USER)


def _as(user, cmd):
    return cmd if user is None else ["runuser", "-u", user.pw_name, "--", *cmd]


class PostgresServer:
    """A running server; :meth:`new_database` gives each test its own database URL."""

    def __init__(self):
        for tool in ("initdb", "pg_ctl", "createdb"):
            if not (PG_BIN / tool).is_file():
                unavailable(f"needs PostgreSQL 15's {PG_BIN / tool} (apt-get install postgresql-15; "
                            "`make test` does it when apt is there)")
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="edgecnn-pg-"))
        self.data, self.port = self.root / "data", _free_port()
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run(["initdb", "-D", str(self.data), "-U", DB_USER, "--auth=trust", "--encoding=UTF8", "--no-sync"],
                  "initdb")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=100"
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts, "-w", "-t", "120",
                   "start"], "pg_ctl start")
        self.url = f"postgresql://{DB_USER}@127.0.0.1:{self.port}"
        self._databases = 0

    def _run(self, cmd, what):
        cmd = _as(self.user, [str(PG_BIN / cmd[0]), *cmd[1:]])
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-500:] if log.is_file() else ""
            self.stop()
            unavailable(f"PostgreSQL's {what} failed: {(done.stderr or done.stdout).strip()[-500:]} {tail}")

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL (plain ``postgresql://``, as a user writes it)."""
        self._databases += 1
        name = f"study{self._databases}"
        self._run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, name], "createdb")
        return f"{self.url}/{name}"

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            subprocess.run(_as(self.user, [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                                           "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.3):
    """Poll ``predicate`` until it is truthy (its value), or fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
