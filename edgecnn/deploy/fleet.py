"""``edgecnn fleet status|rollback TARGET...``: what each board runs and how it does; the way back."""

import time
from concurrent.futures import ThreadPoolExecutor

from edgecnn.deploy.health import wait_healthy
from edgecnn.deploy.inventory import load_boards
from edgecnn.deploy.link import BoardFailure, BoardLink
from edgecnn.deploy.options import FleetOptions
from edgecnn.errors import format_bytes
from edgecnn.remote.ssh import control_dir


def _each(boards, opts, work):
    """``work(board, link)`` on every board, ``parallel`` at a time, one shared ssh connection per board."""
    def one(board, folder):
        link = BoardLink(board, opts, folder)
        try:
            return work(board, link)
        finally:
            link.close()

    with control_dir() as folder, ThreadPoolExecutor(max_workers=max(1, min(int(opts.parallel), len(boards)))) as pool:
        return list(pool.map(lambda b: one(b, folder), boards))


def fleet_status(targets=(), targets_file=None, options: FleetOptions = None, **overrides) -> dict:
    """Per board: the bundle it runs (sha, name), its self-test, uptime, FPS, fallback rate, last error,
    disk free; ``{"boards": [...], "lines": [...]}``."""
    opts = FleetOptions.of(options, **overrides)
    boards = load_boards(targets, targets_file)
    rows = _each(boards, opts, _status_row)
    return {"boards": rows, "lines": [r["line"] for r in rows],
            "reachable": sum(r["status"] == "ok" for r in rows), "total": len(rows)}


def _status_row(board, link) -> dict:
    row = {"board": board.name, "url": board.url, "root": board.root, "groups": list(board.groups)}
    try:
        state = link.status()
    except BoardFailure as exc:
        return {**row, "status": exc.status, "error": str(exc), "line": f"{board.name}: {exc.status}: {exc}"}
    app = state.get("app") or {}
    current = state.get("current") or {}
    row.update({"status": "ok", "current": state.get("current"), "previous": state.get("previous"),
                "bundles": state.get("bundles"), "self_test": state.get("self_test"),
                "running_sha256": app.get("sha256"), "uptime_s": app.get("uptime_s"), "fps": app.get("fps"),
                "fallback_rate": app.get("fallback_rate"), "last_error": app.get("last_error"),
                "app_error": app.get("error"), "watched": app.get("source"),
                "disk_free_bytes": state.get("free_bytes")})
    row["line"] = _status_line(board.name, row, current)
    return row


def _status_line(name, row, current) -> str:
    sha = current.get("sha256")
    test = row["self_test"]
    parts = [f"current {sha[:12]} ({current.get('name') or 'unnamed'})" if sha else "no current bundle",
             "self-test " + ("passed" if test and test["ok"] else "failed" if test else "not recorded")]
    if row["app_error"]:
        parts.append(f"app: {row['app_error']}")
    else:
        if row["running_sha256"] != sha:
            parts.append(f"app runs {str(row['running_sha256'])[:12]}")
        up = row["uptime_s"]
        parts.append(f"up {up:.0f} s, {row['fps']} fps" if up is not None else "uptime unknown")
        if row["fallback_rate"] is not None:
            parts.append(f"fallback {row['fallback_rate']:.1%}")
    last = row["last_error"] or {}
    age = f", {last['age_s']:.0f} s ago" if isinstance(last.get("age_s"), (int, float)) else ""
    parts.append(f"last error ({last.get('event')}{age}): {last.get('reason')}" if last else "no errors")
    parts.append(f"{format_bytes(row['disk_free_bytes'])} free")
    return f"{name}: " + ", ".join(parts)


def fleet_rollback(targets=(), targets_file=None, options: FleetOptions = None, **overrides) -> dict:
    """Point each board's ``current`` back at ``previous`` and wait for its app to follow (``health_timeout``)."""
    opts = FleetOptions.of(options, **overrides)
    boards = load_boards(targets, targets_file)
    rows = _each(boards, opts, lambda b, link: _rollback_one(b, link, opts))
    return {"boards": rows, "lines": [r["line"] for r in rows], "held": all(r["status"] == "ok" for r in rows)}


def _rollback_one(board, link, opts) -> dict:
    row = {"board": board.name, "url": board.url}
    started = time.monotonic()
    try:
        back = link.rollback()
        if opts.restart_service:
            link.restart(opts.restart_service)
        sha = back["current"]
        waited = wait_healthy(link, sha, opts.health_timeout) if opts.health_timeout else None
    except BoardFailure as exc:
        return {**row, "status": exc.status, "error": str(exc), "line": f"{board.name}: {exc.status}: {exc}"}
    follows = f", the app classifies with it after {waited:.1f} s" if waited is not None else ""
    return {**row, "status": "ok", "current": sha, "previous": back.get("previous"),
            "seconds": round(time.monotonic() - started, 3),
            "line": f"{board.name}: ok (back on {sha[:12]}, previous {str(back.get('previous'))[:12]}{follows})"}
