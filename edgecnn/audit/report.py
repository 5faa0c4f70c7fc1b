"""Audit results for people: a short console summary and a self-contained HTML page."""

import base64
import html
import json
from pathlib import Path
from typing import Optional

from edgecnn.audit.pipeline import KINDS, SEVERITIES
from edgecnn.data.folders import printable

_MAX_LISTED = 5  # items per finding in the console summary
_TITLES = {
    "leakage": "Leakage across splits",
    "label_conflicts": "Label conflicts",
    "bad_files": "Bad files",
    "exact_duplicates": "Exact duplicates",
    "near_duplicates": "Near-duplicates",
    "shortcuts": "Shortcut cues",
    "imbalance": "Class imbalance",
    "tiny_classes": "Tiny classes",
    "renamed_files": "Wrong extensions",
    "label_issues": "Likely label errors",
}


def _evidence(pair: dict) -> str:
    """What the search saw: ``hash 4 bits from a's mirrored view`` or ``cosine similarity 0.95``."""
    if "similarity" in pair:
        return f"cosine similarity {pair['similarity']:.2f}"
    if "hash_distance" in pair:
        return f"hash {pair['hash_distance']} of 64 bits from the {pair['view']} view of {pair['view_of']}"
    return "same file content (sha256)"


def _pair_line(pair: dict, where: dict) -> str:
    """``train/a.jpg -> val/b.jpg: mirrored, cropped 6%``."""
    label = lambda path: f"{path} [{where[path]}]" if where.get(path, "all") != "all" else path  # noqa: E731
    return f"{label(pair['a'])} -> {label(pair['b'])}: {pair['how']}"


def _item_line(kind: str, item: dict) -> str:
    if "files" in item:
        where = {f["path"]: f["split"] for f in item["files"]}
        if item.get("pairs"):
            return "; ".join(_pair_line(p, where) for p in item["pairs"])
        files = ", ".join(f"{f['path']} [{f['split']}]" if f["split"] != "all" else f["path"] for f in item["files"])
        return f"{files} ({'identical' if item['exact'] else 'near'})"
    if kind == "label_issues":
        return item["message"]
    if kind in ("bad_files", "renamed_files"):
        return f"{item['path']}: {item['reason']}"
    if kind == "shortcuts":
        return item["message"]
    if kind == "tiny_classes":
        return f"'{item['label']}': {item['images']} images"
    if kind == "imbalance":
        return ", ".join(f"{k}: {v}" for k, v in item["counts"].items())
    return json.dumps(item)


