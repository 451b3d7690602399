"""A Session belongs to the loop that connected it: calls from another loop fail at once."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import session_for


def _in_another_loop(make: object) -> tuple[BaseException | None, float]:
    """Run ``make()`` (a coroutine factory) in a fresh loop on another thread."""
    outcome: list[tuple[BaseException | None, float]] = []

    def run() -> None:
        async def main() -> None:
            started = time.monotonic()
            try:
                await make()  # type: ignore[operator]
            except BaseException as exc:
                outcome.append((exc, time.monotonic() - started))
            else:
                outcome.append((None, time.monotonic() - started))

        asyncio.run(main())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return outcome[0]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.positions(),
        lambda s: s.current_time(),
        lambda s: s.qualify(ibflow.Stock("AAPL")),
        lambda s: s.history(ibflow.Stock("AAPL"), period="1d", duration="5 D"),
        lambda s: s.place(ibflow.Stock("AAPL"), ibflow.MarketOrder("BUY", 1)),
        lambda s: anext(aiter(s.quotes(ibflow.Stock("AAPL")))),
    ],
    ids=["positions", "current_time", "qualify", "history", "place", "quotes"],
)
async def test_a_call_from_another_loop_raises_invalid_request_at_once(
    ib_sim: Simulator, call: object
) -> None:
    async with session_for(ib_sim, timeout=5.0) as session:
        error, took = await asyncio.to_thread(
            _in_another_loop,
            lambda: call(session),  # type: ignore[operator]
        )
        assert isinstance(error, ibflow.InvalidRequest), error
        assert "another event loop" in str(error)
        assert took < 1.0
        assert ib_sim.request_count("place_order") == 0
        # The session is untouched and still works from its own loop.
        assert await session.current_time()
