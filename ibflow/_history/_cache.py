"""A local, on-disk store of downloaded bars, so a repeated download asks IB only for what's new.

Every historical request costs pacing budget (60 per ten minutes), and users re-run the same
research script many times a day. SQLite (in the standard library, safe across processes,
one file) keeps every bar once per series — contract, bar size, what-to-show, RTH — plus the
time ranges already fetched, so ``download()`` can ask IB only for the gaps. Ranges with no
bars (weekends, before the first trade) are remembered too, so they are not asked again.

Where it lives: ``IBFLOW_CACHE_DIR`` if set, else the user cache directory (``platformdirs``'
when that package is installed, otherwise ``$XDG_CACHE_HOME/ibflow`` or ``~/.cache/ibflow``).
A :class:`HistoryCache` can be given an explicit directory, and ``cache=False`` turns it off.

Only complete bars are stored: the caller passes the instant before which bars are final, so
the bar in progress is always asked again.

The methods are blocking (SQLite is fast for this, but not free); the session calls them in a
worker thread with one short-lived connection per call.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from .._errors import ConfigError
from .._records.contracts import Bar

__all__ = ["CACHE_ENV", "FILE_NAME", "HistoryCache", "SeriesKey", "default_cache_dir"]

CACHE_ENV = "IBFLOW_CACHE_DIR"
FILE_NAME = "history.sqlite3"
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    con_id INTEGER NOT NULL,
    bar_size TEXT NOT NULL,
    what TEXT NOT NULL,
    rth INTEGER NOT NULL,
    tz TEXT NOT NULL,
    UNIQUE (con_id, bar_size, what, rth)
);
CREATE TABLE IF NOT EXISTS bars (
    series INTEGER NOT NULL,
    t INTEGER NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume REAL,
    wap REAL,
    count INTEGER,
    PRIMARY KEY (series, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage (
    series INTEGER NOT NULL,
    start INTEGER NOT NULL,
    stop INTEGER NOT NULL,
    PRIMARY KEY (series, start)
) WITHOUT ROWID;
"""


