"""Run by tests/test_mediapipe.py in .venv-mediapipe (MediaPipe Tasks, no edgecnn): classify images with
MediaPipe's ImageClassifier on a .tflite as it is, print one JSON object: per image every category's
index, label and score as MediaPipe reports them."""

import json
import sys

import mediapipe as mp
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions


def main(model, images):
    options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=-1)
    out = {}
    with ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            categories = classifier.classify(mp.Image.create_from_file(path)).classifications[0].categories
            out[path] = [[c.index, c.category_name, c.score] for c in categories]
    print(json.dumps({"mediapipe": mp.__version__, "results": out}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
