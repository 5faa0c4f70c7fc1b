"""``edgecnn demo``: the whole trip on generated data, offline, in about two minutes on two cores.

The demo is a list of steps. Each step is a function ``step(ctx) -> str`` that reads and adds
to the shared context dict and returns one summary line. Later stages append their own step::

    from edgecnn.demo import STEPS
    STEPS.append(("convert", convert_step))      # or insert after a named step with add_step()

Context keys set by the first steps: ``out`` (Path, the demo folder), ``quiet`` (bool),
``data_dir`` (the generated dataset), ``run_dir`` and ``finetune`` (the result dict of
:func:`edgecnn.train.finetune`). A step that finds a failure it wants reported (a failed gate) sets
``ctx["passed"] = False``; ``edgecnn demo`` then exits 1 after printing every line.
"""

import time
from pathlib import Path

# A model that trains from scratch on the demo shapes in ~30 s on 2 cores (no download:
# --weights none). Phase 1 is cut to one epoch: a random base gives no useful features.
DEMO_FINETUNE = {
    "backbone": "mobilenet_v2",
    "alpha": 0.35,
    "input_size": 96,
    "weights": "none",
    "epochs": 1,
    "fine_tune_epochs": 20,
    "fine_tune_lr": 2e-3,
    "batch_size": 16,
    "augment": "none",
    "patience": 8,
    "seed": 0,
}
DEMO_DATA = {"per_class": 60, "size": 96, "seed": 0}


def data_step(ctx) -> str:
    """Generate the demo dataset into OUT/data (deterministic; re-running rewrites the same bytes)."""
    from edgecnn.synth import DEFAULT_CLASSES, make_demo_dataset

    ctx["data_dir"] = make_demo_dataset(ctx["out"] / "data", **DEMO_DATA)
    n = DEMO_DATA["per_class"] * len(DEFAULT_CLASSES)
    return f"data: {n} generated images in {len(DEFAULT_CLASSES)} classes ({', '.join(DEFAULT_CLASSES)}) -> {ctx['data_dir']}"


def finetune_step(ctx) -> str:
    """Train a small MobileNetV2 from scratch into OUT/run (resumes or reports a finished run)."""
    from edgecnn.train import finetune

    result = finetune(ctx["data_dir"], ctx["out"] / "run", quiet=ctx["quiet"], **DEMO_FINETUNE)
    ctx["finetune"], ctx["run_dir"] = result, Path(result["run_dir"])
    val, test = result["metrics"]["val"], result["metrics"]["test"]
    o = DEMO_FINETUNE
    return (f"finetune: {o['backbone']} {o['alpha']:g} @{o['input_size']}px, weights none: val accuracy "
            f"{val['accuracy']:.3f}, test accuracy {test['accuracy']:.3f} (chance 0.25) -> {result['run_dir']}"
            + (" (already complete)" if result["status"] == "complete" else ""))


STEPS = [("data", data_step), ("finetune", finetune_step)]


def add_step(name, func, after=None):
    """Append step ``name``, or insert it right after the step named ``after``."""
    names = [n for n, _ in STEPS]
    STEPS.insert(names.index(after) + 1 if after in names else len(STEPS), (name, func))


def run_demo(out="demo_out", quiet: bool = False, echo=None, steps=None) -> dict:
    """Run the steps in order and return ``{"out", "passed", "steps": [{"name", "summary", "seconds"}],
    "total_s"}``. ``echo`` (a ``str -> None``) prints each line as its step ends."""
    ctx = {"out": Path(out).resolve(), "quiet": quiet, "passed": True}
    ctx["out"].mkdir(parents=True, exist_ok=True)
    done, started = [], time.perf_counter()
    for name, func in steps or STEPS:
        t0 = time.perf_counter()
        line = func(ctx)
        done.append({"name": name, "summary": line, "seconds": round(time.perf_counter() - t0, 2)})
        if echo is not None:
            echo(line)
    return {"out": str(ctx["out"]), "passed": ctx["passed"], "steps": done,
            "total_s": round(time.perf_counter() - started, 2)}


# Compression and conversion steps (converters/demo_steps.py): int8 bundle, then 50% pruning.
from edgecnn.converters.demo_steps import convert_step, prune_step  # noqa: E402  (light: no TF at import)

add_step("convert", convert_step, after="finetune")
add_step("prune", prune_step, after="convert")


def evaluate_demo_step(ctx) -> str:
    """Float vs int8 on the held-out split, the gate, the HTML report and calibrated thresholds."""
    from edgecnn.evaluate_demo_step import evaluate_step

    result = evaluate_step(ctx["run_dir"], ctx["bundle_dir"], ctx["out"])
    ctx["evaluate"] = result
    if not result["passed"]:
        ctx["passed"] = False
    return result["summary"]


def board_demo_step(ctx) -> str:
    """Write a short video of held-out demo images with OpenCV and run the board app on it."""
    from edgecnn.devices.demo_step import demo_step, format_demo
    from edgecnn.rundir import load_run, split_samples

    run = load_run(ctx["run_dir"])
    held_out = [str(path) for path, _ in split_samples(run, "test")][:8]
    result = demo_step(ctx["bundle_dir"], held_out, Path(ctx["out"]) / "board")
    ctx["board"] = result
    return format_demo(result)


add_step("evaluate", evaluate_demo_step, after="convert")
add_step("board", board_demo_step, after="evaluate")
