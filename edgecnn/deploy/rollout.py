"""``edgecnn deploy BUNDLE TARGET...``: a bundle onto a fleet, proven on each board before it runs there.

On each board (:func:`install`): copy into ``ROOT/bundles/<sha>/`` through a temporary folder and
a rename (skipped when it is there), ``edgecnn run ... --self-test --json`` with the board's own
interpreter, switch ``ROOT/current`` atomically (``previous`` kept, ``--keep`` bundles), restart the
unit or let ``--watch-bundle`` follow, then wait for the app to classify with the new sha; if it
does not, roll back to ``previous``. The canary boards go first; when one fails, no other board
is touched. Every board ends with one line, and ``held`` says whether the whole rollout did.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional

from edgecnn.deploy.health import wait_healthy
from edgecnn.deploy.inventory import Board, canary_boards, load_boards
from edgecnn.deploy.link import BoardFailure, BoardLink
from edgecnn.deploy.options import FleetOptions
from edgecnn.deploy.package import BundlePackage
from edgecnn.remote.ssh import control_dir


@dataclass
class Outcome:
    """How one board ended: ``ok``, ``rolled back``, ``failed``, ``unreachable``, ``skipped`` or ``planned``."""

    board: str
    url: str
    status: str
    reason: str = ""
    sha256: Optional[str] = None
    previous: Optional[str] = None
    copied: Optional[bool] = None
    self_test: Optional[str] = None
    healthy_after_s: Optional[float] = None
    seconds: float = 0.0

    def line(self) -> str:
        if self.status != "ok":
            return f"{self.board}: {self.status}: {self.reason}"
        parts = [f"{self.sha256[:12]} current", f"previous {self.previous[:12] if self.previous else 'none'}",
                 "copied" if self.copied else "already there"]
        if self.self_test:
            parts.append(self.self_test)
        if self.healthy_after_s is not None:
            parts.append(f"classifying with it after {self.healthy_after_s:.1f} s")
        return f"{self.board}: ok ({', '.join(parts)})" + (f" {self.reason}" if self.reason else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "line": self.line()}


def deploy(bundle, targets=(), targets_file=None, options: FleetOptions = None,
           progress: Callable[[Outcome], None] = None, **overrides) -> dict:
    """Deploy ``bundle`` to the boards; return ``{"held", "sha256", "boards": [...], "lines": [...]}``.

    ``options`` (or keyword arguments of :class:`FleetOptions`' names) say how; ``progress`` receives
    each board's :class:`Outcome` as it ends."""
    opts = FleetOptions.of(options, **overrides)
    boards = load_boards(targets, targets_file)
    canary = canary_boards(boards, opts.canary)
    rest = [b for b in boards if b not in canary]
    progress = progress or (lambda outcome: None)
    with BundlePackage(bundle) as package, control_dir() as folder:
        if opts.dry_run:
            outcomes = [_planned(b, package, opts, b in canary) for b in canary + rest]
            for outcome in outcomes:
                progress(outcome)
        else:
            outcomes = _run(canary, package, opts, progress, folder)
            failed = [o for o in outcomes if o.status != "ok"]
            if failed:
                why = f"canary {failed[0].board} {failed[0].status}"
                skipped = [Outcome(b.name, b.url, "skipped", f"{why}; the rollout stopped") for b in rest]
                for outcome in skipped:
                    progress(outcome)
                outcomes += skipped
            else:
                outcomes += _run(rest, package, opts, progress, folder)
        order = {b.name: i for i, b in enumerate(boards)}
        outcomes.sort(key=lambda o: order[o.board])
        return _report(package, outcomes, canary, opts)


def _run(boards: List[Board], package: BundlePackage, opts: FleetOptions, progress, folder) -> List[Outcome]:
    if not boards:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(int(opts.parallel), len(boards)))) as pool:
        futures = [pool.submit(_install_reporting, b, package, opts, progress, folder) for b in boards]
        return [f.result() for f in futures]


def _install_reporting(board, package, opts, progress, folder) -> Outcome:
    link = BoardLink(board, opts, folder)  # one shared ssh connection for this board's commands
    try:
        outcome = install(link, package, opts)
    finally:
        link.close()
    progress(outcome)
    return outcome


