"""Bundles onto a fleet of boards over SSH, and what the fleet runs.

* ``rollout``    ``edgecnn deploy``: per board copy, self-test there, atomic switch, health check,
  rollback; canary first, then ``--parallel`` boards at a time;
* ``fleet``      ``edgecnn fleet status`` / ``fleet rollback``;
* ``inventory``  TARGET URLs and ``--targets`` files (lines, TOML, JSON) -> :class:`Board`;
* ``link``       one board's commands over SSH (``edgecnn board ...`` there, :mod:`edgecnn.remote.ssh`);
* ``package``    the bundle checked and packed once; ``health`` the wait for the app to follow;
* ``options``    :class:`FleetOptions`, each default once.

The board side of every step is :mod:`edgecnn.devices.board_root` (no TensorFlow), run there as
``edgecnn board``.
"""
