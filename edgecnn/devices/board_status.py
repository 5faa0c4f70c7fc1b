"""What a board runs and how it is doing: ROOT's bundles plus the running app's status.

The app's side comes from its status endpoint (``edgecnn run --http PORT``) or, without one, from
the tail of its events file: the bundle sha it classifies with, frames on that bundle, uptime,
FPS, fallback rate, the last error. ``edgecnn fleet status`` and ``deploy``'s health check read
this over SSH (``edgecnn board status ROOT``). Standard library only.
"""

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from edgecnn.devices.board_root import describe_root
from edgecnn.devices.events import TROUBLE

TAIL_BYTES = 512 * 1024  # of the events file read for the app's state


def board_status(root, status_url=None, events=None, timeout=5.0) -> dict:
    """ROOT (:func:`describe_root`) plus ``app``: the running app's state, or why it is unknown."""
    out = describe_root(root)
    app = None
    if status_url:
        app = _from_endpoint(status_url, timeout)
    if (app is None or app.get("error")) and events:
        from_events = _from_events(Path(os.path.expanduser(str(events))))
        if from_events is not None or app is None:
            app = from_events or {"error": f"no events in '{events}' yet"}
    out["app"] = app or {"error": "no status endpoint or events file given (--status-url, --events)"}
    last = out["app"].get("last_error")
    if isinstance(last, dict) and isinstance(last.get("time"), (int, float)):
        last["age_s"] = round(time.time() - last["time"], 1)  # by this board's clock, whatever the workstation's
    return out


def _from_endpoint(url, timeout) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            snap = json.loads(resp.read().decode())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        return {"error": f"status endpoint {url} did not answer ({getattr(exc, 'reason', exc)})"}
    engine = snap.get("engine") or {}
    frames = int(snap.get("frames") or 0)
    fallbacks = sum((snap.get("fallback_reasons") or {}).values())
    return {"source": url, "sha256": engine.get("sha256"), "bundle": engine.get("bundle"),
            "frames": frames, "frames_on_bundle": snap.get("frames_on_bundle"),
            "uptime_s": snap.get("uptime_s"), "fps": snap.get("fps"),
            "fallback_rate": round(fallbacks / frames, 4) if frames else None,
            "last_error": snap.get("last_error"), "rejected": snap.get("rejected")}


def _tail_events(path: Path) -> list:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except OSError:
        return []
    lines = data.decode(errors="replace").splitlines()[1 if size > TAIL_BYTES else 0:]
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return [e for e in events if isinstance(e, dict)]


def _from_events(path: Path):
    """The app's state from its last events: the bundle of the last start or swap, and what came after."""
    events = _tail_events(path)
    marks = [i for i, e in enumerate(events) if e.get("event") in ("started", "bundle_swapped")]
    if not marks:  # rotated since the last start or swap: that line is in the newest rotated file
        events = _tail_events(path.with_name(path.name + ".1")) + events
        marks = [i for i, e in enumerate(events) if e.get("event") in ("started", "bundle_swapped")]
    if not events:
        return None
    start = marks[-1] if marks else 0
    since = events[start + 1:] if marks else events
    frames = [e for e in since if e.get("event") == "frame"]
    runs = [i for i, e in enumerate(events) if e.get("event") == "started"]
    first = events[runs[-1]] if runs else events[0]
    times = [e["time"] for e in frames[-100:] if isinstance(e.get("time"), (int, float))]
    fps = round((len(times) - 1) / (times[-1] - times[0]), 2) if len(times) > 1 and times[-1] > times[0] else None
    trouble = [e for e in events if e.get("event") in TROUBLE]
    rejected = [e for e in since if e.get("event") == "bundle_rejected"]
    return {"source": str(path), "sha256": events[start].get("sha256") if marks else None,
            "bundle": events[start].get("bundle") if marks else None, "frames_on_bundle": len(frames),
            "uptime_s": round(events[-1]["time"] - first["time"], 3) if "time" in first and "time" in events[-1]
            else None, "fps": fps,
            "fallback_rate": round(sum(bool(e.get("fallback_reason")) for e in frames) / len(frames), 4)
            if frames else None,
            "last_error": _trouble(trouble[-1]) if trouble else None,
            "rejected": _trouble(rejected[-1]) if rejected else None}


def _trouble(event) -> dict:
    reason = event.get("reason") or event.get("error") or event.get("event")
    return {"event": event.get("event"), "time": event.get("time"), "reason": reason,
            "sha256": event.get("sha256")}
