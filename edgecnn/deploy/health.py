"""Did the switch hold: the board's app classifies with the new bundle within the health timeout."""

import time

from edgecnn.deploy.link import BoardFailure, BoardLink

POLL_S = 1.0


def wait_healthy(link: BoardLink, sha: str, timeout: float) -> float:
    """Seconds until the app classified a frame with bundle ``sha``; BoardFailure saying why it did not.

    The app's ``bundle_rejected`` for this bundle ends the wait at once (its own self-test or load failed)."""
    started = time.monotonic()
    deadline = started + float(timeout)
    app = {}
    while True:
        try:
            app = link.status().get("app") or {}
        except BoardFailure as exc:
            if exc.status == "unreachable" or time.monotonic() >= deadline:
                raise
            app = {"error": str(exc)}
        if app.get("sha256") == sha and (app.get("frames_on_bundle") or 0) > 0:
            return time.monotonic() - started
        rejected = app.get("rejected") or {}
        if rejected.get("sha256") == sha:
            raise BoardFailure("failed", f"the app rejected it: {rejected.get('reason')}")
        if time.monotonic() >= deadline:
            raise BoardFailure("failed", f"health check: {_why(app, sha, timeout)}")
        time.sleep(POLL_S)


def _why(app: dict, sha: str, timeout: float) -> str:
    if app.get("error"):
        return f"{app['error']} within {timeout:g} s"
    running = app.get("sha256")
    if running == sha:
        return f"the app switched to it but classified no frame within {timeout:g} s"
    last = app.get("last_error") or {}
    tail = f" (last error: {last.get('reason')})" if last.get("reason") else ""
    return f"the app still classifies with {str(running)[:12]} after {timeout:g} s{tail}"
