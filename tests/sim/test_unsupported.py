"""Every request of the API gets an answer: simulated, or error 322 naming it, within a second."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re

import ib_async
import ib_async.client
import pytest
from ib_async import Stock

from ibflow.sim import Simulator
from ibflow.sim._codec import API_PREFIX, FrameDecoder, encode_fields, encode_raw
from ibflow.sim._handlers import HANDLERS
from ibflow.sim._handlers.unsupported import UNSUPPORTED
from ibflow.sim._ids import REQ_ID_FIELD, Req

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


def _ids_ib_async_sends() -> set[int]:
    """The message ids ib_async's client writes: the first field of each request it builds."""
    source = inspect.getsource(ib_async.client.Client)
    return {int(m) for m in re.findall(r"(?:self\.send\(|fields = \[)\s*(\d+)\s*,?", source)}


def test_every_request_of_the_api_has_a_handler() -> None:
    sent = _ids_ib_async_sends()
    assert sent == {int(r) for r in Req}  # 80 requests, startApi among them
    assert set(HANDLERS) == set(Req) - {Req.START_API}
    assert not set(UNSUPPORTED) & {Req.START_API}


class RawClient:
    """A bare API client on a socket: handshake, startApi, then frames in and out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder()
        self.pending: list[list[str]] = []

    @classmethod
    async def connect(cls, sim: Simulator) -> RawClient:
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        client = cls(reader, writer)
        writer.write(API_PREFIX + encode_raw(b"v157..178"))
        await client.next_frame()  # server version and time
        client.send([71, 2, 9, ""])
        while (await client.next_frame())[:4] != ["4", "2", "-1", "2158"]:
            pass  # managed accounts, next valid id, farm notices
        return client

    def send(self, fields: list[object]) -> None:
        self.writer.write(encode_fields(fields))

    async def next_frame(self) -> list[str]:
        """The next frame from the simulator; fails the test if none comes within a second."""
        async with asyncio.timeout(1.0):
            while not self.pending:
                data = await self.reader.read(65536)
                assert data, "the simulator closed the connection"
                self.pending += self.decoder.feed(data)
        return self.pending.pop(0)

    def close(self) -> None:
        self.writer.close()


@pytest.mark.parametrize("req", sorted(UNSUPPORTED), ids=lambda r: UNSUPPORTED[r])
async def test_each_unsupported_request_gets_error_322_at_once(ib_sim: Simulator, req: Req) -> None:
    client = await RawClient.connect(ib_sim)
    try:
        req_id = 4242
        pos = REQ_ID_FIELD.get(req)
        fields: list[object] = [int(req), *["1"] * 12]
        if pos is not None:
            fields[pos] = req_id
        client.send(fields)
        frame = await client.next_frame()
        assert frame[:4] == ["4", "2", str(req_id if pos is not None else -1), "322"]
        assert UNSUPPORTED[req] in frame[4]
        assert "not supported by the simulator" in frame[4]
    finally:
        client.close()


async def test_a_message_id_that_is_no_request_is_answered_too(ib_sim: Simulator) -> None:
    client = await RawClient.connect(ib_sim)
    try:
        client.send([999, 1, 7])
        frame = await client.next_frame()
        assert frame[:4] == ["4", "2", "-1", "322"]
        assert "message id 999" in frame[4]
    finally:
        client.close()


async def test_requests_tws_takes_without_an_answer_get_none(ib_sim: Simulator) -> None:
    client = await RawClient.connect(ib_sim)
    try:
        client.send([int(Req.SET_SERVER_LOGLEVEL), 1, 3])
        client.send([int(Req.CANCEL_HEAD_TIMESTAMP), 77])
        client.send([int(Req.CURRENT_TIME), 1])
        frame = await client.next_frame()
        assert frame[0] == "49"  # currentTime: nothing came before it
    finally:
        client.close()


async def test_ib_async_gets_unsupported_requests_refused_within_a_second(
    ib: ib_async.IB, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *_: errors.append((req_id, code, text))
    with caplog.at_level(logging.WARNING, logger="ibflow.sim"):
        async with asyncio.timeout(1.0):
            report = await ib.reqFundamentalDataAsync(AAPL, "ReportSnapshot")
        assert not report
        [(req_id, code, text)] = errors
        assert req_id > 0
        assert code == 322
        assert "reqFundamentalData is not supported by the simulator" in text

        ib.reqNewsBulletins(allMessages=True)  # carries no request id: the error goes to -1
        async with asyncio.timeout(1.0):
            while len(errors) < 2:
                await asyncio.sleep(0.01)
        assert errors[1][:2] == (-1, 322)
        assert "reqNewsBulletins" in errors[1][2]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("reqFundamentalData is not supported" in m for m in warned)
    assert any("reqNewsBulletins is not supported" in m for m in warned)
