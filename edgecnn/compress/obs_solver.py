"""The numpy core of ``edgecnn prune --method obs``: Optimal Brain Surgeon masks and reconstruction.

No TensorFlow here: the Keras side (:mod:`edgecnn.compress.obs`) collects each layer's Gram matrices
and hands them over. For one output channel with unpruned weights w, inputs X_p (what the already
pruned layers produce) and X_d (what the unpruned model produces), the kept weights S minimise
``||X_p[:, S] w_S - X_d w||^2 + damp ||w_S||^2``, i.e. ``w_S = (H_SS + damp I)^-1 (G w)_S`` with
``H = X_p^T X_p`` and ``G = X_p^T X_d``.
"""

from typing import Sequence

import numpy as np

GROUP_DIVISOR = 32          # each OBS round removes d/32 weights per output channel (see _paths)


def _paths(hinv0: np.ndarray, w0: np.ndarray, candidates: int, steps: int, group: int = 1):
    """Greedy OBS removal paths for a chunk of columns (Hassibi & Stork; OBC, Frantar & Alistarh 2022).

    Each round removes the ``group`` weights of least saliency ``w_q^2 / [H^-1]_qq`` of every column
    at once and updates the others and the inverse Hessian exactly for that set (a Schur
    complement): with ``group`` 1 this is OBC's one-at-a-time path; larger groups trade a little of
    its precision for batched matrix products (d/32 per round costs ~100x less on a 512-wide layer).

    Args:
        hinv0: (c, D, D) inverse damped Hessians, one per column.
        w0: (c, D) least-squares weights on the full support.
        candidates: the first ``candidates`` coordinates may be removed (the intercept, last, never).
        steps: removals to trace (a multiple of ``group`` is traced; the extra are cut).
        group: weights removed per round.

    Returns:
        ``(order, losses)``, each (c, steps): the coordinate removed at each step and the increase of
        the squared output error it caused (a round's increase shared by its removals), the other
        weights having compensated.
    """
    hinv, w = hinv0.copy(), w0.copy()
    c = len(w)
    rows = np.arange(c)[:, None]
    removed = np.zeros(w.shape, bool)
    removed[:, candidates:] = True
    order, losses = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        while sum(o.shape[1] for o in order) < steps:
            k = min(group, steps - sum(o.shape[1] for o in order))
            diag = np.diagonal(hinv, axis1=1, axis2=2)
            saliency = np.where(removed, np.inf, w ** 2 / diag)
            q = np.argsort(saliency, axis=1, kind="stable")[:, :k]            # (c, k)
            block = hinv[rows[:, :, None], q[:, :, None], q[:, None, :]]      # (c, k, k)
            cols = np.take_along_axis(hinv, q[:, None, :], axis=2)              # (c, D, k)
            wq = np.take_along_axis(w, q, axis=1)                               # (c, k)
            solved = np.linalg.solve(block, wq[:, :, None])                     # (c, k, 1)
            loss = np.einsum("ck,ck->c", wq, solved[:, :, 0])
            w -= (cols @ solved)[:, :, 0]
            hinv -= cols @ np.linalg.solve(block, np.swapaxes(cols, 1, 2))
            w[rows, q], removed[rows, q] = 0.0, True
            order.append(q)
            losses.append(np.repeat((loss / k)[:, None], k, axis=1))
    return np.concatenate(order, axis=1), np.concatenate(losses, axis=1)


def solve(blocks, levels: Sequence[float], damp: float, intercept: bool, chunk: int = 32):
    """OBS pruning of ``blocks`` (``[(H, G, K)]``, K of shape d x m) to each sparsity of ``levels``.

    H = X_p^T X_p and G = X_p^T X_d (with a last column of ones when ``intercept``); K the unpruned
    kernel. Every column traces its greedy removal path once; for each level the removals with the
    smallest error increase across all columns are taken (each column's increases made
    non-decreasing, so every column keeps a prefix of its own path), and the kept weights are
    re-solved exactly on that mask.

    Returns:
        ``{level: [(K_new, c)]}`` with c the fitted intercept per column (zeros without one).
    """
    d = blocks[0][2].shape[0]  # a layer's blocks share their size (one block, or one per depthwise channel)
    columns = []   # (block index, column, inverse damped H, least-squares weights on the full support)
    prepared = []  # (damped H, target G @ K) per block
    for b, (h, g, k) in enumerate(blocks):
        hd = h + damp * max(float(np.mean(np.diag(h)[:d])), 1e-12) * np.eye(h.shape[0])
        target = g @ (np.vstack([k, np.zeros((1, k.shape[1]))]) if intercept else k)
        prepared.append((hd, target))
        inv = np.linalg.inv(hd)
        columns += [(b, j, inv, inv @ target[:, j]) for j in range(k.shape[1])]
    steps = min(d, int(np.ceil(min(1.0, max(levels) + 0.35) * d)))
    orders, increments = [], []
    for i in range(0, len(columns), chunk):
        part = columns[i:i + chunk]
        hinv = np.stack([inv for _, _, inv, _ in part])
        w0 = np.stack([w for _, _, _, w in part])
        order, loss = _paths(hinv, w0, d, steps, group=max(1, d // GROUP_DIVISOR))
        orders += list(order)
        increments += list(np.maximum.accumulate(np.nan_to_num(loss, nan=np.inf, posinf=np.inf), axis=1))
    total = sum(k.size for _, _, k in blocks)
    values = np.stack(increments)                   # (columns, steps)
    owner, position = (a.ravel() for a in np.indices(values.shape))
    ranked = np.lexsort((position, values.ravel()))
    results = {}
    for level in levels:
        counts = np.bincount(owner[ranked[:int(round(level * total))]], minlength=len(columns))
        out = [(np.zeros(k.shape), np.zeros(k.shape[1])) for _, _, k in blocks]
        for n, (b, j, _, _) in enumerate(columns):
            hd, target = prepared[b]
            keep = np.setdiff1d(np.arange(d), orders[n][:counts[n]])
            s_full = np.concatenate([keep, [d]]) if intercept else keep
            if len(s_full):
                w = np.linalg.solve(hd[np.ix_(s_full, s_full)], target[s_full, j])
                out[b][0][keep, j] = w[:len(keep)]
                if intercept:
                    out[b][1][j] = w[-1]
        results[level] = out
    return results
