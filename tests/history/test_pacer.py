"""The pacer's rules at their exact boundaries, on a fake clock (no waiting)."""

from __future__ import annotations

import asyncio
import math

import pytest

import ibflow
from ibflow._pacer import HistKey, Pacer, PacerCore, PacingDelay, PacingRules


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def core(**kwargs: object) -> tuple[PacerCore, Clock]:
    kwargs.setdefault("margin", 0.0)
    clock = Clock()
    return PacerCore(PacingRules(**kwargs), clock), clock  # type: ignore[arg-type]


def key(con_id: int = 1, what: str = "TRADES", end: str = "", **kwargs: object) -> HistKey:
    return HistKey(con_id=con_id, exchange="SMART", what=what, end=end, **kwargs)  # type: ignore[arg-type]


def test_identical_request_waits_exactly_15_seconds() -> None:
    pacer, clock = core()
    pacer.admit(key(end="a"))
    clock.t += 14.999
    assert pacer.delay(key(end="a")) == pytest.approx(0.001)
    assert pacer.delay(key(end="b")) == 0.0
    clock.t += 0.001
    assert pacer.delay(key(end="a")) == 0.0


def test_fewer_than_six_per_contract_and_type_in_two_seconds() -> None:
    pacer, clock = core()
    for i in range(5):
        assert pacer.delay(key(end=str(i))) == 0.0
        pacer.admit(key(end=str(i)))
    assert pacer.delay(key(end="6th")) == 2.0  # a sixth would be a violation
    assert pacer.delay(key(con_id=2, end="6th")) == 0.0  # another contract
    assert pacer.delay(key(what="MIDPOINT", end="6th")) == 0.0  # another type
    clock.t += 1.999
    assert pacer.delay(key(end="6th")) == pytest.approx(0.001)
    clock.t += 0.001
    assert pacer.delay(key(end="6th")) == 0.0


def test_sixty_per_rolling_ten_minutes() -> None:
    pacer, clock = core()
    for i in range(60):
        # Different contracts, answered at once: only the 10-minute rule binds.
        pacer.release(pacer.admit(key(con_id=i, end="x")))
        clock.t += 5.0
    # The first request (at t0) leaves the window at t0 + 600; we are at t0 + 300.
    assert pacer.delay(key(con_id=999)) == pytest.approx(300.0)
    clock.t += 299.999
    assert pacer.delay(key(con_id=999)) > 0
    clock.t += 0.001
    assert pacer.delay(key(con_id=999)) == 0.0
    pacer.admit(key(con_id=999))
    # The next slot opens when the second request leaves the window (5 s later).
    assert pacer.delay(key(con_id=1000)) == pytest.approx(5.0)


def test_bid_ask_counts_double() -> None:
    pacer, clock = core()
    pacer.admit(key(what="BID_ASK", end="1"))
    pacer.admit(key(what="BID_ASK", end="2"))
    assert pacer.delay(key(what="BID_ASK", end="3")) == 2.0  # 4 + 2 > 5
    clock.t += 2.0
    for i in range(28):
        pacer.admit(key(con_id=100 + i, what="BID_ASK"))
    assert pacer.weight == 60
    assert pacer.delay(key(con_id=500)) == pytest.approx(598.0)


def test_open_requests_cap_and_release() -> None:
    pacer, _ = core(max_open=2)
    first = pacer.admit(key(con_id=1))
    pacer.admit(key(con_id=2))
    assert math.isinf(pacer.delay(key(con_id=3)))
    pacer.release(first)
    pacer.release(first)  # idempotent
    assert pacer.open_requests == 1
    assert pacer.delay(key(con_id=3)) == 0.0


def test_time_scale_and_margin() -> None:
    pacer, clock = core(time_scale=100.0, margin=0.01)
    pacer.admit(key(end="a"))
    assert pacer.delay(key(end="a")) == pytest.approx(0.16)  # 15 s / 100 + margin
    clock.t += 0.16
    assert pacer.delay(key(end="a")) == 0.0


def test_bars_over_30_s_skip_the_identical_and_burst_rules_but_keep_the_period_limit() -> None:
    pacer, _ = core()  # small_bars_only is the default, as IB documents
    for _ in range(10):
        pacer.admit(key(bar_seconds=60))
    assert pacer.delay(key(bar_seconds=60)) == 0.0  # no identical-request or burst wait
    assert pacer.weight == 10  # the softer throttle still counts them
    for _ in range(6):
        pacer.admit(key(bar_seconds=30))
    assert pacer.delay(key(bar_seconds=30)) > 0  # 30-second bars: the burst rule holds


