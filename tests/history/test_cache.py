"""The on-disk cache: where it lives, what it remembers, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import ibflow
from ibflow._history._cache import CACHE_ENV, FILE_NAME, HistoryCache, SeriesKey, default_cache_dir

from .helpers import ET

SERIES = SeriesKey(con_id=265598, bar_size="1 min", what="TRADES", rth=True)


def bar(t: int, price: float = 100.0) -> ibflow.Bar:
    return ibflow.Bar(
        time=datetime.fromtimestamp(t, ET),
        open=price,
        high=price + 1,
        low=price - 1,
        close=price,
        volume=None if price < 0 else 10.0,
        wap=None,
        count=None,
    )


def test_default_directory_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(CACHE_ENV, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() in (tmp_path / "xdg" / "ibflow", _platformdirs_dir())
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() in (tmp_path / "home" / ".cache" / "ibflow", _platformdirs_dir())


def _platformdirs_dir() -> Path | None:
    try:
        import platformdirs  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return Path(platformdirs.user_cache_dir("ibflow"))


def test_missing_ranges_follow_what_was_stored(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path)
    assert cache.path == tmp_path / FILE_NAME
    assert cache.missing(SERIES, 0, 1000) == [(0, 1000)]
    cache.store(SERIES, "US/Eastern", [bar(100), bar(160)], (100, 200))
    cache.store(SERIES, "US/Eastern", [], (400, 500))  # a range without bars is remembered too
    assert cache.missing(SERIES, 0, 1000) == [(0, 100), (200, 400), (500, 1000)]
    assert cache.missing(SERIES, 120, 180) == []
    cache.store(SERIES, "US/Eastern", [bar(200)], (200, 400))  # touching ranges merge
    assert cache.missing(SERIES, 0, 1000) == [(0, 100), (500, 1000)]
    other = SeriesKey(con_id=265598, bar_size="1 min", what="BID", rth=True)
    assert cache.missing(other, 0, 1000) == [(0, 1000)]


def test_read_returns_bars_in_the_zone_in_order(tmp_path: Path) -> None:
    cache = HistoryCache(str(tmp_path))
    stored = [bar(300, 3.0), bar(100, 1.0), bar(200, -2.0)]
    cache.store(SERIES, "US/Eastern", stored, (100, 400))
    cache.store(SERIES, "US/Eastern", [bar(200, 2.0)], None)  # replaced, not duplicated
    got = cache.read(SERIES, 100, 300, ET)
    assert [b.close for b in got] == [1.0, 2.0]
    assert got[0] == stored[1]
    assert got[0].time.tzinfo is ET
    assert cache.read(SERIES, 0, 1000, UTC)[0].time == datetime.fromtimestamp(100, UTC)
    cache.clear()
    assert cache.read(SERIES, 0, 1000, UTC) == []
    assert cache.missing(SERIES, 0, 10) == [(0, 10)]


def test_a_file_where_a_directory_should_be_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ibflow.ConfigError) as info:
        HistoryCache(blocker)
    assert info.value.variable == "directory"
    with pytest.raises(ibflow.ConfigError):
        HistoryCache(42)  # type: ignore[arg-type]


def test_an_unwritable_place_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = HistoryCache(blocker / "below")  # a directory under a file cannot be made
    with pytest.raises(ibflow.ConfigError, match="cache=False"):
        cache.missing(SERIES, 0, 10)
