"""Client ids: automatic ones in range, never 0, never repeated; named ones stable."""

from __future__ import annotations

import threading

import pytest

import ibflow
from ibflow._client_ids import MAX_CLIENT_ID
from ibflow.sim import Simulator
from ibflow.testing import session_for


def test_ids_are_in_range_and_never_zero() -> None:
    ids = [ibflow.new_client_id() for _ in range(2000)]
    assert all(1 <= i <= MAX_CLIENT_ID for i in ids)
    assert MAX_CLIENT_ID == 2**31 - 1


def test_ids_do_not_repeat_within_one_millisecond() -> None:
    ids = [ibflow.new_client_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)


def test_ids_are_unique_across_threads() -> None:
    found: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        mine = [ibflow.new_client_id() for _ in range(500)]
        with lock:
            found.extend(mine)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 2000


def test_a_session_without_client_id_gets_a_fresh_one() -> None:
    a, b = ibflow.Session(), ibflow.Session()
    assert a.client_id != b.client_id
    assert a.client_id > 0


def test_client_id_for_is_stable_in_range_and_never_zero() -> None:
    ids = {ibflow.client_id_for(f"bot-{n}") for n in range(2000)}
    assert len(ids) == 2000
    assert all(1 <= i <= MAX_CLIENT_ID for i in ids)
    assert ibflow.client_id_for("my-bot") == ibflow.client_id_for("my-bot")
    # Derived from the name alone: the same in every process, on every machine.
    assert ibflow.client_id_for("my-bot") == 2106195386


@pytest.mark.parametrize("name", ["", "   ", "bot\x00", "bot\n", 7, None])
def test_client_id_for_refuses_unusable_names(name: object) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="client_id_for"):
        ibflow.client_id_for(name)  # type: ignore[arg-type]


async def test_a_bot_with_a_named_id_owns_its_orders_after_a_restart(ib_sim: Simulator) -> None:
    bot_id = ibflow.client_id_for("restarting-bot")
    async with session_for(ib_sim, client_id=bot_id) as first:
        trade = await first.place(ibflow.Stock("AAPL"), ibflow.LimitOrder("BUY", 1, 1.00))
        order_id = trade.order_id
    async with session_for(ib_sim, client_id=bot_id) as second:
        assert second.client_id == bot_id
        [row] = [o for o in await second.open_orders() if o.order_id == order_id]
        assert row.client_id == bot_id