def format_audit(result: dict, max_listed: int = _MAX_LISTED) -> str:
    """A console summary: counts, then each finding with its first few items."""
    lines = [f"Audit of {result['root']} ({result['layout']} layout): {result['images']} files, "
             f"{result['usable']} usable, {len(result['labels'])} classes"]
    for split, counts in result["class_counts"].items():
        lines.append(f"  {split}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if result.get("split_note"):
        lines.append(f"  ({result['split_note']})")
    if not result["findings"]:
        lines.append("No findings: no bad files, duplicates, leakage, label conflicts, imbalance or shortcut cues.")
        return printable("\n".join(lines))
    sev = result["severity_counts"]
    lines.append(f"Findings: {sev['error']} error(s), {sev['warning']} warning(s), {sev['info']} note(s)")
    for f in result["findings"]:
        lines.append(f"[{f['severity']}] {_TITLES.get(f['kind'], f['kind'])}: {f['message']}")
        for item in f["items"][:max_listed]:
            lines.append(f"    - {_item_line(f['kind'], item)}")
        if f["count"] > max_listed:
            lines.append(f"    ... and {f['count'] - max_listed} more (see --json or --report)")
    return printable("\n".join(lines))  # file names that are not UTF-8 show their bytes as \xNN


def _thumb_uri(root: Path, rel: str, size: int = 96) -> Optional[str]:
    """A small inline JPEG of an image for the HTML page (None when it cannot be read)."""
    try:
        import cv2

        from edgecnn.data.scan import load_image_rgb

        rgb = load_image_rgb(root / rel)
        h, w = rgb.shape[:2]
        scale = size / max(h, w)
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
        return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else None
    except Exception:
        return None


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.sev{display:inline-block;padding:.1em .5em;border-radius:.3em;color:#fff;font-size:.8em;margin-right:.4em}
.error{background:#c0392b}.warning{background:#d68910}.info{background:#2e86c1}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.group{display:flex;gap:.6em;flex-wrap:wrap;border:1px solid #ddd;padding:.5em;margin:.4em 0;border-radius:.3em}
figure{margin:0;font-size:.75em;max-width:110px;word-break:break-all}img{display:block;max-width:96px}
.ok{color:#1e8449}code{background:#f4f4f4;padding:0 .2em}
.pair{display:flex;gap:.6em;align-items:center;border-left:3px solid #aaa;padding-left:.5em}
.how{max-width:14em;font-size:.85em;text-align:center}
"""


def _settings(settings: dict) -> str:
    """``max distance 8, hash method phash, ...``: the audit's settings in words, not a JSON dict."""
    def words(value):  # the base is a dict: its parts as words too
        if isinstance(value, dict):
            return "(" + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items()) + ")"
        return value

    return ", ".join(f"{key.replace('_', ' ')} {words(value)}" for key, value in settings.items())


def _figure(root: Path, rel: str, caption: str) -> str:
    esc = html.escape
    uri = _thumb_uri(root, rel)
    img = f"<img src='{uri}' alt=''>" if uri else ""
    return f"<figure>{img}<figcaption>{esc(rel)}<br>{esc(caption)}</figcaption></figure>"


def _group_html(root: Path, item: dict) -> str:
    """A duplicate group: each pair side by side with what was done to the copy between them."""
    esc = html.escape
    where = {f["path"]: f for f in item["files"]}
    caption = lambda path: f"{where[path]['label']} / {where[path]['split']}"  # noqa: E731
    head = (f"<div><b>{'identical files' if item['exact'] else 'near-identical'}</b><br>labels: "
            f"{esc(', '.join(item['labels']))}<br>splits: {esc(', '.join(item['splits']))}</div>")
    rows = []
    for pair in item.get("pairs", []):
        rows.append(f"<div class='pair'>{_figure(root, pair['a'], caption(pair['a']))}"
                    f"<div class='how'><b>{esc(pair['how'])}</b><br><small>{esc(_evidence(pair))}</small></div>"
                    f"{_figure(root, pair['b'], caption(pair['b']))}</div>")
    if not rows:
        rows = [_figure(root, f["path"], caption(f["path"])) for f in item["files"]]
    return f"<div class='group'>{head}{''.join(rows)}</div>"


def render_html(result: dict, max_groups: int = 50) -> str:
    """A self-contained HTML page (inline CSS and thumbnails, no external file) of an audit."""
    esc = html.escape
    root = Path(result["root"])
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>edgecnn audit: {esc(root.name)}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>edgecnn audit of <code>{esc(str(root))}</code></h1>",
           f"<p>{result['images']} files, {result['usable']} usable, {len(result['labels'])} classes, "
           f"{esc(result['layout'])} layout. Settings: {esc(_settings(result['settings']))}</p>"]
    if result.get("split_note"):
        out.append(f"<p><em>{esc(result['split_note'])}</em></p>")
    splits = list(result["class_counts"])
    out.append("<table><tr><th>class</th>" + "".join(f"<th>{esc(s)}</th>" for s in splits) + "</tr>")
    for name in result["labels"]:
        out.append(f"<tr><td>{esc(name)}</td>" +
                   "".join(f"<td>{result['class_counts'][s].get(name, 0)}</td>" for s in splits) + "</tr>")
    out.append("</table>")
    sev = result["severity_counts"]
    if not result["findings"]:
        out.append("<p class='ok'>No findings.</p>")
    else:
        out.append(f"<p>{sev['error']} error(s), {sev['warning']} warning(s), {sev['info']} note(s).</p>")
    for f in result["findings"]:
        out.append(f"<h2><span class='sev {f['severity']}'>{f['severity']}</span>"
                   f"{esc(_TITLES.get(f['kind'], f['kind']))} ({f['count']})</h2><p>{esc(f['message'])}</p>")
        items = f["items"]
        if items and "files" in items[0]:
            for item in items[:max_groups]:
                out.append(_group_html(root, item))
            if len(items) > max_groups:
                out.append(f"<p>... and {len(items) - max_groups} more groups in audit.json.</p>")
        elif f["kind"] == "label_issues":
            out.append("<div class='group'>" + "".join(_figure(root, i["path"], f"labelled {i['label']}, looks like "
                                                               f"{i['likely_label']} ({i['p_likely']:.2f})")
                                                       for i in items[:max_groups]) + "</div>")
        elif f["kind"] == "shortcuts":
            out.append("<table><tr><th>class</th><th>property</th><th>numbers</th></tr>")
            for c in items:
                if c["kind"] == "number":  # the AUC that separates, as the sentence says it (not P(class > rest))
                    nums = (f"median {c['class_median']} vs {c['rest_median']} (rest); range {c['class_range']} vs "
                            f"{c['rest_range']}; separates with AUC {c['separation_auc']:.2f}")
                else:
                    nums = f"'{c['value']}': {c['class_share']:.0%} of the class vs {c['rest_share']:.0%} of the rest"
                out.append(f"<tr><td>{esc(c['class'])}</td><td>{esc(c['property'])}</td><td>{esc(nums)}</td></tr>")
            out.append("</table><ul>" + "".join(f"<li>{esc(c['message'])}</li>" for c in items) + "</ul>")
        else:
            out.append("<ul>" + "".join(f"<li>{esc(_item_line(f['kind'], i))}</li>" for i in items) + "</ul>")
    out.append("<h2>What the kinds mean</h2><table><tr><th>kind</th><th>severity</th></tr>" +
               "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in KINDS.items()) + "</table>")
    out.append("</body></html>")
    return printable("\n".join(out))  # file names that are not UTF-8 show their bytes as \xNN


def write_report(result: dict, out_dir) -> dict:
    """Write ``audit.html`` and ``audit.json`` into ``out_dir`` (atomically) and return their paths."""
    from edgecnn.atomic import write_json, write_text

    out_dir = Path(out_dir)
    html_path = write_text(out_dir / "audit.html", render_html(result))
    json_path = write_json(out_dir / "audit.json", result)
    return {"html": str(html_path), "json": str(json_path)}


__all__ = ["format_audit", "render_html", "write_report", "SEVERITIES"]
