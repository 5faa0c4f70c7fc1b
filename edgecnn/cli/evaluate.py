"""``edgecnn evaluate BUNDLE_DIR... [DATA] --against RUN_DIR``: float vs quantized, per class and group, gate."""

from pathlib import Path

import click

from edgecnn.cli.common import emit, output_options


def split_paths(paths):
    """``(bundles, data)``: paths holding an ``edgecnn.json`` are bundles; one other path is DATA."""
    from edgecnn.bundle.manifest import MANIFEST
    from edgecnn.errors import DataError

    bundles = [p for p in paths if (Path(p) / MANIFEST).is_file()]
    others = [p for p in paths if p not in bundles]
    if not bundles:
        raise DataError(f"no bundle among {', '.join(paths)}: a bundle is a folder with {MANIFEST}. Create one "
                        "with `edgecnn convert RUN_DIR --out BUNDLE_DIR`.")
    if len(others) > 1:
        raise DataError(f"{', '.join(others)} are not bundles (no {MANIFEST}); pass at most one DATA folder.")
    if others and not Path(others[0]).is_dir():
        raise DataError(f"'{others[0]}' is neither a bundle nor a DATA folder. Pass BUNDLE_DIR... [DATA].")
    return bundles, (others[0] if others else None)


def parse_list(text, name: str, choices=None, cast=str):
    """A comma-separated option (``--corruptions``, ``--severities``, ``--fgsm-eps``) as a checked list."""
    from edgecnn.errors import DataError

    if text is None:
        return None
    items = [w.strip() for w in str(text).split(",") if w.strip()]
    if not items:
        raise DataError(f"{name}: give at least one value, comma-separated.")
    out = []
    for item in items:
        try:
            value = cast(item)
        except ValueError:
            raise DataError(f"{name}: '{item}' is not a valid value.") from None
        if choices is not None and value not in choices:
            raise DataError(f"{name}: '{item}' is not one of {', '.join(str(c) for c in choices)}.")
        out.append(value)
    return out


def robustness_options(enabled, corruptions, severities, fgsm_eps, seed):
    """The ``robustness`` argument of ``edgecnn.evaluation.evaluate.evaluate`` from the CLI options (None when off)."""
    from edgecnn.errors import DataError
    from edgecnn.evaluation.robustness import KINDS, SEVERITIES

    given = [n for n, v in (("--corruptions", corruptions), ("--severities", severities), ("--fgsm-eps", fgsm_eps))
             if v is not None]
    if not enabled:
        if given:
            raise DataError(f"{', '.join(given)} only apply with --robustness; add --robustness.")
        return None
    eps = [] if fgsm_eps is not None and fgsm_eps.strip().lower() == "none" else \
        parse_list(fgsm_eps, "--fgsm-eps", cast=float)
    if eps and any(e <= 0 for e in eps):
        raise DataError(f"--fgsm-eps: epsilons must be > 0 (pixel units out of 255), got {fgsm_eps}.")
    return {"kinds": parse_list(corruptions, "--corruptions", KINDS),
            "severities": parse_list(severities, "--severities", SEVERITIES, int),
            "epsilons": eps, "seed": seed}


def format_summary(result: dict) -> str:
    lines = [f"{result['data']['n']} images ({result['data'].get('split') or result['data']['path']})"]
    lines += [f"note: {n}" for n in result["notes"]]
    lines.append(f"{'model':<16} {'top-1':>7} {'bal.acc':>7} {'drop pp':>8} {'agree':>6} {'mean|dp|':>8}")
    for name, rep in result["models"].items():
        vs = result["vs_float"].get(name)
        tail = (f"{vs['accuracy_drop_pp']:>8.2f} {vs['agreement']:>6.3f} {vs['mean_abs_prob_diff']:>8.4f}"
                if vs else f"{'':>8} {'':>6} {'':>8}")
        lines.append(f"{name:<16} {rep['accuracy']:>7.4f} {rep['balanced_accuracy']:>7.4f} {tail}")
    for name, vs in result["vs_float"].items():
        if vs["hardest_classes"]:
            worst = ", ".join(f"{c} ({vs['per_class'][c]['recall_drop_pp']:.1f} pp)" for c in vs["hardest_classes"][:3])
            lines.append(f"{name}: hardest hit: {worst}")
    for group, cmp in (result.get("groups") or {}).items():
        drops = ", ".join(f"{n} {v['accuracy_drop_pp']:.2f} pp" for n, v in cmp["vs_reference"].items())
        lines.append(f"group {group} (n={cmp['n']}): float {cmp['models']['float']['accuracy']:.4f}; drop {drops}")
    if result.get("debug"):
        worst = ", ".join(f"{w['layer']} ({w['relative_rmse']:.3f})" for w in result["debug"]["worst"])
        lines.append(f"layers with the largest int8 error (channel-relative RMSE): {worst}")
    gate = result["gate"]
    if gate["checked"]:
        lines.append("gate: PASSED" if gate["passed"] else "gate: FAILED")
        lines += [f"  {f}" for f in gate["failures"]]
    rob = result.get("robustness")
    if rob:
        lines.append("robustness (mean accuracy under corruptions): " + ", ".join(
            f"{m} {rob['mean_corrupted'][m]:.3f} (clean {rob['clean'][m]:.3f})" for m in rob["models"]))
        lines += [f"  {line}" for line in rob["summary"].splitlines()]
    if result.get("report"):
        lines.append(f"report: {result['report']['html']} (+ {result['report']['json']})")
    return "\n".join(lines)


