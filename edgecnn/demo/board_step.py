"""The demo's board step: write a short video from held-out images with OpenCV, run the app on it.

``edgecnn demo`` picks a few test images of every class in turn (:func:`pick_images`) and calls
:func:`demo_step`; the summary gives the decisions per source image against its true class, and how
many frames were right, wrong or ``unknown`` (the fallback below a class threshold).
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


DEMO_PER_CLASS = 2  # test images of each class in the demo video


def pick_images(samples, per_class: int = DEMO_PER_CLASS) -> list:
    """``per_class`` of ``samples`` (``(path, class name)``) for each class, the classes taking turns."""
    by_class = {}
    for path, label in samples:
        by_class.setdefault(label, []).append((path, label))
    return [row[k] for k in range(per_class) for row in by_class.values() if k < len(row)]


def demo_step(bundle_dir, images, out_dir, frames_per_image=5, backend="auto") -> dict:
    """Run the board app on a video made from ``images`` (a folder, or a list of paths or of
    ``(path, true class)``); events in OUT_DIR.

    Returns ``{"video", "events", "frames", "fps", "per_image": {name: {label: count}}, "truth":
    {name: class}, "right", "wrong", "fallbacks", "unknown", "summary"}`` (``right``/``wrong``
    count frames of images whose class is known, ``unknown`` frames excepted).
    """
    from edgecnn.devices.app import run

    out_dir = Path(out_dir)
    if isinstance(images, (str, Path)):
        folder = Path(images)
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    images = list(images)
    truth = {Path(p).name: label for p, label in (i for i in images if isinstance(i, tuple))}
    images = [i[0] if isinstance(i, tuple) else i for i in images]
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
    unknown = summary["labels"].get("unknown", 0)
    right = sum(n for name, labels in per_image.items() for label, n in labels.items() if truth.get(name) == label)
    wrong = sum(n for name, labels in per_image.items() for label, n in labels.items()
                if name in truth and label not in (truth[name], "unknown"))
    return {"video": str(video), "events": str(events_path), "frames": len(frames), "fps": summary["fps_overall"],
            "latency_ms": summary["latency_ms"], "per_image": per_image, "truth": truth, "right": right,
            "wrong": wrong, "fallbacks": fallbacks, "unknown": unknown, "summary": summary}


def format_demo(result: dict) -> str:
    """Human lines: the frame counts, the decisions per image (with its true class) and the fallbacks."""
    truth = result.get("truth") or {}
    head = (f"board: {len(result['per_image'])} images as {result['frames']} video frames at {result['fps']:.1f} fps "
            f"(p50 {result['latency_ms']['p50']} ms)")
    if truth:
        head += (f": {result['right']} frames right, {result['wrong']} wrong, {result['unknown']} 'unknown' "
                 "(below the class threshold: the board's fallback)")
    lines = [head + f"; events in {result['events']}"]
    for name, labels in result["per_image"].items():
        shown = f"{name} ({truth[name]})" if name in truth else name
        lines.append(f"  {shown}: " + ", ".join(f"{label} ×{n}" for label, n in labels.items()))
    lines.append(f"  fallbacks: {result['fallbacks'] or 'none'}; unknown: {result['unknown']}")
    return "\n".join(lines)
