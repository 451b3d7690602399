"""Automatic client ids: in range, never 0, never repeated in one process."""

from __future__ import annotations

import threading

import ibflow
from ibflow._client_ids import MAX_CLIENT_ID


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
