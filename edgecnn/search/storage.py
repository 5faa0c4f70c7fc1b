"""The Optuna storage of a search: opening an RDB URL, masking its password, Optuna itself.

The study lives in an Optuna RDB storage: ``sqlite:///SEARCH_DIR/study.db`` by default, or any URL
Optuna accepts (``postgresql://user:pass@host/db``, driven by psycopg 3 from the ``search`` extra, which
SQLAlchemy 2.1 picks for a plain ``postgresql://``; ``mysql+pymysql://...`` with that driver installed),
so workers on several machines share one study. Heartbeats are on: a killed worker's RUNNING trials become stale.

:func:`trials_with_heartbeat` is the one place that reads Optuna's tables directly (see there why);
``tests/test_search_units.py`` checks the table and columns it reads exist in a fresh storage.
"""

import time
from pathlib import Path

from edgecnn.errors import EdgecnnError

# The Optuna table and columns trials_with_heartbeat reads (no public API answers its question).
HEARTBEAT_TABLE = "trial_heartbeats"
HEARTBEAT_COLUMNS = ("trial_id",)
_URL_FIX = ("Use sqlite:///PATH/study.db, postgresql://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB "
            "(any SQLAlchemy URL Optuna supports).")


_SERVER_FIX = ("Check that the database server is running and reachable from this machine, that the database "
               "exists (for PostgreSQL: createdb DB) and that the user may log in.")


class StudyError(EdgecnnError):
    """The study storage cannot be opened or does not match this search."""


def load_optuna():
    """Optuna (a clear error naming the extra when it is missing), quiet: the loop reports failures."""
    import warnings

    from edgecnn.errors import require

    optuna = require("optuna", "search")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def default_study_url(search_dir) -> str:
    return f"sqlite:///{Path(search_dir).resolve() / 'study.db'}"


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(str(url))
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return str(url)


def _rdb_storage(optuna, url, engine_kwargs, heartbeat):
    for attempt in range(6):
        try:
            return optuna.storages.RDBStorage(str(url), engine_kwargs=engine_kwargs,
                                              heartbeat_interval=int(heartbeat), grace_period=int(heartbeat) * 3)
        except ImportError:
            raise
        except Exception as exc:
            # Two workers creating the tables of a new database at once: one loses the race; retry.
            text = str(exc).lower()
            if attempt < 5 and ("already exists" in text or "locked" in text or "unique constraint" in text):
                time.sleep(0.3 * (attempt + 1))
                continue
            raise
    raise AssertionError("unreachable")


def _engine_kwargs(url: str) -> dict:
    """sqlite: the folder of the file made, and a long lock timeout (workers write at once). A database
    server (postgresql://, which the search extra's psycopg 3 drives): connections checked before use,
    since a worker's connection can sit idle through a long trial and be dropped by the server."""
    if not url.startswith("sqlite"):
        return {"pool_pre_ping": True}
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {"connect_args": {"timeout": 60}}


def open_storage(url: str, heartbeat: int = 30):
    """An RDBStorage with heartbeats (stale RUNNING trials of killed workers become FAIL).

    Raises:
        StudyError: naming the URL and the fix, for a malformed URL, a missing driver or a
            database that cannot be reached.
    """
    optuna = load_optuna()
    if "://" not in str(url):
        raise StudyError(f"--study '{url}' is not a database URL. {_URL_FIX}")
    engine_kwargs = _engine_kwargs(str(url))
    try:
        return _rdb_storage(optuna, url, engine_kwargs, heartbeat)
    except ImportError as exc:
        raise StudyError(f"--study '{safe_url(url)}' needs a database driver that is not installed ({exc}). Install "
                         "it (pip install 'edgecnn[search]' brings psycopg for postgresql://; pymysql for "
                         "mysql+pymysql://) or use a sqlite:/// URL.") from None
    except Exception as exc:  # sqlalchemy ArgumentError, OperationalError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].replace(str(url), safe_url(url))
        fix = _SERVER_FIX if type(exc).__name__ == "OperationalError" and not str(url).startswith("sqlite") else _URL_FIX
        raise StudyError(f"cannot open study storage '{safe_url(url)}': {first}. {fix}") from None


def trials_with_heartbeat(storage, trial_ids) -> set:
    """Which of ``trial_ids`` (storage trial ids) recorded a heartbeat at least once.

    Optuna's public storage API cannot tell: ``RDBStorage`` records and checks heartbeats, but its
    stale-trial check silently skips a trial without a heartbeat row, and nothing public says
    whether a row exists. So this reads ``trial_heartbeats.trial_id`` directly, and nothing else.
    """
    import sqlalchemy as sa

    ids = [int(i) for i in trial_ids]
    if not ids:
        return set()
    # SQLAlchemy Core, not SQL text: the engine's dialect (SQLite, PostgreSQL, MySQL) writes the query
    # and binds the list, so the same code reads every database Optuna supports.
    trial_id = sa.column(HEARTBEAT_COLUMNS[0])
    query = sa.select(trial_id).select_from(sa.table(HEARTBEAT_TABLE, trial_id)).where(trial_id.in_(ids))
    with storage.engine.connect() as con:
        return {row[0] for row in con.execute(query)}
