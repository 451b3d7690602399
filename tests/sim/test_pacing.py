"""TWS's request limits, each at its exact boundary, on a fake clock (ibflow.sim._pacing)."""

from __future__ import annotations

import pytest

from ibflow.sim._history import HistKey
from ibflow.sim._model import SimError
from ibflow.sim._pacing import HistoricalPacing, MessageRate, TickByTickPacing

PACING_TEXT = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def key(con_id: int = 265598, what: str = "TRADES", end: str = "", bar_seconds: int = 0) -> HistKey:
    return HistKey(con_id, "SMART", what, end, "1 D", "1 min", True, bar_seconds)


def admitted(pacing: HistoricalPacing, k: HistKey) -> int:
    token, err = pacing.admit(k)
    assert err is None, err
    assert token is not None
    return token


def refused(pacing: HistoricalPacing, k: HistKey, code: int = 162) -> SimError:
    token, err = pacing.admit(k)
    assert token is None
    assert err is not None
    assert err.code == code
    return err


# -- 50 messages per second --------------------------------------------------------------------


def test_fifty_messages_per_second_then_error_100() -> None:
    clock = Clock()
    rate = MessageRate(now=clock)
    assert all(rate.on_message() == "ok" for _ in range(50))
    clock.t += 0.999
    assert rate.on_message() == "violation"
    clock.t += 0.001  # the first 50 are now a full second old
    assert rate.on_message() == "ok"


def test_the_window_rolls() -> None:
    clock = Clock()
    rate = MessageRate(now=clock)
    for _ in range(25):
        assert rate.on_message() == "ok"
    clock.t += 0.5
    for _ in range(25):
        assert rate.on_message() == "ok"
    assert rate.on_message() == "violation"
    clock.t += 0.5  # the first 25 expire, the last 25 stay
    assert all(rate.on_message() == "ok" for _ in range(25))
    assert rate.on_message() == "dropped"  # within a second of the last error 100: same episode


def test_third_violating_second_within_ten_seconds_disconnects() -> None:
    clock = Clock()
    rate = MessageRate(now=clock)
    verdicts = []
    for second in range(3):
        clock.t = 1000.0 + 2 * second
        verdicts.append([rate.on_message() for _ in range(60)])
    assert verdicts[0][:50] == ["ok"] * 50
    assert verdicts[0][50] == "violation"
    assert set(verdicts[0][51:]) == {"dropped"}  # a burst is answered and counted once
    assert verdicts[1][50] == "violation"
    assert set(verdicts[1][51:]) == {"dropped"}
    assert verdicts[2][50] == "disconnect"


def test_violations_far_apart_never_disconnect() -> None:
    clock = Clock()
    rate = MessageRate(now=clock)
    for episode in range(6):
        clock.t = 1000.0 + 5.1 * episode  # at most two episodes in any ten seconds
        results = [rate.on_message() for _ in range(51)]
        assert results[-1] == "violation"


def test_message_rate_speed_and_switch() -> None:
    clock = Clock()
    fast = MessageRate(now=clock, speed=10)
    for _ in range(50):
        fast.on_message()
    assert fast.on_message() == "violation"
    clock.t += 0.1
    assert fast.on_message() == "ok"
    off = MessageRate(now=clock, enabled=False)
    assert {off.on_message() for _ in range(500)} == {"ok"}
    with pytest.raises(ValueError, match="speed"):
        MessageRate(speed=0)


# -- historical pacing -------------------------------------------------------------------------


def test_identical_request_within_15_seconds_is_a_pacing_violation() -> None:
    clock = Clock()
    pacing = HistoricalPacing(now=clock)
    admitted(pacing, key())
    clock.t += 14.9
    assert refused(pacing, key()).text == PACING_TEXT
    clock.t += 0.2  # 15.1 s after the first; the refused one did not count
    admitted(pacing, key())


def test_requests_that_differ_anywhere_are_not_identical() -> None:
    pacing = HistoricalPacing(now=Clock())
    admitted(pacing, key())
    admitted(pacing, key(end="20240105 16:00:00 US/Eastern"))
    admitted(pacing, key(what="BID"))
    admitted(pacing, key(con_id=272093))


