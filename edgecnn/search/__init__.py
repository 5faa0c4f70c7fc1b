"""edgecnn.search: AutoML for the board (``edgecnn search``).

Modules (importing this package is light; each imports its heavy dependencies itself):

* ``space``     the search space from the backbone registry, ``--space`` files (JSON/TOML);
* ``objective`` one trial: fine-tune, convert to int8, measure accuracy, size and latency;
  screening of bases and the multi-objective pruning rule;
* ``trainer``   the trial's model, head phase on cached features, fine-tune and int8 conversion;
* ``study``     the Optuna storage (sqlite or any RDB URL), workers, resume, stale trials;
* ``targets``   latency on ``host``, over ``ssh://user@board[:port]``, or a profile estimate;
* ``estimate``  MACs per op type from a .tflite or a Keras model; profile fitting;
* ``published`` the published latencies the profiles in ``edgecnn/profiles`` are fitted on;
* ``pareto``    the front, its rich table, the PNG plot and the HTML report;
* ``export``    ``--export best``: the chosen configuration through ``edgecnn finetune`` and
  ``edgecnn convert --int8``;
* ``runner``    :func:`search`, the library function behind the command;
* ``demo_step`` the ``edgecnn demo --search`` step.
"""


def search(data_dir, out, **options) -> dict:
    """Run a search; see :func:`edgecnn.search.runner.search` for the options."""
    from edgecnn.search.runner import search as _search

    return _search(data_dir, out, **options)


__all__ = ["search"]
