"""Market depth over real ib_async: the book stays consistent, IB's limit and venues hold."""

from __future__ import annotations

from collections import Counter

import ib_async
from ib_async import Contract, Future, Index, Stock

from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


class Book:
    """A client's order book, built from the depth operations as IB defines them."""

    def __init__(self, ticker: ib_async.Ticker, rows: int) -> None:
        self.rows = rows
        self.bids: list[tuple[float, float, str]] = []
        self.asks: list[tuple[float, float, str]] = []
        self.ops: Counter[int] = Counter()
        self.makers: set[str] = set()
        self.checked = 0
        ticker.updateEvent += self.on_update

    def on_update(self, ticker: ib_async.Ticker) -> None:
        for d in ticker.domTicks:
            side = self.bids if d.side == 1 else self.asks
            row = (d.price, d.size, d.marketMaker)
            if d.operation == 0:
                side.insert(d.position, row)
            elif d.operation == 1:
                side[d.position] = row
            else:
                del side[d.position]
            self.ops[d.operation] += 1
            self.makers.add(d.marketMaker)
        self.check()

    def check(self) -> None:
        for side, sign in ((self.bids, -1), (self.asks, 1)):
            assert len(side) <= self.rows
            prices = [p * sign for p, _, _ in side]
            assert prices == sorted(prices)
            assert all(size > 0 for _, size, _ in side)
        if self.bids and self.asks:
            assert self.bids[0][0] < self.asks[0][0]
        self.checked += 1


async def test_smart_depth_keeps_a_consistent_uncrossed_book(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    book = Book(ib.reqMktDepth(AAPL, 10, True), 10)
    await eventually(lambda: len(book.bids) == 10 and len(book.asks) == 10)
    await eventually(lambda: all(book.ops[op] > 5 for op in (0, 1, 2)) and book.checked > 20)
    assert book.makers <= {"NASDAQ", "ARCA", "NYSE", "BATS", "IEX", "EDGX"}
    assert ib_sim.subscriptions()["mkt_depth"] == 1
    ib.cancelMktDepth(AAPL, True)
    await eventually(lambda: "mkt_depth" not in ib_sim.subscriptions())


async def test_nasdaq_depth_names_market_makers(ib: ib_async.IB) -> None:
    msft = Stock("MSFT", "NASDAQ", "USD", conId=272093)
    book = Book(ib.reqMktDepth(msft, 5), 5)
    await eventually(lambda: len(book.bids) == 5 and len(book.asks) == 5)
    assert all(len(maker) == 4 for _, _, maker in book.bids + book.asks)


async def test_futures_depth_has_no_market_maker(ib: ib_async.IB) -> None:
    es = Future("ES", "20270319", "CME", conId=700_000_001)
    book = Book(ib.reqMktDepth(es, 12), 12)
    await eventually(lambda: len(book.bids) == 12 and len(book.asks) == 12)
    assert book.makers == {""}
    ticks = {round(p / 0.25, 6) % 1 for p, _, _ in book.bids + book.asks}
    assert ticks == {0.0}


async def test_fourth_depth_subscription_is_error_309(ib_sim: Simulator) -> None:
    one, two = ib_async.IB(), ib_async.IB()
    await one.connectAsync(ib_sim.host, ib_sim.port, clientId=1)
    await two.connectAsync(ib_sim.host, ib_sim.port, clientId=2)
    try:
        errors: list[tuple[int, str]] = []
        two.errorEvent += lambda req_id, code, text, *_: errors.append((code, text))
        contracts = [
            Stock("AAPL", "SMART", "USD", conId=265598),
            Stock("MSFT", "SMART", "USD", conId=272093),
            Stock("SPY", "SMART", "USD", conId=756733),
            Stock("QQQ", "SMART", "USD", conId=320227571),
        ]
        one.reqMktDepth(contracts[0], 5, True)
        one.reqMktDepth(contracts[1], 5, True)
        two.reqMktDepth(contracts[2], 5, True)
        two.reqMktDepth(contracts[3], 5, True)
        await eventually(lambda: errors)
        assert errors == [(309, "Max number (3) of market depth requests has been reached")]
        assert ib_sim.subscriptions()["mkt_depth"] == 3
        one.cancelMktDepth(contracts[0], True)
        await eventually(lambda: ib_sim.subscriptions()["mkt_depth"] == 2)
        ticker = two.reqMktDepth(contracts[3], 5, True)
        await eventually(lambda: ticker.domBids)
        assert len(errors) == 1
    finally:
        one.disconnect()
        two.disconnect()


async def test_depth_where_no_venue_offers_it_is_error_10092(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.reqMktDepth(AAPL, 5, False)  # SMART needs isSmartDepth
    ib.reqMktDepth(Index("SPX", "CBOE", "USD", conId=416904), 5, False)
    await eventually(lambda: len(errors) == 2)
    assert errors == [10092, 10092]


async def test_depth_exchanges_list_the_venues(ib: ib_async.IB) -> None:
    venues = await ib.reqMktDepthExchangesAsync()
    by_name = {(v.exchange, v.secType): v for v in venues}
    assert by_name[("NASDAQ", "STK")].serviceDataType == "Deep2"
    assert by_name[("ARCA", "STK")].serviceDataType == "Deep"
    assert ("CME", "FUT") in by_name
    assert ("IDEALPRO", "CASH") in by_name


async def test_depth_stops_after_a_1101(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib.reqMktDepth(Contract(conId=12087792, exchange="IDEALPRO"), 5)
    await eventually(lambda: ib_sim.subscriptions().get("mkt_depth") == 1)
    ib_sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
    ib_sim.notice(1101, "Connectivity between IB and TWS has been restored- data lost.")
    assert "mkt_depth" not in ib_sim.subscriptions()


async def test_fail_next_addresses_a_depth_request_by_its_id(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    ib_sim.fail_next("mkt_depth", 354, "Requested market data is not subscribed.")
    ticker = ib.reqMktDepth(AAPL, 5, True)
    await eventually(lambda: errors)
    req_id = next(k for k, t in ib.wrapper.reqId2Ticker.items() if t is ticker)
    assert errors == [(req_id, 354)]
    assert "mkt_depth" not in ib_sim.subscriptions()
