"""The Pareto front of a search: which feasible trials no other trial beats on all three objectives.

Objectives: int8 accuracy (higher is better), latency in ms and size in KB (lower is better).
Only trials within the budget (``feasible``) are on the front, so no reported winner is over it.
Output: a rich table, a PNG (accuracy against latency, point size by model size) and an HTML
report with the plot inlined and every trial's figures.
"""

import base64
import html
import io
from pathlib import Path
from typing import List

from edgecnn import atomic


def _dominates(a: dict, b: dict) -> bool:
    ge = a["int8_acc"] >= b["int8_acc"] and a["latency_ms"] <= b["latency_ms"] and a["size_kb"] <= b["size_kb"]
    gt = a["int8_acc"] > b["int8_acc"] or a["latency_ms"] < b["latency_ms"] or a["size_kb"] < b["size_kb"]
    return ge and gt


def feasible(records: List[dict]) -> List[dict]:
    return [r for r in records if r.get("state") == "COMPLETE" and r.get("feasible")
            and r.get("int8_acc") is not None and r.get("latency_ms") is not None and not r.get("rejected")]


def front(records: List[dict]) -> List[dict]:
    """Feasible, non-dominated trials, best int8 accuracy first."""
    ok = feasible(records)
    out = [r for r in ok if not any(_dominates(o, r) for o in ok if o is not r)]
    return sorted(out, key=lambda r: (-r["int8_acc"], r["latency_ms"], r["size_kb"]))


def best(records: List[dict]):
    """The chosen trial: highest int8 accuracy within budget, then lowest latency, then smallest."""
    f = front(records)
    return f[0] if f else None


def latency_label(records) -> str:
    kinds = {r.get("latency_kind") for r in records if r.get("latency_kind")}
    return "latency (ms, ESTIMATE)" if kinds == {"estimate"} else "latency (ms)"


def table(records: List[dict], budget: dict, title: str = "Pareto front", total=None):
    """A rich Table of the front (the estimate is labelled as such)."""
    from rich.table import Table

    f = front(records)
    total = len(records) if total is None else total
    estimate = any(r.get("latency_kind") == "estimate" for r in f)
    t = Table(title=f"{title} ({len(f)} of {total} trials; budget {budget['max_latency_ms']:g} ms, "
                    f"{budget['max_size_kb']:g} KB{'; latency is an ESTIMATE' if estimate else ''})")
    for col in ("trial", "base", "unfreeze", "lr", "augment", "balance", "int8 acc",
                "latency ms" + (" (est.)" if estimate else ""), "size KB"):
        t.add_column(col, justify="right" if col not in ("base", "augment", "balance") else "left")
    for r in f:
        p = r.get("params", {})
        t.add_row(str(r["number"]), str(p.get("base", r.get("base"))), str(p.get("unfreeze_top", "")),
                  f"{p['lr']:.2g}" if "lr" in p else "", str(p.get("augment", "-")), str(p.get("balance", "")),
                  f"{r['int8_acc']:.3f}", f"{r['latency_ms']:.2f}", f"{r['size_kb']:.0f}")
    return t


def plot(records: List[dict], budget: dict, path) -> Path:
    """Scatter of int8 accuracy against latency; the front joined by a line; the budget drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in records if r.get("state") == "COMPLETE" and r.get("int8_acc") is not None
            and r.get("latency_ms") is not None and not r.get("rejected")]
    f = front(records)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    inside = [r for r in done if r.get("feasible")]
    outside = [r for r in done if not r.get("feasible")]

    def sizes(rs):
        return [20 + 80 * min(1.0, r["size_kb"] / max(budget["max_size_kb"], 1)) for r in rs]

    if inside:
        ax.scatter([r["latency_ms"] for r in inside], [r["int8_acc"] for r in inside], s=sizes(inside),
                   c="tab:blue", alpha=0.6, label="within budget")
    if outside:
        ax.scatter([r["latency_ms"] for r in outside], [r["int8_acc"] for r in outside], s=sizes(outside),
                   c="tab:gray", marker="x", label="over budget")
    if f:
        pts = sorted(f, key=lambda r: r["latency_ms"])
        ax.plot([r["latency_ms"] for r in pts], [r["int8_acc"] for r in pts], "o-", c="tab:red", label="Pareto front")
        for r in pts:
            ax.annotate(str(r["number"]), (r["latency_ms"], r["int8_acc"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
    ax.axvline(budget["max_latency_ms"], ls="--", c="k", lw=1, label="latency budget")
    ax.set_xlabel(latency_label(records))
    ax.set_ylabel("int8 accuracy (val)")
    ax.set_title("edgecnn search: int8 accuracy vs latency (marker size: model size)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic.write_bytes(path, buf.getvalue())


def html_report(records: List[dict], budget: dict, png_path, path, info: dict) -> Path:
    """A self-contained HTML page: settings, the plot, the front and every trial."""
    png = base64.b64encode(Path(png_path).read_bytes()).decode() if Path(png_path).is_file() else ""
    f = {r["number"] for r in front(records)}
    estimate = any(r.get("latency_kind") == "estimate" for r in records)
    esc = html.escape

    def row(r):
        p = r.get("params", {})
        cells = [r["number"], r.get("state"), p.get("base", r.get("base", "")), p.get("unfreeze_top", ""),
                 f"{p['lr']:.2g}" if "lr" in p else "", p.get("augment", "-"), p.get("balance", ""),
                 _fmt(r.get("head_acc")), _fmt(r.get("int8_acc")), _fmt(r.get("latency_ms"), 2),
                 _fmt(r.get("size_kb"), 0), "yes" if r.get("feasible") else "no",
                 r.get("rejected") or (f"pruned (trial {r['pruned_by']})" if r.get("pruned_by") is not None else "")
                 or r.get("error", "")]
        style = ' style="background:#fde2e2"' if r["number"] in f else ""
        return f"<tr{style}>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>"

    heads = ["trial", "state", "base", "unfreeze", "lr", "augment", "balance", "head acc", "int8 acc",
             "latency ms" + (" (estimate)" if estimate else ""), "size KB", "in budget", "note"]
    settings = "".join(f"<li><b>{esc(str(k))}</b>: {esc(str(v))}</li>" for k, v in info.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>edgecnn search report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}</style></head><body>
<h1>edgecnn search</h1>
<ul>{settings}</ul>
{"<p><b>Latency figures are estimates</b> from the board profile, not measurements.</p>" if estimate else ""}
<img alt="Pareto front" src="data:image/png;base64,{png}">
<h2>All trials (Pareto front highlighted)</h2>
<table><tr>{"".join(f"<th>{esc(h)}</th>" for h in heads)}</tr>
{"".join(row(r) for r in sorted(records, key=lambda r: r["number"]))}
</table></body></html>
"""
    return atomic.write_text(path, page)


def _fmt(v, digits=3):
    if v is None:
        return ""
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else str(v)
