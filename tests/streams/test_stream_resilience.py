"""A reconnect never ends a stream: drops during re-subscription, pacing after a reconnect."""

from __future__ import annotations

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .helpers import AAPL, Collector, lines


async def test_a_drop_while_re_subscribing_does_not_end_the_streams(
    session: ibflow.Session, sim: Simulator
) -> None:
    """The link drops while the order book re-reads executions after a 1101: streams resume."""
    # The order book re-reads first: the quote stream is re-issued after it.
    async with session.fills_stream() as _fills, session.quotes(AAPL) as quotes:
        seen = Collector(quotes)
        await seen.wait(lambda c: c.items)
        executions = sim.request_count("executions")
        sim.ignore("executions")  # the re-read after 1101 hangs until the link drops
        sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
        sim.notice(1101, "Connectivity between IB and TWS has been restored - data lost.")
        await eventually(lambda: sim.request_count("executions") > executions)
        sim.ignore("executions", False)
        sim.drop_connections()
        await seen.wait(lambda c: len(c.after_gap()) >= 3)
        assert session.state is ibflow.ConnectionState.READY
        assert len(seen.gaps()) == 1
        assert all(isinstance(q, ibflow.Quote) for q in seen.after_gap())
        assert lines(sim) == 1
        await seen.stop()
