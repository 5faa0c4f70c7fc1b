"""``edgecnn demo``: the whole trip on generated data. :mod:`.trip` holds the literal list of steps;
each ``*_step`` module holds the steps of one stage.
"""
