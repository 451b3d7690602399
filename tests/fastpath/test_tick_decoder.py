"""The fast path's own tick decoding leaves a tracked Ticker exactly as ib_async's decoder would.

Two ``ib_async.IB`` objects get the same bytes in the same chunks. In one, ib_async decodes
everything; in the other, the fast path is installed and the quote ticker is tracked, so its
price and size ticks are applied by ibflow. After every chunk (at ib_async's
``tcpDataProcessed``, where ibflow builds its quotes) both record which tickers are pending and
every plain value of every ticker, and the records must match. The only difference allowed is
the one ``track_ticker`` documents: a tracked ticker's ``ticks`` list stays empty.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from ib_async import IB, Stock, Ticker
from ib_async.client import Client
from ib_async.wrapper import Wrapper

import ibflow._ib._fastpath as fastpath
from ibflow._ib._fastpath import (
    install_fast_receive,
    track_ticker,
    uninstall_fast_receive,
    untrack_ticker,
)

TRACKED = 7
OTHER = 8  # a ticker ib_async keeps decoding in both runs
UNKNOWN = 99  # no ticker at all: ib_async logs it in both runs
# Bookkeeping, not market state: identity, events, and the lists tracking leaves empty.
_SKIP = frozenset(
    {"contract", "defaults", "updateEvent", "ticks", "tickByTicks", "domTicks", "time",
     "timestamp", "created"}
)  # fmt: skip


def frame(*fields: object) -> bytes:
    payload = b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


START = frame(178, "20260105 09:30:00 US/Eastern") + frame(15, 1, "DU1234567") + frame(9, 1, 42)


def price(req_id: int, kind: int, value: object, size: object) -> bytes:
    return frame(1, 6, req_id, kind, value, size, 0)


def size(req_id: int, kind: int, value: object) -> bytes:
    return frame(2, 6, req_id, kind, value)


def market(req_id: int, count: int) -> list[bytes]:
    """Ordinary quote traffic: every tick type the fast path handles, live and delayed."""
    out = []
    for i in range(count):
        step = (i % 50 - 25) * 0.01
        delayed = i % 40 >= 30
        bid, ask, last, bid_size, ask_size, volume, hi, lo, close, open_ = (
            (66, 67, 68, 69, 70, 74, 72, 73, 75, 76) if delayed else (1, 2, 4, 0, 3, 8, 6, 7, 9, 14)
        )
        out += [
            price(req_id, bid, f"{189.5 + step:.2f}", 100 + i % 7),
            price(req_id, ask, f"{189.6 + step:.2f}", 200 + i % 5),
            size(req_id, bid_size, 300 + i % 11),
            size(req_id, ask_size, 400 + i % 13),
            price(req_id, last, f"{189.55 + step:.2f}", 10 + i % 3),
            size(req_id, volume, 1_000_000 + i),
        ]
        if i % 10 == 0:
            out += [
                price(req_id, hi, f"{191 + step:.2f}", 0),
                price(req_id, lo, f"{188 + step:.2f}", 0),
                price(req_id, close, "189.00", 0),
                price(req_id, open_, "189.10", 0),
            ]
    return out


# What ib_async treats specially: the fast path must hand each of these back to it.
ODD = [
    price(TRACKED, 1, "189.40", 0),  # a bid of size 0 blanks the side
    price(TRACKED, 2, "189.70", 0),
    price(TRACKED, 4, -1, 0),  # IB's "no last" (close > 0 by now)
    price(TRACKED, 1, "", 5),  # no price: ib_async ignores the frame
    price(TRACKED, 1, "not-a-price", 5),  # malformed: ib_async logs it
    size(TRACKED, 0, 0),  # size 0 blanks the bid
    size(TRACKED, 3, ""),  # empty size is 0 for ib_async
    size(TRACKED, 0, "bad"),
    size(TRACKED, 5, 12),  # last size: ib_async's own rule
    size(TRACKED, 21, 5_000),  # average volume: not a quote field
    price(TRACKED, 37, "189.33", 0),  # mark price: not a quote field
    price(TRACKED, 1, "189.41", 30),
    size(TRACKED, 0, 30),  # the same bid size again: ib_async does not even mark it pending
    frame(1, 6, TRACKED, 1, "189.42", 31),  # a frame one field short
    frame(2, 6, TRACKED, 0, 32, "extra"),  # and one field long
    frame(45, 6, TRACKED, 49, 1),  # halted (generic tick)
    frame(46, 6, TRACKED, 45, 1767600000),  # last timestamp (string tick)
    frame(58, 1, TRACKED, 3),  # market data type: delayed
    price(UNKNOWN, 1, "10.00", 1),
    size(UNKNOWN, 0, 1),
    price(OTHER, 1, "50.00", 0),
]


def stream() -> bytes:
    mixed = []
    for a, b in zip(market(TRACKED, 300), market(OTHER, 300), strict=True):
        mixed += [a, b]
    return b"".join(mixed[:900] + ODD + mixed[900:] + ODD)


class Feed:
    """One IB fed bytes directly, recording every chunk's pending tickers and their values."""

    def __init__(self, *, fast: bool) -> None:
        self.ib = ib = IB()
        client = ib.client
        client.connState = Client.CONNECTING
        client.conn.transport = _NoSend()
        self.records: list[tuple[Any, ...]] = []
        self.tickers = {
            req_id: ib.wrapper.startTicker(
                req_id, Stock(name, "SMART", "USD", conId=req_id), "mktData"
            )
            for req_id, name in ((TRACKED, "AAPL"), (OTHER, "MSFT"))
        }
        if fast:
            assert install_fast_receive(client)
            assert track_ticker(client, TRACKED, self.tickers[TRACKED])
        ib.pendingTickersEvent += self._on_pending
        self.updates = {req_id: 0 for req_id in self.tickers}
        for req_id, ticker in self.tickers.items():
            ticker.updateEvent += lambda _t, r=req_id: self._count(r)

    def _count(self, req_id: int) -> None:
        self.updates[req_id] += 1

    def _on_pending(self, tickers: set[Ticker]) -> None:
        names = {id(t): r for r, t in self.tickers.items()}
        self.records.append(
            ("chunk", tuple(sorted(names[id(t)] for t in tickers)), *self.state().items())
        )

    def state(self) -> dict[int, tuple[tuple[str, str], ...]]:
        return {
            req_id: tuple(
                (f.name, repr(getattr(t, f.name)))
                for f in dataclasses.fields(t)
                if f.name not in _SKIP
            )
            for req_id, t in self.tickers.items()
        }

    def feed(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.ib.client.conn.hasData.emit(chunk)


class _NoSend:
    def write(self, data: bytes) -> None:
        pass

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        pass


def cut(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


def logged(feed: Feed, data: bytes, size: int, caplog: pytest.LogCaptureFixture) -> list[str]:
    # The start-up first, on its own: until the API is ready every frame goes to ib_async.
    feed.feed([START])
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="ib_async"):
        feed.feed(cut(data, size))
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("size", [1 << 30, 4096, 333, 61, 7, 1])
async def test_tracked_ticker_ends_every_chunk_as_ib_async_leaves_it(
    size: int, caplog: pytest.LogCaptureFixture
) -> None:
    data = stream()
    plain, fast = Feed(fast=False), Feed(fast=True)
    plain_log = logged(plain, data, size, caplog)
    fast_log = logged(fast, data, size, caplog)
    assert len(plain.records) >= min(50, len(data) // size)
    for i, (want, have) in enumerate(zip(plain.records, fast.records, strict=True)):
        assert have == want, f"chunk {i} differs"
    assert fast.state() == plain.state()
    assert fast.updates == plain.updates
    # The frames left to ib_async were logged by it just the same (malformed, unknown id).
    assert fast_log == plain_log
    assert any("Unknown reqId: 99" in line for line in fast_log)
    assert fast.ib.client._numMsgRecv == plain.ib.client._numMsgRecv
    # The ticks went through ibflow's decoding, not ib_async's: that list only holds what was
    # left to ib_async (the odd frames at the end), where ib_async's holds the whole chunk.
    tracked = fast.tickers[TRACKED]
    assert len(tracked.ticks) <= len(ODD)
    if size > len(data):
        assert len(plain.tickers[TRACKED].ticks) > 1000
    untouched = [(t.tickType, t.price, t.size) for t in fast.tickers[OTHER].ticks]
    assert untouched == [(t.tickType, t.price, t.size) for t in plain.tickers[OTHER].ticks]
    assert tracked.bid == plain.tickers[TRACKED].bid
    assert tracked.marketDataType == 3
    assert tracked.halted == 1.0


async def test_untracked_ticker_goes_back_to_ib_async() -> None:
    fast = Feed(fast=True)
    client = fast.ib.client
    fast.feed([START, price(TRACKED, 1, "10.00", 5)])
    tracked = fast.tickers[TRACKED]
    assert (tracked.bid, tracked.ticks) == (10.0, [])
    untrack_ticker(client, TRACKED, tracked)
    fast.feed([price(TRACKED, 1, "10.01", 6)])
    assert tracked.bid == 10.01
    assert [(t.price, t.size) for t in tracked.ticks] == [(10.01, 6)]
    # Untracking someone else's ticker under the same id does nothing.
    assert track_ticker(client, TRACKED, tracked)
    untrack_ticker(client, TRACKED, fast.tickers[OTHER])
    fast.feed([price(TRACKED, 1, "10.02", 7)])
    assert (tracked.bid, tracked.ticks) == (10.02, [])


async def test_a_reset_forgets_tracked_ids_before_they_are_reused() -> None:
    """After a reconnect ib_async starts over (new table, ids from 1 again): no misrouting."""
    fast = Feed(fast=True)
    fast.feed([START, price(TRACKED, 1, "10.00", 5)])
    old = fast.tickers[TRACKED]
    wrapper = fast.ib.wrapper
    wrapper.reset()
    new = wrapper.startTicker(TRACKED, Stock("IBM", "SMART", "USD", conId=1), "mktData")
    fast.feed([price(TRACKED, 1, "20.00", 9)])
    assert old.bid == 10.0
    assert new.bid == 20.0
    assert [(t.price, t.size) for t in new.ticks] == [(20.0, 9)]  # ib_async decoded it


async def test_tracking_needs_the_fast_path() -> None:
    ib = IB()
    ticker = ib.wrapper.startTicker(TRACKED, Stock("AAPL", "SMART", "USD", conId=1), "mktData")
    assert not track_ticker(ib.client, TRACKED, ticker)
    untrack_ticker(ib.client, TRACKED, ticker)  # harmless
    other = IB()
    assert install_fast_receive(other.client)
    assert uninstall_fast_receive(other.client)
    # Switched off: tracked, but ib_async decodes until the fast path is back on.
    assert not track_ticker(other.client, TRACKED, ticker)


async def test_tracking_falls_back_when_ib_async_handles_ticks_differently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastpath, "_ticks_fallback_logged", True)
    original = Wrapper.tickSize

    def reworked(self: Wrapper, reqId: int, tickType: int, size: float) -> None:
        original(self, reqId, tickType, size)
        self.sizes_seen = True  # type: ignore[attr-defined]

    monkeypatch.setattr(Wrapper, "tickSize", reworked)
    fast = Feed(fast=False)  # no tracking asserted in the constructor
    client = fast.ib.client
    assert install_fast_receive(client)
    assert not track_ticker(client, TRACKED, fast.tickers[TRACKED])
    fast.feed([START, size(TRACKED, 0, 7)])
    assert fast.tickers[TRACKED].bidSize == 7  # ib_async's (reworked) handler decoded it
    assert fast.ib.wrapper.sizes_seen  # type: ignore[attr-defined]

    monkeypatch.setattr(Wrapper, "tickSize", original)
    # A decoder that converts tick sizes differently is noticed as well.
    other = IB()
    other.client.decoder.handlers[2] = other.client.decoder.wrap("tickSize", [int, int, int])
    assert install_fast_receive(other.client)
    ticker = other.wrapper.startTicker(TRACKED, Stock("AAPL", "SMART", "USD", conId=1), "mktData")
    assert not track_ticker(other.client, TRACKED, ticker)
    # And an unchanged ib_async is tracked.
    plain = IB()
    assert install_fast_receive(plain.client)
    ticker = plain.wrapper.startTicker(TRACKED, Stock("AAPL", "SMART", "USD", conId=1), "mktData")
    assert track_ticker(plain.client, TRACKED, ticker)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "ib_async"])
