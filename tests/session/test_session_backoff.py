"""ReconnectPolicy: exponential ceilings, full jitter, validation."""

from __future__ import annotations

import random

import pytest

import ibflow


def test_ceilings_double_up_to_the_maximum() -> None:
    policy = ibflow.ReconnectPolicy(initial=0.5, maximum=4.0)
    assert [policy.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.ceiling(10_000) == 4.0  # no overflow on long outages


def test_delays_are_full_jitter_within_the_ceiling() -> None:
    policy = ibflow.ReconnectPolicy(initial=1.0, maximum=8.0)
    rng = random.Random(1)
    for attempt in range(8):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= policy.ceiling(attempt) for d in delays)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(delays) < policy.ceiling(attempt) * 0.1
        assert max(delays) > policy.ceiling(attempt) * 0.9


def test_seeded_delays_are_reproducible() -> None:
    policy = ibflow.ReconnectPolicy()
    first = [policy.delay(n, random.Random(7)) for n in range(5)]
    again = [policy.delay(n, random.Random(7)) for n in range(5)]
    assert first == again


def test_defaults() -> None:
    policy = ibflow.ReconnectPolicy()
    assert (policy.initial, policy.maximum, policy.max_attempts) == (0.5, 30.0, None)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": -1.0}, "initial"),
        ({"maximum": float("inf")}, "maximum"),
        ({"initial": 2.0, "maximum": 1.0}, "must not be below"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
    ],
)
def test_bad_policies_are_rejected(kwargs: dict[str, float], fragment: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=fragment):
        ibflow.ReconnectPolicy(**kwargs)  # type: ignore[arg-type]
