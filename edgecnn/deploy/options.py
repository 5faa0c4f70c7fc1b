"""How ``deploy`` and ``fleet`` reach and judge the boards: each default once (the CLI reads them here)."""

from dataclasses import dataclass, fields, replace
from typing import Optional

from edgecnn.devices.board_root import DEFAULT_KEEP


@dataclass(frozen=True)
class FleetOptions:
    """Attributes:
        remote_edgecnn: the ``edgecnn`` command on the boards (a board's inventory entry may name its own).
        status_url: the app's status endpoint, read on the board (``edgecnn run --http 8080`` in the unit).
        events: the app's events file on the board, read when the endpoint does not answer.
        ssh_key, ssh_options, ssh_timeout, connect_timeout: the ``ssh`` client's identity, extra options and
            limits (seconds per command, to connect).
        parallel: boards worked on at once.
        keep: installed bundles kept on a board (current and previous always).
        health_timeout: seconds for the app to classify with the new bundle (0: no health check).
        restart_service: a systemd unit restarted after the switch (else the app's --watch-bundle follows).
        edgetpu: self-test with the Edge TPU (a board's inventory entry may say otherwise).
        canary: N boards, or a group, deployed first; the rollout stops when any of them fails.
        dry_run: print the plan, touch nothing.
    """

    remote_edgecnn: str = "edgecnn"
    status_url: Optional[str] = "http://127.0.0.1:8080/status"
    events: Optional[str] = None
    ssh_key: Optional[str] = None
    ssh_options: tuple = ()
    ssh_timeout: float = 120.0
    connect_timeout: int = 10
    parallel: int = 4
    keep: int = DEFAULT_KEEP
    health_timeout: float = 60.0
    restart_service: Optional[str] = None
    edgetpu: bool = False
    canary: Optional[str] = None
    dry_run: bool = False

    @classmethod
    def of(cls, options: Optional["FleetOptions"] = None, **overrides) -> "FleetOptions":
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown fleet option(s) {', '.join(unknown)}")
        given = {k: (tuple(v) if k == "ssh_options" else v) for k, v in overrides.items() if v is not None}
        return replace(options or cls(), **given)

