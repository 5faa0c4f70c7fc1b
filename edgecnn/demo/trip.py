"""``edgecnn demo``: the whole trip on generated data, offline, in about two and a half minutes on two cores.

The demo is a list of steps. Each step is a function ``step(ctx) -> str`` that reads and adds
to the shared context dict and returns its summary (one line, or a few). Its docstring's first
line is what the demo announces when the step starts. Later stages insert their own step::

    from edgecnn.demo.trip import add_step
    add_step("search", search_step, after="data")

Context keys: ``out`` (Path, the demo folder), ``quiet`` (bool), ``progress`` (``str -> None``:
prints an indented progress line unless quiet), ``data_dir``, ``run_dir`` and ``finetune`` (the
result of :func:`edgecnn.train.finetune.finetune`), ``bundle_dir``... A step whose check fails (a gate, a
pruned model that lost accuracy) calls :func:`fail` with the reason and returns its summary as
usual; an exception stops the demo at that step. ``run_demo`` names the failed step and why.
"""

import time
import traceback
from pathlib import Path

from edgecnn.demo.convert_steps import convert_step, prune_step  # light: no TensorFlow at import
from edgecnn.errors import DataError, EdgecnnError

# 150 images per class: with 20% test and 20% val each held-out split has 120 images, so one
# image is 0.83 pp (the first demo had 24 test images: one was 4 pp).
DEMO_DATA = {"per_class": 150, "size": 64, "seed": 0}
# MobileNetV2 0.35 at 64 px trained from random weights (offline: no ImageNet download). Phase 1
# (the head on a frozen random base) is cut to one epoch: random features teach it nothing. Phase 2
# trains everything; the best val epoch is kept, so no early stop is needed.
DEMO_FINETUNE = {
    "backbone": "mobilenet_v2",
    "alpha": 0.35,
    "input_size": 64,
    "weights": "none",
    "epochs": 1,
    "fine_tune_epochs": 25,
    "fine_tune_lr": 3e-3,
    "batch_size": 16,
    "augment": "none",
    "patience": 25,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "seed": 0,
}


def fail(ctx, step: str, why: str) -> None:
    """Record that ``step``'s check failed (the demo then exits 1 and names it)."""
    ctx["failures"].append({"step": step, "why": why})


def data_step(ctx) -> str:
    """Generate a labelled dataset of shapes and stripes on noisy, unevenly lit backgrounds."""
    from edgecnn.data.synth import DEFAULT_CLASSES, make_demo_dataset

    ctx["data_dir"] = make_demo_dataset(ctx["out"] / "data", **DEMO_DATA)
    n = DEMO_DATA["per_class"] * len(DEFAULT_CLASSES)
    return (f"data: {n} generated {DEMO_DATA['size']} px images, {DEMO_DATA['per_class']} in each of "
            f"{len(DEFAULT_CLASSES)} classes ({', '.join(DEFAULT_CLASSES)}) -> {ctx['data_dir']}")


def finetune_step(ctx) -> str:
    """Train a small MobileNetV2 from random weights (no download), one line per epoch."""
    from edgecnn.train.finetune import finetune

    result = finetune(ctx["data_dir"], ctx["out"] / "run", quiet=ctx["quiet"], **DEMO_FINETUNE)
    ctx["finetune"], ctx["run_dir"] = result, Path(result["run_dir"])
    val, test = result["metrics"]["val"], result["metrics"]["test"]
    o = DEMO_FINETUNE
    return (f"finetune: {o['backbone']} {o['alpha']:g} @{o['input_size']}px from random weights, "
            f"{o['fine_tune_epochs']} epochs: val accuracy {val['accuracy']:.3f} (picked the epoch), test accuracy "
            f"{test['accuracy']:.3f} on {test['n']} images it never saw (chance 0.25) -> {result['run_dir']}"
            + (" (already complete)" if result["status"] == "complete" else ""))


def evaluate_demo_step(ctx) -> str:
    """Float vs int8 on the test split with the gate, robustness, a report, calibrated confidence."""
    from edgecnn.demo.evaluate_step import evaluate_step

    result = evaluate_step(ctx["run_dir"], ctx["bundle_dir"], ctx["out"], progress=ctx["progress"])
    ctx["evaluate"] = result
    for why in result["failures"]:
        fail(ctx, "evaluate", why)
    return result["summary"]