def install(link: BoardLink, package: BundlePackage, opts: FleetOptions) -> Outcome:
    """The steps on one board; never raises for what the board did (the Outcome says it)."""
    started = time.monotonic()
    board = link.board
    outcome = Outcome(board.name, board.url, "ok", sha256=package.sha256)
    try:
        outcome.copied = link.receive(package.tar, package.sha256, package.size, package.name)["installed"]
        try:
            report = link.self_test(package.sha256)
        except BoardFailure as exc:
            if exc.status == "unreachable":
                raise
            _quietly(link.discard, package.sha256)  # a bundle that failed here is never left to be switched to
            return _ended(outcome, "rolled back", str(exc), started)
        outcome.self_test = f"self-test {len(report.get('checks') or [])} checks on {report.get('backend')}"
        switched = link.switch(package.sha256, report)
        outcome.previous = switched.get("previous")
        if opts.restart_service:
            link.restart(opts.restart_service)
        if opts.health_timeout and opts.health_timeout > 0:
            try:
                outcome.healthy_after_s = round(wait_healthy(link, package.sha256, opts.health_timeout), 2)
            except BoardFailure as exc:
                if not switched.get("switched", True):  # it ran before this deploy: nothing to undo
                    return _ended(outcome, "failed", f"{exc}; it was current before, nothing changed", started)
                return _ended(outcome, *_roll_back(link, opts, exc), started)
        else:
            outcome.reason = "(no health check)"
    except BoardFailure as exc:
        return _ended(outcome, exc.status, str(exc), started)
    return _ended(outcome, "ok", outcome.reason, started)


def _roll_back(link: BoardLink, opts: FleetOptions, exc: BoardFailure):
    """Return to ``previous`` (the failed bundle removed): ``(status, reason)``, the reason saying what failed
    and, when the way back failed too (a first install has no previous), that the board is left on it."""
    try:
        back = link.rollback(failed=True)
        if opts.restart_service:
            link.restart(opts.restart_service)
    except BoardFailure as undo:
        return "failed", f"{exc}; it stays current, the rollback failed: {undo}"
    return "rolled back", f"{exc}; back on {str(back.get('current'))[:12]}"


def _quietly(step, *args):
    try:
        step(*args)
    except BoardFailure:
        pass


def _ended(outcome: Outcome, status: str, reason: str, started: float) -> Outcome:
    outcome.status, outcome.reason, outcome.seconds = status, reason, round(time.monotonic() - started, 3)
    return outcome


def _planned(board: Board, package: BundlePackage, opts: FleetOptions, canary: bool) -> Outcome:
    link = BoardLink(board, opts)
    health = (f"wait {opts.health_timeout:g} s for {' or '.join(w for w in link.watched() if w) or 'nothing'}"
              if opts.health_timeout else "no health check")
    steps = [f"{'canary: ' if canary else ''}copy {package.size} bytes to {board.root}/bundles/{package.sha256[:12]}",
             f"self-test with {link.edgecnn}", f"switch {board.root}/current (keep {opts.keep})",
             f"restart {opts.restart_service}" if opts.restart_service else "the app's --watch-bundle follows", health]
    return Outcome(board.name, board.url, "planned", "; ".join(steps), sha256=package.sha256)


def _report(package: BundlePackage, outcomes: List[Outcome], canary: List[Board], opts: FleetOptions) -> dict:
    counts = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    held = not opts.dry_run and counts.get("ok", 0) == len(outcomes)
    if opts.dry_run:
        summary = f"dry run: {len(outcomes)} board{'s' if len(outcomes) != 1 else ''} planned, nothing changed"
    elif held:
        n = len(outcomes)
        boards = f"{n} of {n} board{'s run' if n != 1 else ' runs'}"
        summary = f"rollout held: {boards} {package.sha256[:12]} ({package.name})"
    else:
        summary = "rollout did not hold: " + ", ".join(f"{n} {status}" for status, n in counts.items())
    return {**package.describe(), "held": held, "dry_run": opts.dry_run, "counts": counts,
            "canary": [b.name for b in canary], "boards": [o.to_dict() for o in outcomes],
            "lines": [o.line() for o in outcomes], "summary": summary}