def test_strict_rules_pace_every_bar_size() -> None:
    pacer, _ = core(small_bars_only=False)
    pacer.admit(key(bar_seconds=3600))
    assert pacer.delay(key(bar_seconds=3600)) > 0  # identical request


def test_a_violation_holds_everything_back() -> None:
    pacer, clock = core()
    assert pacer.retry_after(key()) == 15.0  # never less than the identical window
    pacer.violation(4.0)
    assert pacer.violations == 1
    assert pacer.explain(key(con_id=7)) == (4.0, "backing off after IB error")
    clock.t += 4.0
    assert pacer.delay(key(con_id=7)) == 0.0


def test_tick_by_tick_one_per_instrument_per_15_seconds() -> None:
    pacer, clock = core()
    pacer.admit_tick_by_tick(42)
    assert pacer.tick_by_tick_delay(42) == 15.0
    assert pacer.tick_by_tick_delay(43) == 0.0
    clock.t += 15.0
    assert pacer.tick_by_tick_delay(42) == 0.0


def test_explain_names_the_rule() -> None:
    pacer, _ = core()
    for i in range(5):
        pacer.admit(key(end=str(i)))
    wait, rule = pacer.explain(key(end="x"))
    assert wait == 2.0
    assert "5 requests per contract and type per 2 s" in rule


@pytest.mark.parametrize(
    "bad",
    [
        {"max_open": 0},
        {"burst_limit": 1.5},
        {"time_scale": 0},
        {"margin": -1},
        {"period_window": math.inf},
        {"bid_ask_weight": 9},
        {"small_bars_only": "yes"},
    ],
)
def test_rules_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ibflow.InvalidRequest):
        PacingRules(**bad)  # type: ignore[arg-type]


# -- the asyncio face -----------------------------------------------------------------------------


async def test_a_wait_past_the_deadline_raises_at_once() -> None:
    clock = Clock()
    pacer = Pacer(PacingRules(margin=0.0), now=clock)
    async with pacer.historical(key(end="a")):
        pass
    with pytest.raises(PacingDelay) as info:
        await pacer.acquire(key(end="a"), deadline=clock.t + 10.0)
    assert info.value.retry_after == 15.0
    assert info.value.rule == "identical request"
    assert pacer.core.admitted == 1  # nothing recorded for the refused one


async def test_waiters_are_served_in_order_and_released_slots_wake_them() -> None:
    pacer = Pacer(PacingRules(max_open=1, margin=0.0, time_scale=1e6))
    order: list[int] = []
    first = await pacer.acquire(key(con_id=0))

    async def take(n: int) -> None:
        ticket = await pacer.acquire(key(con_id=n))
        order.append(n)
        pacer.release(ticket)

    tasks = [asyncio.create_task(take(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0.01)
    assert order == []  # all blocked on the open cap
    pacer.release(first)
    await asyncio.gather(*tasks)
    assert order == [1, 2, 3]
    assert pacer.statistics().waits == 3


async def test_open_cap_wait_respects_the_deadline() -> None:
    pacer = Pacer(PacingRules(max_open=1))
    await pacer.acquire(key(con_id=0))
    with pytest.raises(PacingDelay):
        await pacer.acquire(key(con_id=1), deadline=pacer.core.now() + 0.05)


async def test_tick_by_tick_and_contract_lookups() -> None:
    pacer = Pacer(PacingRules(margin=0.0, time_scale=1000.0))
    await pacer.tick_by_tick(5)
    await pacer.tick_by_tick(5)  # waited 15 ms
    assert pacer.core.tick_by_tick_admitted == 2
    with pytest.raises(PacingDelay):
        await pacer.tick_by_tick(5, deadline=pacer.core.now())
    inside = 0
    most = 0

    async def lookup() -> None:
        nonlocal inside, most
        async with pacer.contract_lookup():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(lookup() for _ in range(5)))
    assert most == 1
    assert pacer.statistics().contract_lookups == 5


def test_one_pacer_per_session() -> None:
    a, b = ibflow.Session(port=1), ibflow.Session(port=1)
    assert a._core.pacer is a._core.pacer
    assert a._core.pacer is not b._core.pacer


def test_statistics_report_the_allowed_rate() -> None:
    stats = Pacer(PacingRules(time_scale=100.0)).statistics()
    assert stats.allowed_per_second == pytest.approx(10.0)  # 60 per 6 s
