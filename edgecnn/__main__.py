"""``python -m edgecnn``: the same command line as the ``edgecnn`` script (a board or a venv without it
on PATH)."""

from edgecnn.cli import main

main()
