"""Market scanners over the wire: parameters, ranked scans, updating scans, refusals."""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually


def change(sim: Simulator, con_id: int) -> float:
    q = sim.market.quote(con_id)
    return float(q.last / q.close - 1.0)


async def test_parameters_are_parsed(session: ibflow.Session) -> None:
    params = await session.scanner_parameters()
    codes = {c.code for c in params.scan_codes}
    assert {"TOP_PERC_GAIN", "TOP_PERC_LOSE", "MOST_ACTIVE", "HOT_BY_VOLUME"} <= codes
    gain = next(c for c in params.scan_codes if c.code == "TOP_PERC_GAIN")
    assert gain.name == "Top % Gainers"
    assert "STK" in gain.instruments
    assert "STK" in {i.type for i in params.instruments}
    assert "STK.US.MAJOR" in {loc.code for loc in params.locations}
    assert {"priceAbove", "priceBelow", "volumeAbove"} <= set(params.filters)
    assert params.xml.startswith("<")


async def test_gainers_and_losers_are_ranked_by_their_change(
    session: ibflow.Session, sim: Simulator
) -> None:
    gainers = await session.scan(ibflow.ScannerSubscription(code="TOP_PERC_GAIN", rows=10))
    losers = await session.scan(ibflow.ScannerSubscription(code="TOP_PERC_LOSE", rows=10))
    assert 0 < len(gainers) <= 10
    assert [r.rank for r in gainers] == list(range(len(gainers)))
    assert all(r.contract.con_id for r in gainers + losers)
    up = [change(sim, r.contract.con_id or 0) for r in gainers]
    down = [change(sim, r.contract.con_id or 0) for r in losers]
    # The sim's prices keep moving between its ranking and these reads: allow a little.
    assert up[0] >= up[-1] - 0.002
    assert down[0] <= down[-1] + 0.002
    assert up[0] > down[0]
    await eventually(lambda: "scanner_subscription" not in sim.subscriptions())


async def test_filters_narrow_the_results(session: ibflow.Session, sim: Simulator) -> None:
    sub = ibflow.ScannerSubscription(code="MOST_ACTIVE", filters={"priceAbove": 300.0})
    rows = await session.scan(sub)
    assert rows
    for r in rows:
        assert sim.market.quote(r.contract.con_id or 0).last > 290


async def test_a_scanner_stream_yields_updated_ranked_lists(
    session: ibflow.Session, sim: Simulator
) -> None:
    sub = ibflow.ScannerSubscription(code="TOP_PERC_GAIN", rows=5)
    async with session.scanner(sub) as scans, session.scanner(sub) as same:
        async with asyncio.timeout(5):
            first = await anext(scans)
            assert isinstance(first, list)
            assert first[0].contract.symbol != "KO"
            shared = await anext(same)  # the second consumer gets the latest list at once
            assert shared == first
            ko = sim.market.quote(8894)
            sim.push_quote("KO", last=round(ko.close * 1.5, 2))  # KO jumps to the top
            async for results in scans:
                assert isinstance(results, list)
                assert 0 < len(results) <= 5
                assert [r.rank for r in results] == list(range(len(results)))
                if results[0].contract.symbol == "KO":
                    break
        assert sim.subscriptions()["scanner_subscription"] == 1
    await eventually(lambda: "scanner_subscription" not in sim.subscriptions())


async def test_what_tws_cannot_scan_is_refused(session: ibflow.Session) -> None:
    with pytest.raises(ibflow.RequestError) as caught:
        await session.scan(ibflow.ScannerSubscription(code="NO_SUCH_SCAN"), timeout=2)
    assert caught.value.code == 321
    with pytest.raises(ibflow.InvalidRequest, match="rows"):
        ibflow.ScannerSubscription(code="MOST_ACTIVE", rows=0)
    with pytest.raises(ibflow.InvalidRequest, match="filter"):
        ibflow.ScannerSubscription(code="MOST_ACTIVE", filters={"priceAbove": None})


async def test_a_scanner_stream_is_resubscribed_after_a_restart(
    session: ibflow.Session, sim: Simulator
) -> None:
    sub = ibflow.ScannerSubscription(code="MOST_ACTIVE", rows=5)
    async with session.scanner(sub) as scans:
        async with asyncio.timeout(5):
            assert isinstance(await anext(scans), list)
            await sim.restart(down_for=0.2)
            while not isinstance(await anext(scans), ibflow.Gap):
                pass  # lists from before the outage
            again = await anext(scans)
            assert isinstance(again, list)
            assert again
        assert sim.subscriptions()["scanner_subscription"] == 1


async def test_the_eleventh_scanner_subscription_is_refused_with_a_typed_error(
    session: ibflow.Session, sim: Simulator
) -> None:
    """TWS allows ten scanner subscriptions at once; the eleventh is refused, the others run."""
    streams = [
        session.scanner(ibflow.ScannerSubscription(code="MOST_ACTIVE", rows=rows))
        for rows in range(1, 12)
    ]
    try:
        for stream in streams[:10]:
            await stream.__aenter__()
            assert not isinstance(await asyncio.wait_for(anext(stream), 10), ibflow.Gap)
        with pytest.raises(ibflow.RequestError) as refused:
            async with streams[10] as eleventh:
                await asyncio.wait_for(anext(eleventh), 10)
        assert "10 simultaneous" in str(refused.value)
        assert sim.subscriptions().get("scanner_subscription") == 10
    finally:
        for stream in streams:
            await stream.aclose()
