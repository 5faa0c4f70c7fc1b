"""The demo's search step (``edgecnn demo --search``): a tiny search on the demo data.

Wire it into :mod:`edgecnn.demo.trip` when ``--search`` is given, after the data step::

    from edgecnn.demo.search_step import search_step
    add_step("search", search_step, after="data")   # or after "convert"

It reads ``ctx["data_dir"]``, ``ctx["out"]`` and ``ctx["quiet"]``, writes ``OUT/search`` (study,
trials.json, pareto.png, report.html), stores the result in ``ctx["search"]`` and returns one line.
Offline: random-init bases (``--weights none``) trained whole, measured on this host, two to three
minutes on two cores.
"""

from pathlib import Path

DEMO_SEARCH_TRIALS = 3
DEMO_SEARCH_SPACE = {
    "bases": ["mobilenet_v1:0.25:96", "mobilenet_v2:0.35:96"],
    "unfreeze_top": [500],             # random weights: the whole base trains (BatchNorm included)
    "lr": 1e-2,
    "fine_tune_lr": {"low": 2e-3, "high": 5e-3},
    "augment": ["none"],
    "balance": ["none"],
    "epochs": 1,
    "fine_tune_epochs": 15,
    "batch_size": 16,
}
DEMO_BUDGET = {"max_latency_ms": 20.0, "max_size_kb": 1024.0}


def search_step(ctx, trials: int = DEMO_SEARCH_TRIALS) -> str:
    """Run ``trials`` trials of a tiny search on the demo data; one summary line."""
    from edgecnn.search.runner import search

    out = Path(ctx["out"]) / "search"
    echo = None if ctx.get("quiet") else (lambda msg: print(f"  {msg}", flush=True))
    result = search(ctx["data_dir"], out, target="host", trials=trials, space=DEMO_SEARCH_SPACE, weights="none",
                    seed=0, progress=echo, **DEMO_BUDGET)
    ctx["search"] = result
    best = result.get("best")
    c = result["counts"]
    head = (f"search: {c['finished']} trials ({c['complete']} complete, {c['pruned']} pruned) within "
            f"{DEMO_BUDGET['max_latency_ms']:g} ms / {DEMO_BUDGET['max_size_kb']:g} KB on this host")
    if best:
        p = best["params"] or {}
        head += (f"; best: trial {best['number']} {p.get('base')} int8 acc {best['int8_acc']:.3f}, "
                 f"{best['latency_ms']:.2f} ms, {best['size_kb']:.0f} KB")
    else:
        head += "; no trial within budget"
    return f"{head} -> {result['files']['report']}"