@click.command("evaluate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--against", "run_dir", required=True, type=click.Path(file_okay=False),
              help="The RUN_DIR the bundles were converted from (its float model and recorded splits).")
@click.option("--groups", "groups_csv", type=click.Path(dir_okay=False), default=None,
              help="CSV of 'file,group' rows: the same figures per sub-population.")
@click.option("--max-drop", type=click.FloatRange(0), default=None, metavar="PP",
              help="Gate: exit 1 when any model's top-1 accuracy drop against the float model exceeds this (pp).")
@click.option("--max-flips", type=click.FloatRange(0, 100), default=None, metavar="PCT",
              help="Gate: exit 1 when any model's top-1 differs from the float model's on more than this "
                   "percentage of the images (as convert --max-flips).")
@click.option("--max-class-drop", type=click.FloatRange(0), default=None,
              help="Gate: exit 1 when any class's recall drop or any group's top-1 drop exceeds this (pp).")
@click.option("--debug-layers", is_flag=True,
              help="Rank layers by int8 quantization error (done anyway when the gate fails).")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report here, and its JSON beside it (X.html -> X.json).")
@click.option("--robustness", is_flag=True,
              help="Also measure accuracy under camera-like corruptions and FGSM, float vs each bundle.")
@click.option("--corruptions", default=None, metavar="LIST",
              help="With --robustness: comma-separated corruptions (default: all). "
                   "gaussian_noise, motion_blur, defocus_blur, brightness, contrast, exposure, jpeg, rotation, occlusion.")
@click.option("--severities", default=None, metavar="LIST", help="With --robustness: severities 1-5 (default: all).")
@click.option("--fgsm-eps", default=None, metavar="LIST",
              help="With --robustness: FGSM steps in pixel units out of 255 (default 1,2,4,8; 'none' skips FGSM).")
@click.option("--seed", default=0, show_default=True, help="With --robustness: the corruption seed.")
@output_options
def evaluate(paths, run_dir, groups_csv, max_drop, max_flips, max_class_drop, debug_layers, report, robustness, corruptions,
             severities, fgsm_eps, seed, quiet, as_json):
    """Compare RUN_DIR's float model with one or more bundles on held-out images.

    PATHS are bundle folders, optionally followed by a DATA folder (one sub-folder per class);
    without DATA the run's recorded test split is used (val when it has none). Several bundles
    are also evaluated as a probability-averaged ensemble. Exit status: 0 passed, 1 gate failed,
    2 user error.
    """
    from edgecnn.evaluation.evaluate import evaluate as run_evaluate

    bundles, data = split_paths(paths)
    rob = robustness_options(robustness, corruptions, severities, fgsm_eps, seed)
    progress = None if (quiet or as_json) else (lambda msg: click.echo(msg, err=True))
    result = run_evaluate(bundles, run_dir, data=data, groups_csv=groups_csv, max_drop=max_drop,
                          max_flips=max_flips, max_class_drop=max_class_drop, debug_layers=debug_layers, report=report,
                          progress=progress, robustness=rob)
    emit(result, as_json, quiet, lambda: format_summary(result))
    if not result["gate"]["passed"]:
        click.get_current_context().exit(1)