def default_cache_dir() -> Path:
    """Where the cache lives unless told otherwise (see the module docstring)."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    try:
        platformdirs = importlib.import_module("platformdirs")
    except ImportError:
        platformdirs = None
    if platformdirs is not None:
        return Path(str(platformdirs.user_cache_dir("ibflow")))
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ibflow"


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """One series of bars: what a download asks for, minus the time range."""

    con_id: int
    bar_size: str
    what: str
    rth: bool


class HistoryCache:
    """An on-disk store of historical bars (SQLite), shared by every session in the process.

    Args:
        directory: where to keep ``history.sqlite3``; default: :func:`default_cache_dir`
            (``IBFLOW_CACHE_DIR`` or the user cache directory).

    Raises:
        ConfigError: ``directory`` is not a usable directory path.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._explicit = directory is not None
        if directory is None:
            folder = default_cache_dir()
        elif isinstance(directory, str | os.PathLike):
            folder = Path(directory).expanduser()
        else:
            raise ConfigError(
                f"HistoryCache(directory=...) must be a path, got {directory!r}",
                variable="directory",
            )
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"the history cache directory {folder} is a file; pass a directory "
                f"(or set {CACHE_ENV} to one)",
                variable=CACHE_ENV if not self._explicit else "directory",
            )
        self._path = folder / FILE_NAME
        self._ready = False

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def __repr__(self) -> str:
        return f"<ibflow.HistoryCache {self._path}>"

    def clear(self) -> None:
        """Forget every stored bar and range (the file stays)."""
        with self._connect() as db:
            db.execute("DELETE FROM bars")
            db.execute("DELETE FROM coverage")
            db.execute("DELETE FROM series")

    # -- used by the session (blocking; run in a worker thread) --------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the history cache at {self._path}: {exc}; pass another "
                f"directory, set {CACHE_ENV}, or download with cache=False",
                variable="directory" if self._explicit else CACHE_ENV,
            ) from exc
        try:
            with db:
                if not self._ready:
                    db.execute("PRAGMA journal_mode=WAL")
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    if version not in (0, _SCHEMA_VERSION):
                        raise ConfigError(
                            f"the history cache at {self._path} was written by another "
                            "version of ibflow; delete the file or use another directory",
                            variable="directory" if self._explicit else CACHE_ENV,
                        )
                    db.executescript(_SCHEMA)
                    db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                    self._ready = True
                yield db
        finally:
            db.close()

    @staticmethod
    def _series_id(db: sqlite3.Connection, key: SeriesKey, tz: str | None) -> int | None:
        """The series' row id; with ``tz``, made if missing (another writer may race us)."""
        fields = (key.con_id, key.bar_size, key.what, int(key.rth))
        if tz is not None:
            db.execute(
                "INSERT OR IGNORE INTO series (con_id, bar_size, what, rth, tz) "
                "VALUES (?, ?, ?, ?, ?)",
                (*fields, tz),
            )
        row = db.execute(
            "SELECT id FROM series WHERE con_id=? AND bar_size=? AND what=? AND rth=?", fields
        ).fetchone()
        return None if row is None else int(row[0])

    def missing(self, key: SeriesKey, start: int, stop: int) -> list[tuple[int, int]]:
        """The parts of ``[start, stop)`` (epoch seconds) not fetched yet, in time order."""
        with self._connect() as db:
            sid = self._series_id(db, key, None)
            if sid is None:
                return [(start, stop)] if start < stop else []
            rows = db.execute(
                "SELECT start, stop FROM coverage WHERE series=? AND stop>? AND start<? "
                "ORDER BY start",
                (sid, start, stop),
            ).fetchall()
        gaps = []
        cursor = start
        for lo, hi in rows:
            if lo > cursor:
                gaps.append((cursor, min(lo, stop)))
            cursor = max(cursor, hi)
        if cursor < stop:
            gaps.append((cursor, stop))
        return gaps

    def store(
        self,
        key: SeriesKey,
        tz: str,
        bars: Sequence[Bar],
        covered: tuple[int, int] | None,
    ) -> None:
        """Keep ``bars`` and mark ``covered`` (epoch seconds, ``[start, stop)``) as fetched."""
        with self._connect() as db:
            sid = self._series_id(db, key, tz)
            db.executemany(
                "INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        sid,
                        int(b.time.timestamp()),
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        b.volume,
                        b.wap,
                        b.count,
                    )
                    for b in bars
                ],
            )
            if covered is None or covered[0] >= covered[1]:
                return
            lo, hi = covered
            # Merge with every range it touches, so coverage stays a few rows per series.
            rows = db.execute(
                "SELECT start, stop FROM coverage WHERE series=? AND stop>=? AND start<=?",
                (sid, lo, hi),
            ).fetchall()
            for start, stop in rows:
                lo, hi = min(lo, start), max(hi, stop)
            db.execute(
                "DELETE FROM coverage WHERE series=? AND stop>=? AND start<=?",
                (sid, lo, hi),
            )
            db.execute("INSERT INTO coverage VALUES (?, ?, ?)", (sid, lo, hi))

    def read(self, key: SeriesKey, start: int, stop: int, tz: tzinfo) -> list[Bar]:
        """Stored bars with ``start <= time < stop``, oldest first, times in ``tz``."""
        with self._connect() as db:
            sid = self._series_id(db, key, None)
            if sid is None:
                return []
            rows = db.execute(
                "SELECT t, open, high, low, close, volume, wap, count FROM bars "
                "WHERE series=? AND t>=? AND t<? ORDER BY t",
                (sid, start, stop),
            ).fetchall()
        return [
            Bar(
                time=datetime.fromtimestamp(t, tz),
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                wap=w,
                count=n,
            )
            for t, o, h, lo, c, v, w, n in rows
        ]
