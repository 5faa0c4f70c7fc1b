"""Before any training: a base's int8 size and latency estimated, and bases over the budget left out.

Size from the parameter count; latency from the target's profile (named boards) or, for measured
targets (host, ssh://), by measuring the untrained architecture's int8 model on the target once per
base: the trained model has the same ops and shapes, so its latency is the same up to noise.
"""

import hashlib
import json

from edgecnn import atomic
from edgecnn.search.int8 import convert_int8
from edgecnn.search.training import fresh_classifier

PROBE_IMAGES = 8  # calibration images of a probe: its int8 scales need not be good, only its ops right


def estimate_size_kb(model) -> float:
    """int8 file size estimate: a byte per weight, int32 biases, per-channel scales and zero points,
    and the graph (fitted on MobileNet v1 0.25/96 and 0.5/160 classifiers: within about 10%)."""
    params = int(model.count_params())
    return (params * 1.22 + 16384) / 1024.0


def probe_latency(arch, params, ctx) -> float:
    """Measure the untrained architecture's int8 model on the target, once per base (cached)."""
    key = hashlib.sha256(f"{params['base']}|{ctx.data.num_classes}|{ctx.target.name}|"
                         f"{getattr(ctx.target, 'stat', '')}|{getattr(ctx.target, 'threads', None)}"
                         .encode()).hexdigest()[:16]
    path = ctx.data.cache_dir / f"latency-probe-{key}.json"
    if path.is_file():
        try:
            return float(json.loads(path.read_text())["latency_ms"])
        except (OSError, ValueError, KeyError):
            pass
    content = convert_int8(arch, ctx.data.calibration_images(params["input_size"])[:PROBE_IMAGES])
    model_path = atomic.write_bytes(ctx.data.cache_dir / f"probe-{key}.tflite", content)
    measured = ctx.target.measure(model_path)
    atomic.write_json(path, {"base": params["base"], "target": ctx.target.name,
                             "latency_ms": float(measured["latency_ms"])})
    model_path.unlink()
    return float(measured["latency_ms"])


def estimate_base(params: dict, ctx) -> dict:
    """``{"size_kb", "latency_ms", "latency_kind", "macs"}`` of a base, from its architecture alone.

    ``latency_kind`` is ``estimate`` (the target's profile), ``probe`` (measured untrained), or None
    when the latency is unknown until a trial measures it (probing off, or the size already busts).
    """
    from edgecnn.search.estimate import count_keras, total_macs

    # Random weights: nothing to load or download, and the estimates do not depend on them.
    arch, _ = fresh_classifier(ctx.data.num_classes, ctx.seed, backbone=params["backbone"],
                               input_size=params["input_size"], alpha=params["alpha"], weights="none")
    size = estimate_size_kb(arch)
    counts = count_keras(arch)
    latency = ctx.target.estimate_counts(counts)
    kind = None if latency is None else "estimate"
    if latency is None and size <= ctx.max_size_kb and ctx.probe:
        latency, kind = probe_latency(arch, params, ctx), "probe"
    return {"size_kb": size, "latency_ms": latency, "latency_kind": kind, "macs": total_macs(counts)}


def over_budget(size_kb: float, latency_ms, ctx, latency_word: str = "estimated") -> list:
    """Why these figures bust the budget (one phrase each), or [] when they fit."""
    why = []
    if size_kb > ctx.max_size_kb:
        why.append(f"estimated size {size_kb:.0f} KB > {ctx.max_size_kb:g} KB")
    if latency_ms is not None and latency_ms > ctx.max_latency_ms:
        why.append(f"{latency_word} latency {latency_ms:.2f} ms > {ctx.max_latency_ms:g} ms")
    return why


def screen_bases(bases, ctx, say=None):
    """Estimate every base before the search; drop those whose estimate already busts the budget.

    Returns ``(kept, excluded, estimates)``: ``excluded`` maps a base to the reason, ``estimates``
    a base to :func:`estimate_base`'s figures.
    """
    from edgecnn.search.space import parse_base

    kept, excluded, estimates = [], {}, {}
    word = "estimated" if ctx.target.kind == "estimate" else "probed"
    for base in bases:
        est = estimates[base] = estimate_base(dict(parse_base(base), base=base), ctx)
        why = over_budget(est["size_kb"], est["latency_ms"], ctx, word)
        if why:
            excluded[base] = "; ".join(why)
        else:
            kept.append(base)
        if say:
            lat = "?" if est["latency_ms"] is None else f"{est['latency_ms']:.2f} ms"
            verdict = f" -> excluded: {excluded[base]}" if base in excluded else ""
            say(f"base {base}: {est['size_kb']:.0f} KB, {lat}{verdict}")
    return kept, excluded, estimates
