"""The ``classify.py`` that ``edgecnn bundle export --format picamera2`` writes beside the model.

Picamera2's TensorFlow Lite examples (``examples/tensorflow/``) are object detectors: there is no
classifier script to hand a model to, so the export carries one in the same style (Picamera2 frames,
the ``ai_edge_litert`` interpreter, ``ReadLabelFile``'s ``index label`` lines). The bundle's resize
and normalization are written into it; scale and zero point come from the model (DESIGN rule 6).
``--image`` classifies files instead of the camera, which is how it is tested without one.
"""

SCRIPT = '''#!/usr/bin/env python3
"""Classify Picamera2 frames (or --image files) with {name}.

    python3 classify.py --model model.tflite --labels labels.txt             # the camera
    python3 classify.py --model model.tflite --labels labels.txt --image a.jpg

Needs: picamera2 (camera only), opencv (python3-opencv), numpy, ai-edge-litert or tflite-runtime.
Written by edgecnn bundle export; the model sees (pixel - MEAN) / STD of an RGB image resized by RESIZE.
"""

import argparse

import cv2
import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    from tflite_runtime.interpreter import Interpreter

MEAN, STD, RESIZE = {mean!r}, {std!r}, {resize!r}
INTERPOLATION = {{"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}}[RESIZE]


def read_label_file(path):
    labels = {{}}
    with open(path, encoding="utf-8") as f:
        for line in f:
            pair = line.strip().split(maxsplit=1)
            if len(pair) == 2:
                labels[int(pair[0])] = pair[1].strip()
    return labels


def classify(interpreter, rgb):
    """(top-1 index, its score) of an RGB uint8 image."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    height, width = int(inp["shape"][1]), int(inp["shape"][2])
    x = (cv2.resize(rgb, (width, height), interpolation=INTERPOLATION).astype(np.float32) - MEAN) / STD
    scale, zero_point = inp["quantization"]
    if np.issubdtype(inp["dtype"], np.integer):
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.round(x / scale) + zero_point, info.min, info.max) if scale else x
    interpreter.set_tensor(inp["index"], x[None].astype(inp["dtype"]))
    interpreter.invoke()
    raw = interpreter.get_tensor(out["index"])[0]
    scale, zero_point = out["quantization"]
    scores = (raw.astype(np.float32) - zero_point) * scale if scale else raw.astype(np.float32)
    top = int(np.argmax(scores))
    return top, float(scores[top])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model.tflite")
    parser.add_argument("--labels", default="labels.txt")
    parser.add_argument("--image", nargs="*", help="classify these files instead of the camera")
    args = parser.parse_args()
    labels = read_label_file(args.labels)
    interpreter = Interpreter(model_path=args.model, num_threads=4)
    interpreter.allocate_tensors()
    if args.image:
        for path in args.image:
            top, score = classify(interpreter, cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB))
            print(f"{{path}}\\t{{labels.get(top, top)}}\\t{{score:.4f}}")
        return
    from picamera2 import Picamera2

    picam2 = Picamera2()
    # Picamera2's "RGB888" is blue, green, red in memory (OpenCV's order)
    picam2.configure(picam2.create_preview_configuration(main={{"size": (640, 480), "format": "RGB888"}}))
    picam2.start()
    while True:
        top, score = classify(interpreter, cv2.cvtColor(picam2.capture_array(), cv2.COLOR_BGR2RGB))
        print(f"{{labels.get(top, top)}}\\t{{score:.4f}}", flush=True)


if __name__ == "__main__":
    main()
'''


def picamera2_script(name: str, mean: float, std: float, resize: str) -> str:
    """The script's text for a model."""
    return SCRIPT.format(name=name, mean=float(mean), std=float(std), resize=resize)
