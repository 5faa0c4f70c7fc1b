"""The ``evaluate --report X.html`` page: one self-contained file, plus ``X.json`` beside it.

Tables are plain HTML; the confusion matrices, per-class drop bars and risk-coverage curves are
matplotlib (Agg) PNGs embedded as base64, so the page opens anywhere without a network or a server.
"""

import base64
import html
import io
from pathlib import Path

import numpy as np

from edgecnn.atomic import write_json, write_text
from edgecnn.evaluation.confidence import risk_coverage

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.fail{color:#b00020;font-weight:bold}
.pass{color:#1b5e20;font-weight:bold}img{max-width:100%;border:1px solid #eee}
.scroll{overflow-x:auto}"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return _data_uri(buf.getvalue())


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_fig(models: dict, labels):
    """All models' confusion matrices side by side, as a matplotlib Figure.

    The layout engine keeps each matrix's tick labels clear of its neighbour, and only the first
    matrix names the true classes (the rows are the same in every matrix).
    """
    plt = _pyplot()
    n = len(models)
    size = max(3.0, 0.5 * len(labels) + 2)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False, layout="constrained")
    for k, (ax, (name, rep)) in enumerate(zip(axes[0], models.items())):
        cm = np.asarray(rep["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        ax.set_title(f"{name} (top-1 {rep['accuracy']:.3f})")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels if k == 0 else [])
        ax.set_xlabel("predicted")
        if k == 0:
            ax.set_ylabel("true")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    return fig


def confusion_figure(models: dict, labels) -> str:
    """:func:`confusion_fig` as a PNG data URI."""
    return _png(confusion_fig(models, labels))


def drop_figure(vs_float: dict, labels) -> str:
    """Per-class recall drop (pp) of each model against the float one."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(labels) * max(1, len(vs_float))), 3.5))
    width = 0.8 / max(1, len(vs_float))
    x = np.arange(len(labels))
    for k, (name, vs) in enumerate(vs_float.items()):
        ax.bar(x + k * width, [vs["per_class"][lbl]["recall_drop_pp"] for lbl in labels], width, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x + width * (len(vs_float) - 1) / 2, labels, rotation=45, ha="right")
    ax.set_ylabel("recall drop vs float (pp)")
    ax.legend()
    return _png(fig)


def risk_coverage_figure(y, probs: dict) -> str:
    """Risk (error rate of the accepted images) against coverage, rejecting the least confident first."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, p in probs.items():
        rc = risk_coverage(p, y)
        ax.plot(rc["coverage"], rc["risk"], label=f"{name} (AURC {rc['aurc']:.3f})")
    ax.set_xlabel("coverage")
    ax.set_ylabel("risk (error rate)")
    ax.set_xlim(0, 1)
    ax.legend()
    return _png(fig)


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape("" if value is None else str(value))


def render(result: dict, y, probs: dict) -> str:
    """The HTML text of the report."""
    labels, models, vs = result["labels"], result["models"], result["vs_float"]
    parts = [f"<h1>edgecnn evaluate</h1><p>Run <code>{html.escape(result['run_dir'])}</code>, "
             f"{result['data']['n']} images ({html.escape(str(result['data'].get('split') or result['data']['path']))})."
             "</p>"]
    parts += [f"<p><em>Note: {html.escape(n)}</em></p>" for n in result.get("notes", [])]
    gate = result["gate"]
    if gate["checked"]:
        cls = "pass" if gate["passed"] else "fail"
        parts.append(f"<h2>Gate</h2><p class='{cls}' id='gate'>{'PASSED' if gate['passed'] else 'FAILED'}</p>")
        parts.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in gate["failures"]) + "</ul>")
    parts.append("<h2>Models</h2>" + _table(
        ["model", "top-1", "balanced accuracy", "macro F1", "ECE (raw scores)"],
        [[n, r["accuracy"], r["balanced_accuracy"], r["macro_f1"], r["ece"]] for n, r in models.items()]))
    parts.append(calibration_section(result, y, probs))
    parts.append("<h2>Against the float model</h2>" + _table(
        ["model", "top-1 drop (pp)", "balanced acc. drop (pp)", "agreement", "mean |Δp|", "hardest classes"],
        [[n, v["accuracy_drop_pp"], v["balanced_accuracy_drop_pp"], v["agreement"], v["mean_abs_prob_diff"],
          ", ".join(v["hardest_classes"]) or "none"] for n, v in vs.items()]))
    rows = []
    for label in labels:
        row = [label, models["float"]["per_class"][label]["support"]]
        for name, rep in models.items():
            pc = rep["per_class"][label]
            row += [pc["precision"], pc["recall"], pc["f1"]]
        row += [vs[n]["per_class"][label]["recall_drop_pp"] for n in vs]
        rows.append(row)
    headers = ["class", "support"] + [f"{n} {m}" for n in models for m in ("P", "R", "F1")] + \
              [f"{n} recall drop (pp)" for n in vs]
    parts.append("<h2>Per class</h2>" + _table(headers, rows))
    parts.append(f"<h2>Confusion matrices</h2><img alt='confusion matrices' src='{confusion_figure(models, labels)}'>")
    if vs:
        parts.append(f"<h2>Per-class drop</h2><img alt='per-class drop' src='{drop_figure(vs, labels)}'>")
    parts.append(f"<h2>Risk-coverage</h2><img alt='risk-coverage' src='{risk_coverage_figure(y, probs)}'>")
    if result.get("groups"):
        grows = [[g, cmp["n"]] + [cmp["models"][n]["accuracy"] for n in models] +
                 [cmp["vs_reference"][n]["accuracy_drop_pp"] for n in vs] for g, cmp in result["groups"].items()]
        parts.append("<h2>Groups</h2>" + _table(["group", "n"] + [f"{n} top-1" for n in models] +
                                                [f"{n} drop (pp)" for n in vs], grows))
    if result.get("debug"):
        d = result["debug"]
        parts.append("<h2>Layers with the largest int8 error</h2>" + _table(
            ["layer", "op", "channel-relative RMSE", "RMSE/scale"],
            [[w["layer"], w["op"], w["relative_rmse"], w["rmse_over_scale"]] for w in d["worst"]]))
    if result.get("robustness"):
        parts.append(robustness_section(result["robustness"]))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>edgecnn evaluate</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def bundle_models(result: dict) -> list:
    """``(model name, bundle dir)`` of each bundle's CPU model, in the order evaluate named them."""
    names = [n for n in result["models"] if n != "float" and n != "ensemble" and not n.endswith("_edgetpu")]
    return list(zip(names, result.get("bundles") or [])) if len(names) == len(result.get("bundles") or []) else []


def calibration_section(result: dict, y, probs: dict) -> str:
    """ECE before and after each bundle's softmax temperature, on these images and on the images the
    temperature was fitted and judged on (the bundle's ``metrics.calibration``, as `calibrate` printed)."""
    from edgecnn.bundle.manifest import load_manifest
    from edgecnn.evaluation.confidence import scaled_probs
    from edgecnn.metrics import expected_calibration_error

    rows = []
    for name, bundle in bundle_models(result):
        manifest = load_manifest(bundle)
        t = float(manifest.get("decision", {}).get("temperature", 1.0))
        cal = (manifest.get("metrics") or {}).get("calibration") or {}
        here = expected_calibration_error(scaled_probs(probs[name], t), y) if name in probs else None
        fit, held = cal.get("fit") or {}, cal.get("held_out") or {}
        rows.append([name, t, result["models"][name]["ece"], here,
                     f"{fit['ece_before']:.4f} -> {fit['ece_after']:.4f} (n={fit['n']})" if fit else "not calibrated",
                     f"{held['ece_before']:.4f} -> {held['ece_after']:.4f} (n={held['n']})" if held else ""])
    if not rows:
        return ""
    return ("<h2 id='calibration'>Confidence calibration</h2><p>The board divides log-scores by the bundle's "
            "temperature before its thresholds (`edgecnn calibrate`). ECE before and after it:</p>" + _table(
                ["model", "temperature", "ECE here, raw", "ECE here, with the temperature", "ECE on fit images",
                 "ECE on held-out images"], rows))


def robustness_section(rob: dict) -> str:
    """The ``--robustness`` part: plain-language summary, accuracy table, curves and FGSM table."""
    from edgecnn.evaluation.robustness import plot_robustness

    summary = "".join(f"<li>{html.escape(line)}</li>" for line in rob["summary"].splitlines())
    models = rob["models"]
    rows = [["clean"] + [rob["clean"][m] for m in models]]
    for kind in rob["kinds"]:
        for s in rob["severities"]:
            rows.append([f"{kind} {s}"] + [rob["accuracy"][m][kind][s] for m in models])
    rows.append(["mean under corruption"] + [rob["mean_corrupted"][m] for m in models])
    png = _data_uri(plot_robustness(rob))
    out = [f"<h2 id='robustness'>Robustness</h2><p>{rob['n']} images, corruption seed {rob['seed']}.</p>",
           f"<ul>{summary}</ul>", f"<img alt='accuracy under corruption' src='{png}'>",
           "<details><summary>Accuracy per corruption and severity</summary>" +
           _table(["corruption, severity"] + [f"{m} top-1" for m in models], rows) + "</details>"]
    if rob.get("fgsm"):
        fg = rob["fgsm"]
        out.append("<h3>FGSM (crafted on the float model)</h3>" + _table(
            ["epsilon (of 255)"] + [f"{m} top-1" for m in fg["accuracy"]],
            [[f"{e:g}"] + [fg["accuracy"][m][i] for m in fg["accuracy"]] for i, e in enumerate(fg["epsilons"])]))
    return "\n".join(out)


def json_path_for(path) -> Path:
    """The JSON beside an HTML report: ``X.html`` -> ``X.json`` (``X.json`` itself -> ``X.json.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json") if path.suffix == ".json" else path.with_suffix(".json")


def write_report(path, result: dict, y, probs: dict) -> dict:
    """Write ``path`` (HTML) and its JSON beside it (:func:`json_path_for`); return both paths."""
    path = Path(path)
    write_text(path, render(result, y, probs))
    json_path = json_path_for(path)
    write_json(json_path, result)
    return {"html": path, "json": json_path}