async def test_frames_too_short_for_a_tick_go_to_ib_async_and_the_chunk_goes_on(
    fast: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """An empty frame, or a tick frame of one or two fields, is ib_async's to log; the frames
    behind it in the same chunk are applied at once, not when the next chunk arrives."""
    feed = Feed(fast=fast)
    feed.feed([START])
    caplog.clear()
    short = [frame(), frame(1), frame(2), frame(1, 6), frame(2, 6)]
    chunk = b"".join(
        [price(TRACKED, 1, "10.00", 5), *short, price(TRACKED, 2, "10.05", 7), size(TRACKED, 0, 9)]
    )
    with caplog.at_level(logging.ERROR, logger="ib_async"):
        feed.feed([chunk])
    client = feed.ib.client
    assert client._data == b""
    assert client._numMsgRecv == 3 + 3 + len(short)
    tracked = feed.tickers[TRACKED]
    assert (tracked.bid, tracked.ask, tracked.bidSize, tracked.askSize) == (10.0, 10.05, 9, 7)
    # One chunk, one round of pending tickers, with the tracked ticker in it.
    assert [record[1] for record in feed.records] == [(TRACKED,)]
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == len(short)
    assert all(line.startswith(("Error handling fields", "Error for tickSize")) for line in logged)


async def test_malformed_frames_during_start_up_are_logged_and_the_start_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = Feed(fast=True)
    client = feed.ib.client
    started: list[bool] = []
    client.apiStart += lambda: started.append(True)
    hello, ids = frame(178, "20260105 09:30:00 US/Eastern"), frame(9, 1, 42)
    odd = [frame(), frame(9, 1, "not-an-id"), frame(15)]
    with caplog.at_level(logging.ERROR, logger="ib_async"):
        feed.feed([hello + b"".join(odd) + frame(15, 1, "DU1234567") + ids])
    assert started == [True]
    assert client._data == b""
    assert (client._apiReady, client.getAccounts(), client._reqIdSeq) == (True, ["DU1234567"], 42)
    assert len(caplog.records) == len(odd)
