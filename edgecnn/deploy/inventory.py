"""Which boards: ``ssh://user@host[:port][/root]`` on the command line, or a ``--targets`` file.

A targets file is one URL per line (``#`` comments), or an inventory in TOML or JSON::

    [[boards]]                       # or {"boards": [{"url": ..., ...}]} in JSON
    name = "door-1"
    url = "ssh://pi@10.0.0.7/srv/edgecnn"
    groups = ["canary", "hall"]
    status_url = "http://127.0.0.1:8080/status"   # the app's --http, read on the board
    events = "/var/log/edgecnn/events.jsonl"      # the app's --events (when there is no endpoint)
    edgetpu = true                                # self-test with --edgetpu
    remote_edgecnn = "/opt/edgecnn/venv/bin/edgecnn"

Every key but ``url`` may be left out (the command line's value, then the default, is used);
``status_url = ""`` says the board has no endpoint (its events are read instead).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from edgecnn.errors import EdgecnnError
from edgecnn.remote.ssh import SSHAddress, SSHError, parse_ssh_url

DEFAULT_ROOT = "~/edgecnn"
BOARD_KEYS = ("name", "url", "groups", "status_url", "events", "edgetpu", "remote_edgecnn")


class InventoryError(EdgecnnError):
    """A target or a targets file cannot be read as boards."""


@dataclass(frozen=True)
class Board:
    """One board: where it is (``address``), its ROOT there, and how its app is watched."""

    name: str
    address: SSHAddress
    root: str = DEFAULT_ROOT
    groups: Tuple[str, ...] = ()
    status_url: Optional[str] = None
    events: Optional[str] = None
    edgetpu: Optional[bool] = None
    remote_edgecnn: Optional[str] = None

    @property
    def url(self) -> str:
        return self.address.url


def board_from_url(url: str, where: str = "TARGET", entry: Optional[dict] = None) -> Board:
    entry = entry or {}
    try:
        address = parse_ssh_url(url, flag=where, with_path=True)
    except SSHError as exc:
        raise InventoryError(str(exc)) from None
    path = address.path
    root = DEFAULT_ROOT if not path else ("~" + path[2:] if path.startswith("/~") else path)
    groups = entry.get("groups") or ()
    if isinstance(groups, str):
        groups = (groups,)
    return Board(entry.get("name") or url, address, root, tuple(groups), entry.get("status_url"), entry.get("events"),
                 entry.get("edgetpu"), entry.get("remote_edgecnn"))


def load_boards(targets=(), targets_file=None) -> List[Board]:
    """The boards named by URL and by a targets file, in that order; names must be unique."""
    boards = [board_from_url(url) for url in targets]
    if targets_file:
        boards += _read_file(Path(targets_file))
    if not boards:
        raise InventoryError("no boards given: name one or more ssh://user@host[:port][/root] TARGETs, or "
                             "--targets FILE.")
    seen = {}
    for board in boards:
        if board.name in seen:
            raise InventoryError(f"two boards are named '{board.name}'; give each a unique name (or URL).")
        seen[board.name] = board
    return boards


def _read_file(path: Path) -> List[Board]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"cannot read --targets '{path}' ({exc}).") from None
    stripped = text.lstrip()
    toml = path.suffix == ".toml" or (path.suffix != ".json" and ("[[boards]]" in text or "[boards." in text))
    if toml:
        import tomllib  # Python 3.11+

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InventoryError(f"--targets '{path}' is not valid TOML ({exc}).") from None
    elif path.suffix == ".json" or stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InventoryError(f"--targets '{path}' is not valid JSON ({exc}).") from None
    else:
        urls = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        return [board_from_url(url, f"--targets '{path}': line {i + 1}") for i, url in enumerate(urls) if url]
    return _entries(data, path)


def _entries(data, path: Path) -> List[Board]:
    boards = data.get("boards") if isinstance(data, dict) else data
    if isinstance(boards, dict):  # [boards.NAME] tables
        boards = [{"name": name, **(entry if isinstance(entry, dict) else {})} for name, entry in boards.items()]
    if not isinstance(boards, list) or not boards:
        raise InventoryError(f"--targets '{path}' lists no boards; write a `boards` list of entries with a `url` "
                             "each (see `edgecnn deploy --help`).")
    out = []
    for i, entry in enumerate(boards):
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise InventoryError(f"--targets '{path}': board {i + 1} has no `url` (ssh://user@host[:port][/root]).")
        unknown = sorted(set(entry) - set(BOARD_KEYS))
        if unknown:
            raise InventoryError(f"--targets '{path}': board {i + 1} has unknown key(s) {', '.join(unknown)}; the keys "
                                 f"are {', '.join(BOARD_KEYS)}.")
        out.append(board_from_url(entry["url"], f"--targets '{path}': board {i + 1}", entry))
    return out


def canary_boards(boards: List[Board], canary) -> List[Board]:
    """``--canary N`` (the first N boards) or ``--canary GROUP`` (the boards in that group)."""
    if canary in (None, "", 0, "0"):
        return []
    if str(canary).isdigit():
        return boards[:int(canary)]
    chosen = [b for b in boards if canary in b.groups]
    if not chosen:
        groups = sorted({g for b in boards for g in b.groups})
        raise InventoryError(f"--canary '{canary}' is neither a number nor a group of the boards given (groups: "
                             f"{', '.join(groups) or 'none; give groups in a --targets inventory'}).")
    return chosen
