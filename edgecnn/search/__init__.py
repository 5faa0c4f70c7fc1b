"""edgecnn.search: AutoML for the board (``edgecnn search``).

Modules (importing this package is light; each imports its heavy dependencies itself):

* ``runner``        :func:`search`, the library function behind the command;
* ``space``         the search space from the backbone registry, ``--space`` files (JSON/TOML);
* ``trial_options`` a drawn configuration as ``edgecnn finetune`` options (trials and the export);
* ``objective``     one trial, step by step: estimate, train, prune, convert, measure;
* ``trial_data``    the dataset the trials share, images decoded once per input size;
* ``training``      the trial's model and phases, through ``edgecnn.train`` (no RUN_DIR);
* ``int8``          the trial's int8 conversion and int8 accuracy;
* ``screening``     size and latency estimates before training; bases over the budget left out;
* ``pruning``       the multi-objective pruning rule after the head phase;
* ``storage``       the Optuna RDB storage (sqlite or any URL); the one raw query on its tables;
* ``study``         the study: objectives, sampler, settings check, trial records;
* ``workers``       the loop each worker runs: resume, exactly N trials, stale and silent trials;
* ``targets``       ``--target``: ``host`` (``host_target``), ``ssh://`` (``ssh_target``), or a
  profile estimate; ``target_base`` holds what they share;
* ``estimate``      MACs per op type from a .tflite or a Keras model; a profile's estimate;
* ``profile_fit``   fitting the profiles on ``published``, the published latencies;
* ``pareto``        the front, its rich table, the PNG plot and the HTML report;
* ``export``        ``--export best``: the chosen configuration through ``edgecnn finetune`` and
  ``edgecnn convert --int8``.

The ``edgecnn demo --search`` step is ``edgecnn/demo/search_step.py``.
"""


def search(data_dir, out, **options) -> dict:
    """Run a search; see :func:`edgecnn.search.runner.search` for the options."""
    from edgecnn.search.runner import search as _search

    return _search(data_dir, out, **options)


__all__ = ["search"]
