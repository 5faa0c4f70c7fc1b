"""Where the pretrained base may be cut: block boundaries, found in the graph, named by the registry.

A cut point is a layer whose output is the only tensor crossing from the layers before it to the
layers after it (every path through the graph passes through it), so the base truncated there is a
plain feature extractor and nothing after it is needed. Inside a residual block the skip connection
also crosses, so no layer inside one qualifies: the candidates are the block ends.

The registry's ``cut_pattern`` (a regular expression on layer names) keeps one candidate per block
(``conv_pw_7_relu``, ``block_6_project_BN``, ``block_8_add``...); the base's last layer is always a
candidate (the whole base, today's model). A ``--base`` model of the user's has no pattern: any
such layer is a candidate.
"""

import re
from typing import List, Optional

from edgecnn.errors import ModelError


def _consumers_last_index(model) -> dict:
    """``{layer name: index of the last layer of model.layers that reads its output}``."""
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    last = {}
    for i, layer in enumerate(model.layers):
        for node in layer._inbound_nodes:
            inbound = node.inbound_layers
            for src in inbound if isinstance(inbound, (list, tuple)) else [inbound]:
                if src.name in index:
                    last[src.name] = max(last.get(src.name, -1), i)
    return last


def articulation_layers(model) -> List[str]:
    """Layers of functional ``model`` whose output alone crosses to the layers after them, in order."""
    layers = model.layers
    last = _consumers_last_index(model)
    out, live = [], set()
    for i, layer in enumerate(layers):
        live = {name for name in live if last.get(name, -1) > i}
        if last.get(layer.name, -1) > i:
            live.add(layer.name)
        is_input = type(layer).__name__ == "InputLayer"
        if not is_input and (live == {layer.name} or (i == len(layers) - 1 and not live)):
            out.append(layer.name)
    return out


def cut_points(base, pattern: Optional[str]) -> List[str]:
    """The candidate cuts of a base model, shallow to deep; the last is the whole base."""
    names = articulation_layers(base)
    final = base.layers[-1].name
    keep = [n for n in names if pattern is None or re.fullmatch(pattern, n)]
    if final not in keep:
        keep.append(final)
    return keep


def resolve_cut(base, cut_at, pattern: Optional[str], what: str) -> str:
    """The layer name ``--cut-at`` names: a candidate's name, or its index in :func:`cut_points`
    (``-1`` is the whole base, ``0`` the shallowest block).

    Raises:
        ModelError: naming the value, and listing the candidates.
    """
    points = cut_points(base, pattern)
    text = str(cut_at).strip()
    if re.fullmatch(r"-?\d+", text):
        i = int(text)
        if -len(points) <= i < len(points):
            return points[i]
    elif text in points:
        return text
    elif text in {layer.name for layer in base.layers}:
        raise ModelError(f"--cut-at '{text}' is a layer of {what} but not a block boundary (another tensor "
                         f"crosses it, or it is inside a block). Cut at one of: {', '.join(points)}.")
    raise ModelError(f"--cut-at '{text}' is not a cut point of {what}. Pass a layer name or an index "
                     f"from 0 to {len(points) - 1} (-1: the whole base) among: {', '.join(points)} "
                     "(`edgecnn probe-cuts` measures each).")


def truncate(base, name: str):
    """``base`` ending at layer ``name`` (the same layer objects and weights; nothing after it)."""
    from edgecnn.tf import keras

    if name == base.layers[-1].name:
        return base
    return keras.Model(base.input, base.get_layer(name).output, name=f"{base.name}_to_{name}"[:120])


def cut_base(base, cut_at, pattern: Optional[str], what: str):
    """``(base, cut layer name or None)``: ``base`` truncated at ``cut_at``; None keeps all of it, and a cut
    at the last layer is the whole base, recorded as uncut (today's model)."""
    if cut_at is None:
        return base, None
    name = resolve_cut(base, cut_at, pattern, what)
    if name == base.layers[-1].name:
        return base, None
    return truncate(base, name), name
