"""The order journal: intents before the send, acknowledgements and fills after, read back on
connect and reconciled with TWS; a damaged file never crashes a start silently."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderStatus
from ibflow.sim import Scenario, Simulator
from ibflow.testing import eventually, session_for

from .conftest import AAPL, journal_rows


async def test_the_intent_is_committed_before_the_frame_leaves(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    sim.ignore("place_order")  # the order never reaches the broker: no ack can come
    task = asyncio.create_task(session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="k1"))
    await eventually(lambda: sim.request_count("place_order") == 1)
    # Another reader sees the committed intent while place() still waits.
    [(key, client_id, order_id)] = journal_rows(
        path, "SELECT key, client_id, order_id FROM intents"
    )
    assert (key, client_id) == ("k1", 1)
    [(_, _, fields)] = [r for r in sim.requests if r[1] == "place_order"]
    assert int(fields[1]) == order_id
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert journal_rows(path, "PRAGMA journal_mode") == [("wal",)]


async def test_acks_statuses_and_fills_are_journaled_once(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    trade = await session.place(AAPL, MarketOrder("BUY", 5), key="m1")
    await trade.wait_filled(timeout=5)
    await eventually(
        lambda: bool(journal_rows(path, "SELECT 1 FROM events WHERE kind = 'settled'"))
    )
    [(perm,)] = journal_rows(
        path, "SELECT json_extract(data, '$.perm_id') FROM events WHERE kind='ack'"
    )
    assert perm == trade.perm_id
    statuses = [r[0] for r in journal_rows(path, "SELECT data FROM events WHERE kind = 'status'")]
    assert any("Filled" in str(s) for s in statuses)
    exec_ids = sorted(str(r[0]) for r in journal_rows(path, "SELECT exec_id FROM fills"))
    assert exec_ids == sorted(f.exec_id for f in trade.fills)
    await session.aclose()
    # A new session with the same journal: the key is known, its fills once each.
    again = make_session(journal=path)
    await again.connect()
    found = await again.place(AAPL, MarketOrder("BUY", 5), key="m1")
    assert sim.request_count("place_order") == 1
    assert found.status is OrderStatus.FILLED
    assert sorted(f.exec_id for f in found.fills) == exec_ids


async def test_fills_made_while_down_are_delivered_and_journaled_once(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    trade = await session.place(AAPL, LimitOrder("BUY", 4, 180.00), key="rest")
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    await session.aclose()
    sim.push_quote("AAPL", bid=179.90, ask=179.95, last=179.92)  # fills while no one listens
    await eventually(lambda: len(sim.fills) == 1)
    later = make_session(journal=path)
    await later.connect()
    [restored] = later.trades()
    assert restored.status is OrderStatus.FILLED
    assert [f.exec_id for f in restored.fills] == [sim.fills[0].exec_id]
    await eventually(
        lambda: bool(journal_rows(path, "SELECT 1 FROM events WHERE kind = 'settled'"))
    )
    await later.aclose()
    # The next start finds it settled in the journal: not followed again, known by its key.
    last = make_session(journal=path)
    await last.connect()
    assert last.trades() == ()
    found = await last.place(AAPL, LimitOrder("BUY", 4, 180.00), key="rest")
    assert found.status is OrderStatus.FILLED
    assert [f.exec_id for f in found.fills] == [sim.fills[0].exec_id]
    assert len(journal_rows(path, "SELECT exec_id FROM fills")) == 1
    assert sim.request_count("place_order") == 1


async def test_an_intent_tws_never_saw_is_reported_and_placed_once_on_request(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path, reconnect=None)
    await session.connect()
    sim.ignore("place_order")
    task = asyncio.create_task(session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="lost"))
    await eventually(lambda: sim.request_count("place_order") == 1)
    sim.drop_connections()  # the bot's link dies with the order unacknowledged
    with pytest.raises(ibflow.IBFlowError):
        await task
    sim.ignore("place_order", False)
    await session.aclose()
    assert sim.orders == []

    later = make_session(journal=path)
    await later.connect()
    [lost] = later.trades()
    assert lost.status is OrderStatus.LOST
    assert lost.lost_reason is not None
    assert "never reached TWS" in lost.lost_reason
    assert "key='lost'" in lost.lost_reason
    assert sim.request_count("place_order") == 1  # not re-sent by itself
    placed = await later.place(AAPL, LimitOrder("BUY", 1, 150.00), key="lost")
    assert placed is not lost
    assert placed.order_id != lost.order_id
    again = await later.place(AAPL, LimitOrder("BUY", 1, 150.00), key="lost")
    assert again is placed
    assert sim.request_count("place_order") == 2
    assert [o.order_ref for o in sim.orders] == ["lost"]


def crash_copy(path: Path, to: Path, cut: int) -> None:
    """The journal's files as ``kill -9`` leaves them, the WAL's last frame torn ``cut`` bytes
    short with garbage after it."""
    shutil.copyfile(path, to)
    wal = Path(f"{path}-wal").read_bytes()
    assert len(wal) > cut
    Path(f"{to}-wal").write_bytes(wal[:-cut] + b"\x37\x7f\x06\x82torn" * 20)


async def test_a_torn_or_foreign_record_is_skipped_with_a_warning(
    make_session: Callable[..., ibflow.Session],
    sim: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    trade = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="ok")
    await eventually(lambda: bool(journal_rows(path, "SELECT 1 FROM events WHERE kind = 'ack'")))
    # Half-written records: an intent whose order JSON is cut short, and a fill the same.
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO intents (key, client_id, order_id, parent_order_id, oca_group,"
            " oca_type, contract, spec, at) VALUES ('torn', 1, 999, NULL, '', 0,"
            " '{\"sec_type\":\"STK\"', '{\"side\":', '2026-01-01T00:00:00+00:00')"
        )
        db.execute("INSERT INTO fills VALUES ('0000.01', 1, '{\"exec_', 'x')")
    # The files as a crash leaves them (the session still holds the journal open).
    crashed = tmp_path / "crashed.db"
    crash_copy(path, crashed, cut=100)
    await session.aclose()
    caplog.set_level(logging.WARNING, logger="ibflow")
    for journal in (path, crashed):
        later = make_session(journal=journal)
        await later.connect()
        [restored] = later.trades()
        assert restored.order_id == trade.order_id
        assert restored.status is OrderStatus.SUBMITTED
        await later.aclose()
    assert "skipping intent" in caplog.text
    assert "skipping fill 0000.01" in caplog.text


async def test_a_file_that_is_not_a_journal_raises_a_config_error_naming_it(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not an sqlite file at all" * 200)
    session = make_session(journal=path)
    with pytest.raises(ibflow.ConfigError, match=r"broken\.db") as caught:
        await session.connect()
    assert caught.value.variable == "journal"


async def test_the_journal_setting_is_checked_and_read_from_the_environment(
    make_session: Callable[..., ibflow.Session],
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with pytest.raises(ibflow.ConfigError, match="journal"):
        ibflow.Session(journal=42)  # type: ignore[arg-type]
    with pytest.raises(ibflow.ConfigError, match="journal"):
        ibflow.Session(journal="  ")
    monkeypatch.setenv("IBFLOW_JOURNAL", str(tmp_path / "env.db"))
    session = make_session()
    await session.connect()
    await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="env")
    assert journal_rows(tmp_path / "env.db", "SELECT key FROM intents") == [("env",)]


async def test_a_rejected_order_is_reported_and_its_key_places_it_again(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    sim.fail_next("place_order", 201, "Order rejected - reason: not enough margin")
    with pytest.raises(ibflow.OrderRejected) as caught:
        await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="r1")
    assert caught.value.trade is not None
    await eventually(
        lambda: bool(journal_rows(path, "SELECT 1 FROM events WHERE kind = 'rejected'"))
    )
    await session.aclose()
    later = make_session(journal=path)
    await later.connect()
    [rejected] = later.trades()
    assert rejected.status is OrderStatus.LOST
    assert rejected.lost_reason is not None
    assert "rejected it before acknowledging it (201" in rejected.lost_reason
    placed = await later.place(AAPL, LimitOrder("BUY", 1, 150.00), key="r1")
    assert placed.status is not OrderStatus.LOST
    assert sim.request_count("place_order") == 2
    assert [o.order_ref for o in sim.orders] == ["r1"]


async def test_a_bracket_comes_back_whole_from_the_journal(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    spec = ibflow.bracket("BUY", 1, 150.00, 160.00, 140.00)
    session = make_session(journal=path)
    await session.connect()
    first = await session.place(AAPL, spec, key="b1")
    ids = [t.order_id for t in first]
    await session.aclose()
    later = make_session(journal=path)
    await later.connect()
    again = await later.place(AAPL, spec, key="b1")
    assert isinstance(again, ibflow.BracketTrade)
    assert [t.order_id for t in again] == ids
    assert again.take_profit.parent_id == ids[0]
    assert [t.status for t in again] == [t.status for t in first]
    assert sim.request_count("place_order") == 3
    # The restored legs are this client id's: they can be cancelled as before the restart.
    assert await again.parent.cancel() is OrderStatus.CANCELLED


async def test_one_journal_serves_one_running_session(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    first = make_session(journal=path)
    await first.connect()
    second = make_session(journal=path, client_id=2)
    with pytest.raises(ibflow.ConfigError, match="in use by another session") as caught:
        await second.connect()
    assert f"process {os.getpid()}" in str(caught.value)
    assert sim.clients == [c for c in sim.clients if c.client_id == 1]  # nothing connected
    await first.aclose()
    await second.connect()  # free once the first session closed
    await second.place(AAPL, LimitOrder("BUY", 1, 150.00), key="after")


async def test_an_order_tws_no_longer_reports_is_kept_once_then_let_go(
    make_session: Callable[..., ibflow.Session],
    sim: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    trade = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="old")
    await eventually(lambda: bool(journal_rows(path, "SELECT 1 FROM events WHERE kind = 'ack'")))
    await session.aclose()
    # The next day: a gateway that knows nothing of yesterday's order.
    caplog.set_level(logging.WARNING, logger="ibflow")
    async with Simulator(port=0) as fresh:
        fresh.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        kept = []
        for _ in range(2):
            async with ibflow.Session(
                fresh.host, fresh.port, client_id=1, journal=path, heartbeat_interval=None
            ) as later:
                kept.append([(t.order_id, t.status) for t in later.trades()])
        # Its last known state once, with a warning; the next start no longer brings it back.
        assert kept == [[(trade.order_id, OrderStatus.SUBMITTED)], []]
        assert fresh.request_count("place_order") == 0
    assert f"TWS no longer reports order {trade.order_id}" in caplog.text


async def test_streams_get_only_the_fills_made_while_down_not_the_journaled_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.db"
    clipped = dataclasses.replace(Scenario.default(), tick_interval=1e6, fill_clip=1)
    async with Simulator(port=0, scenario=clipped) as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        async with session_for(sim, journal=path) as session:
            trade = await session.place(AAPL, MarketOrder("BUY", 3), key="clip")
            await eventually(lambda: len(journal_rows(path, "SELECT 1 FROM fills")) == 1)
            assert trade.filled == 1
        for ask in (190.03, 190.04):  # two more clips while the bot is down
            sim.push_quote("AAPL", bid=190.01, ask=ask, last=190.02)
        await eventually(lambda: len(sim.fills) == 3)
        later = session_for(sim, journal=path)
        fills = later.fills_stream()  # open before connecting: it sees the reconciliation
        async with later:
            [restored] = later.trades()
            assert restored.status is OrderStatus.FILLED
            assert sorted(f.exec_id for f in restored.fills) == sorted(f.exec_id for f in sim.fills)
            new = {(await fills.receive()).exec_id for _ in range(2)}
            assert new == {f.exec_id for f in sim.fills[1:]}
            await eventually(
                lambda: (
                    restored.commission is not None
                    and all(f.commission is not None for f in restored.fills)
                )
            )
            with pytest.raises(ibflow.WouldBlock):
                fills.receive_nowait()
        assert len(journal_rows(path, "SELECT 1 FROM fills")) == 3


async def test_a_fill_during_a_reconnect_is_journaled_once(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    trade = await session.place(AAPL, LimitOrder("BUY", 2, 180.00), key="across")
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    feed = session.state_changes()
    sim.drop_connections()
    sim.push_quote("AAPL", bid=179.90, ask=179.95, last=179.92)  # fills while the link is down
    async with asyncio.timeout(10):
        async for change in feed:
            if change.current is ibflow.ConnectionState.READY:
                break
    await feed.aclose()
    await trade.wait_filled(timeout=5)
    await eventually(
        lambda: bool(journal_rows(path, "SELECT 1 FROM events WHERE kind = 'settled'"))
    )
    assert [r[0] for r in journal_rows(path, "SELECT exec_id FROM fills")] == [
        f.exec_id for f in sim.fills
    ]


async def test_a_restart_under_another_client_id_sees_its_orders_but_may_not_change_them(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path, client_id=1)
    await session.connect()
    trade = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="cid")
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    await session.aclose()
    later = make_session(journal=path, client_id=2)
    await later.connect()
    [restored] = later.trades()
    assert (restored.client_id, restored.order_id) == (1, trade.order_id)
    assert restored.status is OrderStatus.SUBMITTED
    assert await later.place(AAPL, LimitOrder("BUY", 1, 150.00), key="cid") is restored
    with pytest.raises(ibflow.NotOrderOwner, match="client id 1"):
        await restored.cancel()
    assert sim.request_count("place_order") == 1
