"""Quote values no market can have become None, counted in the session's statistics."""

from __future__ import annotations

import dataclasses
import math
import struct
import sys

import ib_async
import pytest

import ibflow
from ibflow._ib._market import ValueGuard, quote_from_ticker
from ibflow.sim import Scenario, Simulator
from ibflow.testing import session_for
from tests.faults.conftest import HostileProxy

from .helpers import AAPL

ES = ibflow.Future("ES", "202703", exchange="CME")


async def test_a_snapshot_drops_impossible_values(session: ibflow.Session, sim: Simulator) -> None:
    before = session.statistics().rejected_values
    sim.push_quote("AAPL", last=-5.0, ask_size=-3.0, volume=-7.0)
    quote = await session.quote(AAPL)
    assert (quote.last, quote.ask_size, quote.volume) == (None, None, None)
    assert quote.bid is not None
    assert quote.ask is not None
    assert quote.bid >= 0
    assert session.statistics().rejected_values >= before + 3


async def test_a_stream_never_delivers_impossible_values(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes:
        await anext(quotes)
        sim.push_quote("AAPL", last=-5.0, ask_size=-3.0, volume=-7.0)
        seen: list[ibflow.Quote] = []
        while session.statistics().rejected_values < 3:
            item = await anext(quotes)
            assert isinstance(item, ibflow.Quote)
            seen.append(item)
        seen.append(await anext(quotes))  # type: ignore[arg-type]
    for q in seen:
        assert q.last is None or q.last > 0
        assert q.ask_size is None or q.ask_size >= 0
        assert q.volume is None or q.volume >= 0


def _frame(*fields: object) -> bytes:
    payload = b"".join(str(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


@pytest.mark.parametrize("fast_receive", ["1", "0"], ids=["fast", "ib_async"])
async def test_non_finite_numbers_from_the_wire_become_none(
    fast_receive: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Infinite prices and sizes in TWS's own frames, on both receive paths."""
    monkeypatch.setenv("IBFLOW_FAST_RECEIVE", fast_receive)
    quiet = dataclasses.replace(Scenario.default(), tick_interval=1e6)  # only what we send
    async with Simulator(port=0, speed=100, scenario=quiet) as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        proxy = HostileProxy(sim)
        await proxy.start()
        try:
            async with session_for(proxy) as session, session.quotes(AAPL) as quotes:  # type: ignore[arg-type]
                await anext(quotes)
                req_id = [f[2] for _, kind, f in sim.requests if kind == "mkt_data"][-1]
                proxy.inject(
                    _frame(1, 6, req_id, 2, "inf", 300, 0)  # ask
                    + _frame(1, 6, req_id, 4, "-5", 1, 0)  # last
                    + _frame(2, 6, req_id, 8, "inf")  # volume
                    + _frame(1, 6, req_id, 1, "190.50", "1e999", 0)  # bid, infinite size
                )
                while True:
                    quote = await anext(quotes)
                    assert isinstance(quote, ibflow.Quote)
                    if quote.bid == 190.50:
                        break
                assert (quote.ask, quote.last, quote.volume, quote.bid_size) == (None,) * 4
                assert session.statistics().rejected_values >= 4
        finally:
            await proxy.aclose()


def _ticker(**values: float) -> ib_async.Ticker:
    ticker = ib_async.Ticker(contract=ib_async.Stock("AAPL", "SMART", "USD"))
    for name, value in values.items():
        setattr(ticker, name, value)
    return ticker


@pytest.mark.parametrize(
    ("values", "dropped"),
    [
        ({"bid": 1.0, "bidSize": 1.0, "ask": math.inf, "askSize": 2.0}, {"ask": None}),
        ({"volume": math.inf}, {"volume": None}),
        ({"volume": -math.inf}, {"volume": None}),
        ({"last": -5.0, "lastSize": 1.0}, {"last": None}),
        ({"bid": 1.0, "bidSize": -1.0}, {"bid_size": None}),
        ({"high": math.inf, "low": -math.inf, "close": 1.0}, {"high": None, "low": None}),
        ({"ask": 2.0, "askSize": math.inf}, {"ask_size": None}),
    ],
)
def test_non_finite_and_impossible_values_become_none(
    values: dict[str, float], dropped: dict[str, None]
) -> None:
    guard = ValueGuard()
    quote = quote_from_ticker(_ticker(**values), AAPL, guard)
    for field, expected in dropped.items():
        assert getattr(quote, field) is expected
    assert guard.rejected == len(dropped)


def test_valid_values_pass_and_tws_markers_are_not_rejections() -> None:
    guard = ValueGuard()
    quote = quote_from_ticker(
        _ticker(bid=-1.0, ask=sys.float_info.max, last=190.0, lastSize=5.0, volume=0.0),
        AAPL,
        guard,
    )
    assert (quote.bid, quote.ask, quote.last, quote.volume) == (None, None, 190.0, 0.0)
    assert guard.rejected == 0
    # A future's price may go below zero (crude oil did); its size may not.
    spread = quote_from_ticker(_ticker(last=-5.0, lastSize=-1.0), ES, guard)
    assert (spread.last, spread.last_size) == (-5.0, None)
    assert guard.rejected == 1
