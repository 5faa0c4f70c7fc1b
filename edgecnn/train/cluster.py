"""The cluster of a multi-worker finetune: ``TF_CONFIG``, built from ``--workers`` or read as given.

TensorFlow's MultiWorkerMirroredStrategy reads the cluster from the ``TF_CONFIG`` environment
variable (JSON: every worker's ``host:port`` and this process's task). ``--workers
HOST:PORT,HOST:PORT --worker-index N`` writes it for users who do not want to write JSON. Worker 0
(or a ``chief`` task) is the chief: it alone writes RUN_DIR; the others read it (standard library only).
"""

import json
import os
from typing import Optional

from edgecnn.errors import RunError


def parse_workers(spec) -> list:
    """``"host:port,host:port"`` (or a list) as a list of ``host:port``; RunError naming a bad entry."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    workers = [str(w).strip() for w in items if str(w).strip()]
    if len(workers) < 2:
        raise RunError(f"--workers '{spec}' names {len(workers)} worker(s); a cluster needs at least two "
                       "HOST:PORT entries separated by commas (for one machine use --strategy mirrored).")
    for w in workers:
        host, _, port = w.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RunError(f"--workers entry '{w}' is not HOST:PORT (for example 10.0.0.5:12345).")
    if len(set(workers)) != len(workers):
        raise RunError(f"--workers '{spec}' names a HOST:PORT twice; each worker needs its own.")
    return workers


def tf_config(workers, index: int) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in ``workers``."""
    workers = parse_workers(workers)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(workers):
        raise RunError(f"--worker-index {index!r} is not between 0 and {len(workers) - 1} (one per --workers entry).")
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}


def configure(options: dict, workers, worker_index: Optional[int]) -> dict:
    """Set ``TF_CONFIG`` for ``--workers``/``--worker-index`` (before TensorFlow reads it); returns the
    finetune ``options`` with ``strategy`` multiworker (the cluster is not an argument of the run:
    every worker records the same arguments, and a resume may use other machines)."""
    if worker_index is None:
        raise RunError("--workers needs --worker-index N: this machine's place in the list (0 on the chief).")
    if options.get("strategy", "auto") not in ("auto", "multiworker"):
        raise RunError(f"--workers trains with --strategy multiworker, not '{options['strategy']}'.")
    os.environ["TF_CONFIG"] = json.dumps(tf_config(workers, worker_index))
    return dict(options, strategy="multiworker")


def task() -> Optional[dict]:
    """``{"type", "index", "cluster"}`` from ``TF_CONFIG``, or None when it is not set (RunError if unreadable)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        t = config.get("task") or {}
        return {"type": str(t.get("type", "worker")), "index": int(t.get("index", 0)),
                "cluster": {k: list(v) for k, v in (config.get("cluster") or {}).items()}}
    except (ValueError, TypeError, AttributeError) as exc:
        raise RunError(f"TF_CONFIG is not valid JSON with a cluster and a task ({exc}).") from None


def is_chief_task(info: Optional[dict]) -> bool:
    """The chief: a ``chief`` task, or worker 0 of a cluster without one (TensorFlow's rule)."""
    if info is None:
        return True
    if info["type"] == "chief":
        return True
    return info["type"] == "worker" and info["index"] == 0 and "chief" not in info["cluster"]