def test_sixth_request_for_one_contract_and_type_within_2_seconds_is_refused() -> None:
    clock = Clock()
    pacing = HistoricalPacing(now=clock)
    for i in range(5):
        admitted(pacing, key(end=f"2024010{i + 1} 16:00:00"))
        clock.t += 0.3
    assert clock.t - 1000.0 == pytest.approx(1.5)
    refused(pacing, key(end="20240106 16:00:00"))
    admitted(pacing, key(what="MIDPOINT"))  # another whatToShow is another group
    admitted(pacing, key(con_id=272093))
    clock.t = 1000.0 + 2.0  # the first request leaves the window
    admitted(pacing, key(end="20240107 16:00:00"))
    refused(pacing, key(end="20240108 16:00:00"))


def test_bid_ask_counts_twice() -> None:
    clock = Clock()
    pacing = HistoricalPacing(now=clock)
    admitted(pacing, key(what="BID_ASK", end="1"))
    admitted(pacing, key(what="BID_ASK", end="2"))
    refused(pacing, key(what="BID_ASK", end="3"))  # 2 + 2 + 2 = 6
    clock.t += 3
    for i in range(28):
        clock.t += 2.1
        admitted(pacing, key(what="BID_ASK", end=f"x{i}"))
    clock.t += 2.1
    refused(pacing, key(what="BID_ASK", end="y"))  # 30 BID_ASK weigh 60 in ten minutes
    refused(pacing, key(what="TRADES", con_id=1))  # and leave no room for anything else


def test_sixty_requests_per_ten_minutes() -> None:
    clock = Clock()
    pacing = HistoricalPacing(now=clock)
    for i in range(60):
        token = admitted(pacing, key(con_id=i))
        pacing.finished(token)
        clock.t += 1
    refused(pacing, key(con_id=1000))
    clock.t = 1000.0 + 599.9
    refused(pacing, key(con_id=1000))
    clock.t = 1000.0 + 600.0  # the first leaves the ten-minute window
    admitted(pacing, key(con_id=1000))
    refused(pacing, key(con_id=1001))


def test_fifty_open_requests() -> None:
    clock = Clock()
    pacing = HistoricalPacing(now=clock)
    tokens = []
    for i in range(50):
        tokens.append(admitted(pacing, key(con_id=i)))
        clock.t += 2.5
    assert pacing.open_requests == 50
    err = refused(pacing, key(con_id=100), code=322)
    assert err.text.endswith("Only 50 simultaneous API historical data requests allowed.")
    pacing.finished(tokens[0])
    pacing.finished(tokens[0])  # idempotent
    assert pacing.open_requests == 49
    admitted(pacing, key(con_id=100))


def test_speed_shrinks_every_window() -> None:
    clock = Clock()
    pacing = HistoricalPacing(now=clock, speed=100)
    admitted(pacing, key())
    clock.t += 0.149
    refused(pacing, key())
    clock.t += 0.002
    admitted(pacing, key())
    for i in range(58):
        pacing.finished(admitted(pacing, key(con_id=i)))
        clock.t += 0.021
    refused(pacing, key(con_id=999))  # 60 in 6 s at speed 100
    clock.t = 1000.0 + 6.0
    admitted(pacing, key(con_id=999))


def test_pacing_can_spare_minute_bars_or_be_off() -> None:
    lenient = HistoricalPacing(now=Clock(), small_bars_only=True)
    for _ in range(10):
        admitted(lenient, key(bar_seconds=60))  # identical, but one-minute bars: not paced
    admitted(lenient, key(bar_seconds=30))
    refused(lenient, key(bar_seconds=30))  # 30-second bars still are
    off = HistoricalPacing(now=Clock(), enabled=False)
    tokens = [admitted(off, key()) for _ in range(100)]
    assert len(set(tokens)) == 100


# -- tick-by-tick ------------------------------------------------------------------------------


def test_one_tick_by_tick_request_per_instrument_per_15_seconds() -> None:
    clock = Clock()
    tbt = TickByTickPacing(now=clock)
    assert tbt.admit(265598) is None
    assert tbt.admit(272093) is None
    clock.t += 14.9
    err = tbt.admit(265598)
    assert err is not None
    assert (err.code, err.text) == (10190, "Max number of tick-by-tick requests has been reached.")
    clock.t += 0.1
    assert tbt.admit(265598) is None


def test_tick_by_tick_speed_and_switch() -> None:
    clock = Clock()
    tbt = TickByTickPacing(now=clock, speed=15)
    assert tbt.admit(1) is None
    clock.t += 0.99
    assert tbt.admit(1) is not None
    clock.t += 0.01
    assert tbt.admit(1) is None
    off = TickByTickPacing(now=clock, enabled=False)
    assert off.admit(1) is None
    assert off.admit(1) is None
