"""The inbound guard: a frame length over TWS's limit, or a frame that is not TWS's, is reported
as a corrupt stream right after the read that brought it, on either receive path.

Each test feeds one ``ib_async.IB`` bytes directly, as the socket would, with ibflow's fast
receive path installed and with ib_async's own handler.
"""

from __future__ import annotations

import struct

import pytest
from ib_async import IB, Stock
from ib_async.client import Client

from ibflow._ib._fastpath import install_fast_receive, is_fast_receive
from ibflow._ib._inbound import MAX_FRAME, corrupt_reason, install_inbound_guard

REQ_ID = 7


def frame(*fields: object) -> bytes:
    payload = b"".join(str(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


START = frame(178, "20260105 09:30:00 US/Eastern") + frame(15, 1, "DU1234567") + frame(9, 1, 42)


def bid(value: str) -> bytes:
    return frame(1, 6, REQ_ID, 1, value, 100, 0)


class _NoSend:
    def write(self, data: bytes) -> None:
        pass

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        pass


class Link:
    """One client with the guard installed as the adapter does, fed bytes chunk by chunk."""

    def __init__(self, *, fast: bool) -> None:
        self.ib = ib = IB()
        client = ib.client
        client.connState = Client.CONNECTING
        client.conn.transport = _NoSend()
        if fast:
            assert install_fast_receive(client)
        assert is_fast_receive(client) is fast
        self.reasons: list[str] = []
        install_inbound_guard(client, self.reasons.append)
        self.ticker = ib.wrapper.startTicker(
            REQ_ID, Stock("AAPL", "SMART", "USD", conId=REQ_ID), "mktData"
        )
        self.feed(START)
        assert client.isReady()

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.ib.client.conn.hasData.emit(chunk)


@pytest.fixture(params=[True, False], ids=["fast", "ib_async"])
async def link(request: pytest.FixtureRequest) -> Link:
    # Built inside the test's event loop: ib_async would otherwise make (and leak) one.
    return Link(fast=bool(request.param))


async def test_an_oversized_length_is_reported_after_the_frames_before_it(link: Link) -> None:
    huge = struct.pack(">I", 2**31 - 1)
    link.feed(bid("10.00") + bid("10.01") + huge + b"1\x00" + b"x" * 1000)
    assert link.ticker.bid == 10.01
    [reason] = link.reasons
    assert "2147483647" in reason
    assert str(MAX_FRAME) in reason
    # Only what that one read brought is buffered.
    assert len(link.ib.client._data) == 4 + 2 + 1000


async def test_an_oversized_length_alone_in_a_read_is_reported(link: Link) -> None:
    link.feed(bid("10.00"), struct.pack(">I", MAX_FRAME + 1))
    assert len(link.reasons) == 1
    assert link.ticker.bid == 10.00


async def test_a_frame_that_does_not_start_with_a_message_id_is_reported(link: Link) -> None:
    link.feed(bid("10.00") + struct.pack(">I", 300) + b"\xff\xfejunk")
    [reason] = link.reasons
    assert "not a message id" in reason


async def test_long_frames_across_many_reads_are_not_reported(link: Link) -> None:
    # A year of bars or a long contract-details list: one frame far larger than any read.
    long_text = frame(46, 6, REQ_ID, 45, "1" * 3_000_000)
    data = bid("10.00") + long_text + bid("10.02")
    link.feed(*(data[pos : pos + 65536] for pos in range(0, len(data), 65536)))
    assert link.reasons == []
    assert link.ticker.bid == 10.02
    assert link.ib.client._data == b""


def test_the_limit_is_tws_own() -> None:
    assert MAX_FRAME == 16 * 1024 * 1024 - 1
    assert corrupt_reason(struct.pack(">I", MAX_FRAME)) == ""
    assert corrupt_reason(struct.pack(">I", MAX_FRAME) + b"12\x00") == ""
    assert corrupt_reason(struct.pack(">I", MAX_FRAME + 1))
    assert corrupt_reason(b"\xff\xff\xff") == ""  # a length not yet complete
    assert corrupt_reason(b"") == ""
