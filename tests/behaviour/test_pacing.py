"""Pacing statistics: a session's own pacer, or the hub's one pacer that every remote shares."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import ibflow
from ibflow.testing import eventually

AAPL = ibflow.Stock("AAPL")
WEDNESDAY = datetime(2024, 3, 6, 15, 0, tzinfo=ZoneInfo("America/New_York"))


async def test_pacing_statistics_count_history_requests(api: ibflow.SessionLike) -> None:
    before = api.pacing_statistics()
    assert isinstance(before, ibflow.PacingStatistics)
    await api.history(AAPL, period="1h", duration="1 D", end=WEDNESDAY)
    # A remote's copy comes with the hub's heartbeat: a moment later, not at once.
    await eventually(
        lambda: api.pacing_statistics().historical_requests > before.historical_requests,
        timeout=3.0,
    )
    after = api.pacing_statistics()
    assert after.rules == before.rules
    assert after.last_request_at is not None
