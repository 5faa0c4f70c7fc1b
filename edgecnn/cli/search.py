"""``edgecnn search DATA_DIR --target T --max-latency-ms L --max-size-kb S --trials N --out SEARCH_DIR``.

A thin wrapper around :func:`edgecnn.search.runner.search` (DESIGN rule 4).
"""

import click

from edgecnn.cli.common import emit, output_options


def _summary(result):
    lines = []
    b = result.get("best")
    est = " (estimate)" if result.get("latency_kind") == "estimate" else ""
    c = result.get("counts", {})
    lines.append(f"{c.get('finished', 0)} trials finished ({c.get('complete', 0)} complete, {c.get('pruned', 0)} "
                 f"pruned, {c.get('failed', 0)} failed) in {result.get('seconds', 0):.0f} s")
    if b:
        p = b.get("params") or {}
        lines.append(f"best within budget: trial {b['number']} ({p.get('base')}, unfreeze {p.get('unfreeze_top')}, "
                     f"lr {p.get('lr', 0):.2g}): int8 acc {b['int8_acc']:.3f}, {b['latency_ms']:.2f} ms{est}, "
                     f"{b['size_kb']:.0f} KB")
    else:
        lines.append("no trial within the budget")
    files = result.get("files", {})
    lines.append(f"trials: {files.get('trials')}  plot: {files.get('plot')}  report: {files.get('report')}")
    if result.get("export"):
        lines.append(f"exported trial {result['export']['trial']}: bundle {result['export']['bundle']}")
    return "\n".join(lines)


@click.command("search")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--target", default="host", show_default=True,
              help="host (measured here), ssh://user@board[:port] (measured on the board), or a profile: rpi4, "
                   "rpi5, coral-usb, coral-devboard (an ESTIMATE from MACs).")
@click.option("--max-latency-ms", type=float, required=True, help="Latency budget (hard constraint).")
@click.option("--max-size-kb", type=float, required=True, help="int8 model size budget (hard constraint).")
@click.option("--trials", type=click.IntRange(0), default=10, show_default=True,
              help="Finished trials wanted in the study in total (a resumed search counts earlier ones).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="SEARCH_DIR.")
@click.option("--space", type=click.Path(), default=None, help="JSON or TOML file narrowing or extending the space.")
@click.option("--study", default=None, help="Optuna storage URL [default: sqlite:///SEARCH_DIR/study.db]; a shared "
                                            "PostgreSQL/MySQL URL lets several machines work on one study.")
@click.option("--study-name", default="edgecnn-search", show_default=True)
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet (local files in $EDGECNN_WEIGHTS_DIR first), none, or a folder of weights files.")
@click.option("--sampler", type=click.Choice(["nsga2", "tpe", "random"]), default="nsga2", show_default=True)
@click.option("--seed", type=int, default=None,
              help="Seed of the sampler (reproducible searches; give each worker its own). Default: random "
                   "sampling per worker. Training seeds always follow the trial number.")
@click.option("--prune-margin", type=float, default=0.1, show_default=True,
              help="Prune a trial whose head-phase accuracy is this far below a no-slower, no-bigger finished trial.")
@click.option("--heartbeat", type=click.IntRange(1), default=30, show_default=True,
              help="Seconds between trial heartbeats; a killed worker's trial is failed after 3 missed ones.")
@click.option("--latency-stat", type=click.Choice(["p50", "p90", "p99", "mean"]), default="p50", show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Interpreter threads when measuring latency (host, ssh://) [default: 1].")
@click.option("--ssh-key", type=click.Path(), default=None, help="Identity file for ssh:// targets.")
@click.option("--ssh-option", "ssh_options", multiple=True, help="Extra ssh/scp option, e.g. -oPort=2222. Repeatable.")
@click.option("--remote-edgecnn", default="edgecnn", show_default=True, help="The edgecnn command on the board.")
@click.option("--ssh-timeout", type=float, default=120.0, show_default=True, help="Seconds per remote step.")
@click.option("--probe/--no-probe", default=True, show_default=True,
              help="Measure each base's untrained int8 model on the target before the search; bases over the "
                   "latency budget are left out.")
@click.option("--export", "export", default=None, help="'best' or a trial number: fine-tune it in full and write "
                                                       "SEARCH_DIR/export/bundle.")
@output_options
def search(data_dir, target, max_latency_ms, max_size_kb, trials, out, space, study, study_name, weights, sampler,
           seed, prune_margin, heartbeat, latency_stat, threads, ssh_key, ssh_options, remote_edgecnn, ssh_timeout, probe,
           export, quiet, as_json):
    """Search backbones, widths, input sizes and training settings for the best int8 model in a budget."""
    from edgecnn.search.runner import search as run_search

    progress = None
    if not (quiet or as_json):
        def progress(msg):
            click.echo(msg, err=True)

    result = run_search(data_dir, out, target=target, max_latency_ms=max_latency_ms, max_size_kb=max_size_kb,
                        trials=trials, space=space, study=study, study_name=study_name, weights=weights,
                        sampler=sampler, seed=seed, prune_margin=prune_margin, heartbeat=heartbeat,
                        latency_stat=latency_stat, ssh_key=ssh_key, ssh_options=list(ssh_options),
                        remote_edgecnn=remote_edgecnn, ssh_timeout=ssh_timeout, export=export, progress=progress,
                        probe=probe, threads=threads)
    if not (quiet or as_json):
        from rich.console import Console

        from edgecnn.search import pareto

        records = result.get("front_trials", [])
        rows = [dict(r, state="COMPLETE", feasible=True, params=r.get("params") or {}) for r in records]
        Console().print(pareto.table(rows, result["budget"], total=result.get("counts", {}).get("finished")))
    emit(result, as_json, quiet, lambda: _summary(result))
