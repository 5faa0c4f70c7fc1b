"""The demo's board step: write a short video from held-out images with OpenCV, run the app on it.

``edgecnn demo`` calls :func:`demo_step` (helper B's step list); it returns a summary with the
decisions per source image and the fallbacks taken.
"""

import json
from pathlib import Path

import numpy as np

from edgecnn.devices.sources import IMAGE_SUFFIXES
from edgecnn.errors import DeviceError


def write_video(images, path, size=(320, 240), frames_per_image=5, fps=10.0):
    """Write ``images`` (paths or BGR arrays) as an MJPG .avi, each shown ``frames_per_image`` times.

    Returns the list of source names, one per frame.
    """
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, tuple(size))
    if not writer.isOpened():
        raise DeviceError(f"OpenCV cannot write an MJPG video at '{path}'.")
    names = []
    try:
        for i, image in enumerate(images):
            bgr = image if isinstance(image, np.ndarray) else cv2.imread(str(image), cv2.IMREAD_COLOR)
            if bgr is None:
                continue
            frame = cv2.resize(bgr, tuple(size), interpolation=cv2.INTER_AREA)
            for _ in range(frames_per_image):
                writer.write(frame)
                names.append(Path(image).name if not isinstance(image, np.ndarray) else f"image{i}")
    finally:
        writer.release()
    if not names:
        raise DeviceError("no readable image to write into the demo video.")
    return names


def demo_step(bundle_dir, images, out_dir, frames_per_image=5, backend="auto") -> dict:
    """Run the board app on a video made from ``images`` (a list or a folder); events in OUT_DIR.

    Returns ``{"video", "events", "frames", "fps", "per_image": {name: {label: count}}, "fallbacks",
    "unknown", "summary"}``.
    """
    from edgecnn.devices.app import run

    out_dir = Path(out_dir)
    if isinstance(images, (str, Path)):
        folder = Path(images)
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    images = list(images)
    video = out_dir / "board_demo.avi"
    names = write_video(images, video, frames_per_image=frames_per_image)
    events_path = out_dir / "board_events.jsonl"
    if events_path.exists():
        events_path.unlink()
    summary = run(bundle_dir, str(video), backend=backend, mode="replay", events=events_path, install_signals=False)
    per_image, fallbacks = {}, {}
    frames = [json.loads(line) for line in events_path.read_text().splitlines()]
    frames = [e for e in frames if e["event"] == "frame"]
    for event in frames:
        name = names[event["frame"]] if event["frame"] < len(names) else "?"
        per_image.setdefault(name, {}).setdefault(event["label"], 0)
        per_image[name][event["label"]] += 1
        if event["fallback_reason"]:
            fallbacks[event["fallback_reason"]] = fallbacks.get(event["fallback_reason"], 0) + 1
    return {"video": str(video), "events": str(events_path), "frames": len(frames), "fps": summary["fps_overall"],
            "latency_ms": summary["latency_ms"], "per_image": per_image, "fallbacks": fallbacks,
            "unknown": summary["labels"].get("unknown", 0), "summary": summary}


def format_demo(result: dict) -> str:
    """Human lines: the decisions per image and the fallbacks."""
    lines = [f"board: {result['frames']} frames at {result['fps']:.1f} fps "
             f"(p50 {result['latency_ms']['p50']} ms); events in {result['events']}"]
    for name, labels in result["per_image"].items():
        lines.append(f"  {name}: " + ", ".join(f"{label} ×{n}" for label, n in labels.items()))
    lines.append(f"  fallbacks: {result['fallbacks'] or 'none'}; unknown: {result['unknown']}")
    return "\n".join(lines)