def board_demo_step(ctx) -> str:
    """Play a video of test images, every class in turn, through the board app (no TensorFlow)."""
    from edgecnn.demo.board_step import demo_step, format_demo, pick_images
    from edgecnn.run import load_run, split_samples

    run = load_run(ctx["run_dir"])
    images = pick_images([(str(path), run["labels"][label]) for path, label in split_samples(run, "test")])
    result = demo_step(ctx["bundle_dir"], images, Path(ctx["out"]) / "board")
    ctx["board"] = result
    return format_demo(result)


STEPS = [("data", data_step), ("finetune", finetune_step), ("convert", convert_step),
         ("evaluate", evaluate_demo_step), ("board", board_demo_step), ("prune", prune_step)]


def add_step(name, func, after=None, steps=None):
    """Insert step ``name`` right after the step named ``after`` (at the end when there is none)."""
    steps = STEPS if steps is None else steps
    names = [n for n, _ in steps]
    steps.insert(names.index(after) + 1 if after in names else len(steps), (name, func))


def demo_steps(search: bool = False) -> list:
    """The demo's steps; ``search`` adds a tiny ``edgecnn search`` after the data step."""
    steps = list(STEPS)
    if search:
        from edgecnn.demo.search_step import search_step

        add_step("search", search_step, after="data", steps=steps)
    return steps


def _intro(func) -> str:
    return ((func.__doc__ or "").strip().splitlines() or [""])[0]


def run_demo(out="demo_out", quiet: bool = False, echo=None, steps=None, search: bool = False) -> dict:
    """Run the steps in order; stop at a step that raises.

    ``echo`` (a ``str -> None``) gets each step's announcement when it starts, its progress lines
    and its summary when it ends.

    Returns:
        ``{"out", "passed", "steps": [{"name", "summary", "seconds"}], "failures": [{"step", "why"}],
        "failed_step", "total_s"}``; ``failed_step`` is the first step that failed (None when all held).
    """
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise DataError(f"--out '{out}' is a file; pass a folder for the demo's data and artifacts.")
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda msg: None) if echo is None else echo
    ctx = {"out": out, "quiet": quiet, "failures": [], "progress": None if echo is None else (lambda m: say(f"  {m}"))}
    # steps in lower layers (converters) report a failed check through ctx, not by importing this module
    ctx["fail"] = lambda step, why: fail(ctx, step, why)
    steps = demo_steps(search) if steps is None else steps
    done, started = [], time.perf_counter()
    for i, (name, func) in enumerate(steps, 1):
        say(f"[{i}/{len(steps)}] {name}: {_intro(func)}")
        t0 = time.perf_counter()
        try:
            line = func(ctx)
        except EdgecnnError as exc:
            fail(ctx, name, str(exc))
            break
        except Exception as exc:  # a bug, not a user error: keep the traceback for the bug report
            if echo is not None:
                say(traceback.format_exc().rstrip())
            fail(ctx, name, f"{type(exc).__name__}: {exc}")
            break
        done.append({"name": name, "summary": line, "seconds": round(time.perf_counter() - t0, 2)})
        say(line)
    failures = ctx["failures"]
    return {"out": str(out), "passed": not failures, "steps": done, "failures": failures,
            "failed_step": failures[0]["step"] if failures else None,
            "total_s": round(time.perf_counter() - started, 2)}


def format_result(result: dict) -> str:
    """The demo's last lines: where everything is, then passed, or the step that failed and why."""
    times = ", ".join(f"{s['name']} {s['seconds']:.0f} s" for s in result["steps"])
    head = f"Everything is in {result['out']} ({times})."
    if result["passed"]:
        return f"{head}\nDemo passed in {result['total_s']:.0f} s."
    whys = "; ".join(f"{f['step']}: {f['why']}" for f in result["failures"])
    return f"{head}\nDemo FAILED at step '{result['failed_step']}' after {result['total_s']:.0f} s: {whys}"
