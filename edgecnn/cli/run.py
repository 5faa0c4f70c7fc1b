"""``edgecnn run BUNDLE``: the board's run loop (edgecnn.devices.app.run). No TensorFlow."""

import json
import sys

import click

from edgecnn.cli.common import output_options
from edgecnn.devices.options import RunOptions as Opts  # the defaults, written once there (standard library only)


@click.command("run")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--source", default="0", show_default=True,
              help="Camera index, video file, RTSP/HTTP URL, image folder, or picamera2[:WxH].")
@click.option("--backend", type=click.Choice(["auto", "litert", "tflite-runtime", "tensorflow"]),
              default=Opts.backend, show_default=True,
              help="Interpreter: LiteRT, tflite-runtime, or tf.lite as a last resort.")
@click.option("--threads", type=click.IntRange(1), default=Opts.threads, help="Interpreter threads (default: its own).")
@click.option("--edgetpu", is_flag=True, help="Use model_edgetpu.tflite with libedgetpu; falls back to the CPU "
                                              "model (degraded event) and retries the TPU.")
@click.option("--replay/--live", "replay", default=None,
              help="Every frame in order (default for files and folders) or only the latest (cameras, streams).")
@click.option("--events", type=click.Path(dir_okay=False), default=Opts.events,
              help="JSON-lines file (default stdout).")
@click.option("--events-max-mb", type=click.FloatRange(0, min_open=True), default=Opts.events_max_mb,
              show_default=True, help="Rotate the events file at this size.")
@click.option("--review-dir", type=click.Path(file_okay=False), default=Opts.review_dir,
              help="Save uncertain frames here.")
@click.option("--review-quota", "review_quota", type=click.FloatRange(0, min_open=True),
              default=Opts.review_quota_mb, show_default=True,
              help="MB kept in --review-dir (oldest deleted first).")
@click.option("--show", is_flag=True, help="A window with the label overlaid (needs an OpenCV with GUI support).")
@click.option("--http", "http_port", type=click.IntRange(0, 65535), default=Opts.http_port,
              help="Serve JSON status on PORT.")
@click.option("--http-host", default=Opts.http_host, show_default=True, help="Address for --http (0.0.0.0: all).")
@click.option("--exit-on-source-end", is_flag=True, help="Stop when a live source ends instead of reopening it.")
@click.option("--max-frames", type=click.IntRange(1), default=Opts.max_frames, help="Stop after this many frames.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=Opts.duration_s,
              help="Stop after this many seconds.")
@click.option("--watch-bundle", is_flag=True, help="Hot-swap BUNDLE when it changes, once the new one loads and "
                                                   "passes its self-test; otherwise keep the running one.")
@click.option("--stall", "stall_s", type=click.FloatRange(0), default=Opts.stall_s, show_default=True,
              help="Reopen the source when no new frame came for this many seconds (0: never).")
@click.option("--max-fps", type=click.FloatRange(0, min_open=True), default=Opts.max_fps,
              help="Read at most this many frames a second (a video looped with --live stands in for a camera).")
@click.option("--self-test", "self_test", is_flag=True,
              help="Check every file's sha256 and the golden samples on this board, then exit (non-zero on mismatch).")
@output_options
def run(bundle, source, backend, threads, edgetpu, replay, events, events_max_mb, review_dir, review_quota, show,
        http_port, http_host, exit_on_source_end, max_frames, duration, watch_bundle, stall_s, max_fps, self_test,
        quiet, as_json):
    """Classify frames from --source with BUNDLE; one JSON event per frame. SIGTERM/SIGINT stop cleanly."""
    if self_test:
        from edgecnn.devices.selftest import check

        report = check(bundle, backend, threads, edgetpu)
        if as_json:
            click.echo(json.dumps(report, default=str))
        elif not quiet:
            click.echo("\n".join(f"ok  {line}" for line in report["checks"]))
            click.echo(f"self-test passed on {report['backend']} ({report['device']})")
        return
    from edgecnn.devices.app import run as run_app

    options = Opts(backend=backend, threads=threads, edgetpu=edgetpu,
                   mode=Opts.mode if replay is None else ("replay" if replay else "live"), events=events,
                   events_max_mb=events_max_mb, review_dir=review_dir, review_quota_mb=review_quota, show=show,
                   http_port=http_port, http_host=http_host, exit_on_source_end=exit_on_source_end,
                   max_frames=max_frames, duration_s=duration, watch_bundle=watch_bundle, stall_s=stall_s,
                   max_fps=max_fps)
    summary = run_app(bundle, source, options)
    # stdout may carry the events: the summary goes to stderr unless events go to a file
    out = sys.stdout if events else sys.stderr
    if as_json:
        click.echo(json.dumps({"summary": summary}, default=str), file=out)
    elif not quiet:
        lat = summary["latency_ms"]
        click.echo(f"{summary['frames']} frames in {summary['uptime_s']:.1f} s ({summary['fps_overall']:.1f} fps), "
                   f"latency p50 {lat['p50']} ms p99 {lat['p99']} ms, dropped {summary['capture']['dropped']}, "
                   f"reconnects {summary['capture']['reconnects']}, labels {summary['labels']}, "
                   f"fallbacks {summary['fallback_reasons']}, degraded: {summary['degraded'] or 'no'}"
                   f"{_troubles(summary)}", file=out)


def _troubles(summary) -> str:
    """What the field cost this run, said only when it happened: skipped frames, events lost."""
    text = ""
    if summary["capture"].get("bad_frames"):
        text += f", undecodable frames skipped {summary['capture']['bad_frames']}"
    log = summary.get("event_log") or {}
    if log.get("dropped"):
        text += f", events dropped {log['dropped']} ({log.get('error') or 'disk full, since resumed'})"
    return text
