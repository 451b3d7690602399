"""Market scanners over real ib_async: parameters, rankings, updates, filters and IB's limit."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import ib_async
from ib_async import ScannerSubscription, TagValue

from ibflow.sim import Simulator
from ibflow.testing import eventually


def sub(code: str, **kw: object) -> ScannerSubscription:
    return ScannerSubscription(
        instrument="STK",
        locationCode="STK.US.MAJOR",
        scanCode=code,
        **kw,  # type: ignore[arg-type]
    )


def change(sim: Simulator, con_id: int) -> float:
    q = sim.market.quote(con_id)
    return q.last / q.close - 1.0


async def test_parameters_list_codes_instruments_and_locations(ib: ib_async.IB) -> None:
    xml = await ib.reqScannerParametersAsync()
    root = ET.fromstring(xml)
    codes = {e.text for e in root.iter("scanCode")}
    assert {"TOP_PERC_GAIN", "TOP_PERC_LOSE", "MOST_ACTIVE", "HOT_BY_VOLUME"} <= codes
    assert {e.text for e in root.iter("type")} >= {"STK"}
    assert "STK.US.MAJOR" in {e.text for e in root.iter("locationCode")}
    assert "priceAbove" in {e.text for e in root.iter("code")}


async def test_gainers_and_losers_are_ranked_by_change(ib: ib_async.IB, ib_sim: Simulator) -> None:
    gainers = await ib.reqScannerDataAsync(sub("TOP_PERC_GAIN"))
    losers = await ib.reqScannerDataAsync(sub("TOP_PERC_LOSE"))
    assert gainers
    assert losers
    assert [r.rank for r in gainers] == list(range(len(gainers)))
    up = [change(ib_sim, r.contractDetails.contract.conId) for r in gainers]
    down = [change(ib_sim, r.contractDetails.contract.conId) for r in losers]
    assert all(c > 0 for c in up)
    assert up == sorted(up, reverse=True)
    assert all(c < 0 for c in down)
    assert down == sorted(down)
    assert gainers[0].contractDetails.contract.secType == "STK"


async def test_most_active_is_ranked_by_the_session_volume(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    rows = await ib.reqScannerDataAsync(sub("MOST_ACTIVE", numberOfRows=5))
    assert len(rows) == 5
    volumes = []
    for row in rows:
        inst = ib_sim.universe.by_con_id(row.contractDetails.contract.conId)
        assert inst is not None
        bars = ib_sim.market.history(
            inst,
            end=datetime.now(UTC),
            duration="1 D",
            bar_size="1 day",
            what="TRADES",
            use_rth=True,
        )
        volumes.append(bars[-1].volume)
    assert volumes == sorted(volumes, reverse=True)
    hot = await ib.reqScannerDataAsync(sub("HOT_BY_VOLUME"))
    assert len(hot) == len([i for i in ib_sim.universe if i.sec_type == "STK"])


async def test_filters_narrow_the_results(ib: ib_async.IB, ib_sim: Simulator) -> None:
    rows = await ib.reqScannerDataAsync(sub("MOST_ACTIVE", abovePrice=300.0))
    assert rows
    assert all(ib_sim.market.quote(r.contractDetails.contract.conId).last > 300 for r in rows)
    etfs = await ib.reqScannerDataAsync(sub("MOST_ACTIVE", stockTypeFilter="ETF"))
    symbols = {r.contractDetails.contract.symbol for r in etfs}
    assert symbols == {"SPY", "QQQ", "IWM", "TLT"}
    small = await ib.reqScannerDataAsync(sub("TOP_PERC_GAIN"), [], [TagValue("priceBelow", "200")])
    assert all(ib_sim.market.quote(r.contractDetails.contract.conId).last < 200 for r in small)


async def test_a_subscription_updates_when_the_ranking_changes(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    results = ib.reqScannerSubscription(sub("TOP_PERC_GAIN"))
    await eventually(lambda: len(results) > 0)
    ko = ib_sim.market.quote(8894)
    ib_sim.push_quote("KO", last=round(ko.close * 1.5, 2))
    await eventually(lambda: results and results[0].contractDetails.contract.symbol == "KO")
    assert [r.rank for r in results] == list(range(len(results)))
    ib.cancelScannerSubscription(results)
    await eventually(lambda: "scanner_subscription" not in ib_sim.subscriptions())


async def test_an_eleventh_scanner_subscription_is_refused(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *_: errors.append((code, text))
    codes = itertools.cycle(["TOP_PERC_GAIN", "TOP_PERC_LOSE", "MOST_ACTIVE", "HOT_BY_VOLUME"])
    lists = [ib.reqScannerSubscription(sub(next(codes))) for _ in range(11)]
    await eventually(lambda: errors)
    assert errors == [
        (
            162,
            "Historical Market Data Service error message:"
            "Only 10 simultaneous API scanner subscriptions are allowed.",
        )
    ]
    assert ib_sim.subscriptions()["scanner_subscription"] == 10
    ib.cancelScannerSubscription(lists[0])
    await eventually(lambda: ib_sim.subscriptions()["scanner_subscription"] == 9)
    assert await ib.reqScannerDataAsync(sub("MOST_ACTIVE"))


async def test_what_the_sim_cannot_scan_is_refused_with_321(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.reqScannerSubscription(sub("NO_SUCH_SCAN"))
    ib.reqScannerSubscription(sub("MOST_ACTIVE", marketCapAbove=1e9))
    ib.reqScannerSubscription(sub("MOST_ACTIVE"), [], [TagValue("dividendYieldAbove", "2")])
    ib.reqScannerSubscription(ScannerSubscription(instrument="STK", locationCode="ETF.EQ.US",
                                                  scanCode="MOST_ACTIVE"))  # fmt: skip
    await eventually(lambda: len(errors) == 4)
    assert errors == [321] * 4
