"""Byte-level equivalence: the fast receive path decodes exactly what ib_async's own one does.

Two ``ib_async.IB`` objects get the same byte stream, cut into the same chunks; one parses with
ib_async's handler, the other with ibflow's. Everything observable is recorded in order (each
decoded frame, the data-arrived/processed hooks, apiStart/apiError, connectAck, later
``hasData`` listeners, pendingTickers snapshots, the bytes sent back, the debug log) together
with the counters and buffer left at the end, and the two records must be identical.

The tests are coroutines only so that ib_async's sends (startApi) find the running event loop
instead of creating one of their own that nobody closes.
"""

from __future__ import annotations

import gc
import logging
import random
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ib_async
import pytest
from ib_async import IB, Stock
from ib_async.client import Client

import ibflow._ib._fastpath as fastpath
from ibflow._ib._fastpath import (
    ENV_VAR,
    install_fast_receive,
    is_fast_receive,
    uninstall_fast_receive,
)

REQ_ID = 7


def frame(*fields: object) -> bytes:
    payload = b"".join((f if isinstance(f, bytes) else str(f).encode()) + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


HANDSHAKE = frame(178, "20260105 09:30:00 US/Eastern")
STARTUP = (
    frame(15, 1, "DU1234567,DU7654321,")
    + frame(9, 1, 42)
    + frame(4, 2, -1, 2104, "Market data farm connection is OK:usfarm", "")
    + frame(4, 2, -1, 2106, "HMDS data farm connection is OK:ushmds", "")
)


def ticks(count: int) -> bytes:
    out = [frame(81, REQ_ID, 0.01, "9c0001", 3), frame(58, 1, REQ_ID, 1)]
    for i in range(count):
        step = (i % 50 - 25) * 0.01
        kind = i % 6
        if kind == 0:
            out.append(frame(1, 6, REQ_ID, 1, f"{189.5 + step:.2f}", 100 + i % 7, 0))
        elif kind == 1:
            out.append(frame(1, 6, REQ_ID, 2, f"{189.6 + step:.2f}", 200 + i % 5, 0))
        elif kind == 2:
            out.append(frame(2, 6, REQ_ID, 0, 300 + i % 11))
        elif kind == 3:
            out.append(frame(2, 6, REQ_ID, 3, 400 + i % 13))
        elif kind == 4:
            out.append(frame(1, 6, REQ_ID, 4, f"{189.55 + step:.2f}", 10 + i % 3, 0))
        else:
            out.append(frame(46, 6, REQ_ID, 45, 1767600000 + i))
    return b"".join(out)


OTHER = (
    frame(49, 1, 1767600000)
    + frame(45, 6, REQ_ID, 49, 0)
    + frame(4, 2, REQ_ID, 10167, "caf\xe9 delayed", "")  # valid UTF-8
    + frame(4, 2, -1, 2158, b"bad \xff\xfe bytes", "")  # not UTF-8: backslash-replaced
    + frame(999, 1, "unknown message id")  # the decoder logs and goes on
    + frame(61, 3, "DU1234567", 265598, "AAPL", "STK", "", 0.0, "", "", "NASDAQ", "USD")
    + frame(62, 1)
)

STREAM = HANDSHAKE + STARTUP + ticks(600) + OTHER


class _Transport:
    """Where ``conn.sendMsg`` writes (startApi); recorded, never sent anywhere."""

    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def write_eof(self) -> None:
        self.sent.append(b"<eof>")

    def close(self) -> None:
        self.sent.append(b"<close>")


class _LogTap(logging.Handler):
    def __init__(self, into: list[tuple[Any, ...]]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(("log", record.levelname, record.getMessage()))


class Probe:
    """One ib_async IB, fed bytes directly, recording everything it does in order."""

    def __init__(self, *, fast: bool) -> None:
        self.ib = ib = IB()
        client = self.ib.client
        if fast:
            assert install_fast_receive(client)
        assert is_fast_receive(client) is fast
        self.events: list[tuple[Any, ...]] = []
        self.sent: list[bytes] = []
        ev = self.events
        client.connState = Client.CONNECTING
        client.conn.transport = _Transport(self.sent)
        ib.wrapper.startTicker(REQ_ID, Stock("AAPL", "SMART", "USD", conId=265598), "mktData")

        interpret = client.decoder.interpret

        def decode(fields: list[str]) -> None:
            ev.append(("decode", tuple(fields), client._numMsgRecv))
            interpret(fields)

        client.decoder.interpret = decode  # type: ignore[method-assign]
        arrived, processed = client._tcpDataArrived, client._tcpDataProcessed

        def on_arrived() -> None:
            ev.append(("arrived", client._numBytesRecv, client._numMsgRecv))
            arrived()

        def on_processed() -> None:
            ev.append(("processed", client._numBytesRecv, client._numMsgRecv))
            processed()

        client._tcpDataArrived = on_arrived
        client._tcpDataProcessed = on_processed
        ack = ib.wrapper.connectAck
        ib.wrapper.connectAck = lambda: (ev.append(("connectAck",)), ack())[1]  # type: ignore[method-assign]
        client.apiStart += lambda: ev.append(("apiStart", tuple(client._accounts)))
        client.apiError += lambda msg: ev.append(("apiError", msg))
        client.conn.hasData += lambda data: ev.append(
            ("after", len(data), client._numMsgRecv, client._serverVersion)
        )
        ib.pendingTickersEvent += self._on_pending
        ib.errorEvent += self._on_error

    def _on_pending(self, tickers: set[ib_async.Ticker]) -> None:
        for t in tickers:
            self.events.append(
                (
                    "tickers",
                    t.bid,
                    t.ask,
                    t.bidSize,
                    t.askSize,
                    t.last,
                    t.lastSize,
                    tuple((k.tickType, k.price, k.size) for k in t.ticks),
                )
            )

    def _on_error(self, req_id: int, code: int, message: str, _contract: object) -> None:
        self.events.append(("error", req_id, code, message))
        if code == 9999:  # a user callback that disconnects in the middle of a chunk
            self.ib.client.disconnect()

    def feed(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.ib.client.conn.hasData.emit(chunk)

    def result(self) -> dict[str, Any]:
        c = self.ib.client
        return {
            "events": self.events,
            "sent": self.sent,
            "bytes": c._numBytesRecv,
            "msgs": c._numMsgRecv,
            "version": c._serverVersion,
            "decoder_version": c.decoder.serverVersion,
            "ready": c._apiReady,
            "accounts": c._accounts,
            "next_id": c._reqIdSeq,
            "state": c.connState,
            "left": bytes(c._data),
        }


def cut(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    pos = 0
    it = iter(sizes)
    while pos < len(data):
        size = next(it)
        yield data[pos : pos + size]
        pos += size


def fixed(size: int) -> Iterator[int]:
    while True:
        yield size


def randomly(seed: int, top: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randint(1, top)


def frame_count(stream: bytes) -> int:
    pos = count = 0
    while pos < len(stream):
        pos += 4 + struct.unpack_from(">I", stream, pos)[0]
        count += 1
    return count


def assert_same(expected: dict[str, Any], got: dict[str, Any]) -> None:
    """Equal records; on a mismatch, name the first event that differs."""
    for i, (want, have) in enumerate(zip(expected["events"], got["events"], strict=False)):
        assert have == want, f"event {i} differs"
    assert got == expected


def compare(stream: bytes, sizes: Callable[[], Iterator[int]]) -> dict[str, Any]:
    plain, fast = Probe(fast=False), Probe(fast=True)
    plain.feed(cut(stream, sizes()))
    fast.feed(cut(stream, sizes()))
    expected, got = plain.result(), fast.result()
    assert_same(expected, got)
    return got


CHUNKINGS = {
    "one chunk": lambda: fixed(1 << 30),
    "every byte": lambda: fixed(1),
    "2": lambda: fixed(2),
    "3": lambda: fixed(3),
    "4 (length prefix alone)": lambda: fixed(4),
    "5": lambda: fixed(5),
    "7": lambda: fixed(7),
    "13": lambda: fixed(13),
    "64": lambda: fixed(64),
    "1000": lambda: fixed(1000),
    "4096": lambda: fixed(4096),
    **{f"random {seed}": (lambda s=seed: randomly(s, 300)) for seed in range(8)},
}


@pytest.mark.parametrize("name", CHUNKINGS)
async def test_same_decoding_for_every_chunking(name: str) -> None:
    got = compare(STREAM, CHUNKINGS[name])
    # The record is not empty: the handshake, the start-up and every frame were decoded.
    assert got["version"] == 178
    assert got["ready"]
    assert got["accounts"] == ["DU1234567", "DU7654321"]
    assert got["next_id"] == 42
    assert got["msgs"] == frame_count(STREAM)
    assert got["left"] == b""
    assert got["bytes"] == len(STREAM)
    decoded = [e for e in got["events"] if e[0] == "decode"]
    assert len(decoded) == got["msgs"] - 1  # all but the handshake reach the decoder
    assert any(e[0] == "apiStart" for e in got["events"])
    assert got["sent"], "startApi was sent back"


async def test_many_frames_in_one_chunk_then_a_partial_frame() -> None:
    tail = frame(1, 6, REQ_ID, 1, "190.01", 5, 0)
    stream = HANDSHAKE + STARTUP + ticks(2000) + tail[:9]
    got = compare(stream, lambda: fixed(1 << 30))
    assert got["left"] == tail[:9]
    # The rest arrives later and completes the frame.
    plain, fast = Probe(fast=False), Probe(fast=True)
    for probe in (plain, fast):
        probe.feed([stream, tail[9:]])
    assert_same(plain.result(), fast.result())
    assert fast.result()["left"] == b""


async def test_frame_larger_than_many_chunks() -> None:
    huge = frame(4, 2, -1, 2158, "x" * 300_000, "")
    stream = HANDSHAKE + STARTUP + huge + ticks(50)
    got = compare(stream, lambda: fixed(4096))
    assert ("error", -1, 2158, "x" * 300_000) in got["events"]


async def test_server_too_old_disconnects_the_same_way() -> None:
    stream = frame(100, "20260105 09:30:00 US/Eastern") + STARTUP
    got = compare(stream, lambda: fixed(1 << 30))
    assert ("apiError", "TWS/gateway version must be >= 972") in got["events"]
    assert not any(e[0] == "decode" for e in got["events"])
    assert got["version"] == 0
    assert got["left"] == b""


async def test_disconnect_from_a_callback_drops_the_rest_of_the_chunk() -> None:
    stream = HANDSHAKE + STARTUP + ticks(20) + frame(4, 2, -1, 9999, "bye", "") + ticks(20) + OTHER
    for size in (1 << 30, 97):
        got = compare(stream, lambda size=size: fixed(size))  # type: ignore[misc]
        assert b"<close>" in got["sent"]
        assert ("error", -1, 9999, "bye") in got["events"]
        assert got["msgs"] < frame_count(stream)
        assert not got["ready"]


async def test_debug_log_is_the_same() -> None:
    logger = logging.getLogger("ib_async.client")
    # The logger is shared: an unreachable IB from an earlier test logs "Disconnecting" from
    # its __del__ when the garbage collector gets to it, so keep the collector out of the way.
    gc.collect()
    gc.disable()
    try:
        results = [_logged_run(logger, fast) for fast in (False, True)]
    finally:
        gc.enable()
    assert_same(results[0], results[1])
    lines = [e for e in results[1]["events"] if e[0] == "log" and e[2].startswith("<<< ")]
    assert len(lines) == results[1]["msgs"]
    assert ("log", "DEBUG", "<<< 9,1,42") in results[1]["events"]


def _logged_run(logger: logging.Logger, fast: bool) -> dict[str, Any]:
    probe = Probe(fast=fast)
    tap = _LogTap(probe.events)
    logger.addHandler(tap)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        probe.feed(cut(STREAM, fixed(333)))
    finally:
        logger.setLevel(old)
        logger.removeHandler(tap)
    return probe.result()


async def test_switching_off_and_on_mid_stream() -> None:
    plain, fast = Probe(fast=False), Probe(fast=True)
    chunks = list(cut(STREAM, fixed(211)))
    plain.feed(chunks)
    third = len(chunks) // 3
    fast.feed(chunks[:third])
    assert uninstall_fast_receive(fast.ib.client)
    assert not is_fast_receive(fast.ib.client)
    assert not uninstall_fast_receive(fast.ib.client)
    fast.feed(chunks[third : 2 * third])
    assert install_fast_receive(fast.ib.client)
    assert is_fast_receive(fast.ib.client)
    fast.feed(chunks[2 * third :])
    assert_same(plain.result(), fast.result())


async def test_installed_per_instance_only() -> None:
    original = Client._onSocketHasData
    ib_fast, ib_plain = IB(), IB()
    assert install_fast_receive(ib_fast.client)
    assert Client._onSocketHasData is original
    assert ib_plain.client._onSocketHasData in ib_plain.client.conn.hasData
    assert ib_fast.client._onSocketHasData not in ib_fast.client.conn.hasData
    assert not is_fast_receive(ib_plain.client)
    # Installing twice keeps a single listener.
    assert install_fast_receive(ib_fast.client)
    assert len(ib_fast.client.conn.hasData) == 1


async def test_env_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("0", "false", "OFF", " no "):
        monkeypatch.setenv(ENV_VAR, value)
        ib = IB()
        assert not install_fast_receive(ib.client)
        assert not is_fast_receive(ib.client)
        assert ib.client._onSocketHasData in ib.client.conn.hasData
    monkeypatch.setenv(ENV_VAR, "1")
    assert install_fast_receive(IB().client)


async def test_falls_back_on_another_ib_async_version(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fastpath, "_fallback_logged", False)
    monkeypatch.setattr(ib_async, "__version_info__", (2, 2, 0))
    monkeypatch.setattr(ib_async, "__version__", "2.2.0")
    with caplog.at_level(logging.DEBUG, logger="ibflow"):
        first, second = IB(), IB()
        assert not install_fast_receive(first.client)
        assert not install_fast_receive(second.client)
    assert first.client._onSocketHasData in first.client.conn.hasData
    notes = [r for r in caplog.records if "fast receive path not installed" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.DEBUG
    assert "2.2.0" in notes[0].getMessage()


async def test_falls_back_when_the_client_changed_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "_fallback_logged", True)

    class NewerClient(Client):
        def _onSocketHasData(self, data: bytes) -> None:
            super()._onSocketHasData(data)
            self.extra = True

    ib = IB()
    newer = NewerClient(ib.wrapper)
    assert not install_fast_receive(newer)
    assert newer._onSocketHasData in newer.conn.hasData

    missing = IB().client
    del missing._numMsgRecv
    assert not install_fast_receive(missing)

    renamed = IB().client
    renamed._data = "text"  # type: ignore[assignment]
    assert not install_fast_receive(renamed)

    detached = IB().client
    detached.conn.hasData.disconnect(detached._onSocketHasData)
    assert not install_fast_receive(detached)
