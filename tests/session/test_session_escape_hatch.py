"""session.ib: the underlying ib_async.IB for what ibflow does not wrap, without breaking it."""

from __future__ import annotations

import ib_async

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for


async def test_the_escape_hatch_shares_the_link_and_leaves_the_bookkeeping_intact(
    ib_sim: Simulator,
) -> None:
    async with session_for(ib_sim) as session:
        ib = session.ib
        assert isinstance(ib, ib_async.IB)
        assert ib.isConnected()
        assert ib.client.clientId == session.client_id
        # A request straight through ib_async.
        stamp = await ib.reqCurrentTimeAsync()
        assert stamp.tzinfo is not None
        [details] = await ib.reqContractDetailsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
        # ib_async's own market-data subscription does not disturb ibflow's stream.
        raw = ib.reqMktData(details.contract)
        [aapl] = await session.qualify(ibflow.Stock("AAPL"))
        async with session.quotes(aapl) as quotes:
            quote = await anext(quotes)
            assert not isinstance(quote, ibflow.Gap)
            assert quote.contract.con_id == aapl.con_id
        ib.cancelMktData(raw.contract)
        # Orders still go through ibflow with fresh ids, and are followed to their fill.
        before = {p.contract.con_id: p.quantity for p in await session.positions()}
        trade = await session.place(aapl, ibflow.MarketOrder("BUY", 3))
        fills = await trade.wait_filled(timeout=5)
        assert sum(f.quantity for f in fills) == 3
        positions = {p.contract.con_id: p.quantity for p in await session.positions()}
        assert positions[aapl.con_id] == before.get(aapl.con_id, 0) + 3
    await eventually(lambda: not ib.isConnected())
