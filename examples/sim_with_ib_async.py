"""Drive the embedded TWS simulator with plain ib_async: connect, read, trade, stream.

    python examples/sim_with_ib_async.py

Starts ``ibflow.sim`` on a free loopback port, so it needs no TWS and no running ``ibflow sim``.
"""

from __future__ import annotations

import asyncio

import ib_async

from ibflow.sim import Simulator


async def main() -> None:
    async with Simulator(port=0, seed=1) as sim:
        ib = ib_async.IB()
        await ib.connectAsync(sim.host, sim.port, clientId=1, timeout=5)
        try:
            print("accounts:", ib.managedAccounts())
            for pos in ib.positions():
                print(f"  {pos.contract.localSymbol or pos.contract.symbol:24} {pos.position:>8}")
            [aapl] = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
            ticker = ib.reqMktData(aapl)
            while ticker.last != ticker.last:
                await ib.updateEvent
            print(f"AAPL bid {ticker.bid} ask {ticker.ask} last {ticker.last}")
            trade = ib.placeOrder(aapl, ib_async.MarketOrder("BUY", 10))
            while not trade.isDone():
                await trade.statusEvent
            fill = trade.fills[0]
            print(
                f"bought {fill.execution.shares:g} @ {fill.execution.price} "
                f"({trade.orderStatus.status})"
            )
            bars = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 hour", "TRADES", True)
            print(f"{len(bars)} hourly bars, last close {bars[-1].close}")
        finally:
            ib.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
