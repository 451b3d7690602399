"""The simulator's server: the listening socket, the market loop and the public control API.

The state and the client connections live in :mod:`._core`, the request handlers in the
``_handlers`` package; this module decides *when*: it accepts clients, moves the market and
streams what it moved, and offers the fault switches and market controls tests use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import _depth as depth
from . import _scanner as scanner
from ._codec import SERVER_VERSION, encode_fields, encode_raw
from ._core import (
    MARKET_KINDS,
    PACING_MODES,
    REQUEST_KINDS,
    Connection,
    Fault,
    PacingMode,
    SimCore,
    log,
)
from ._handlers import HANDLERS
from ._handlers.account import send_pnl
from ._handlers.history import send_bar_update
from ._handlers.market import maybe_send_realtime_bar, send_quote_update, send_tick_by_tick
from ._handlers.orders import dispatch, place_manual
from ._ids import Msg
from ._model import ContractQuery, Instrument, SimExecution, SimOrder
from ._options import with_underlyings
from ._order_rules import INACTIVE_CODE, INACTIVE_TEXT
from ._scenario import Scenario


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A connected API client, as the sim sees it."""

    client_id: int
    server_version: int
    peer: str
    connected_at: float


class Simulator(SimCore):
    """A TWS/IB Gateway on loopback that any TWS API client can connect to.

    ``async with Simulator(port=0) as sim:`` starts it on a free port (``sim.port``); it speaks
    the text protocol at server version 178 and enforces IB's limits, time-scaled by ``speed``.

    ``pacing`` chooses the request limits: ``"ib"`` (the default; also ``True``) as IB applies
    them: 50 messages a second, one tick-by-tick request per instrument per 15 s, and for
    history the 15 s identical-request and six-in-2 s rules on bars of 30 s and smaller while
    larger bars keep the softer limits (60 requests in 10 minutes, 50 open); ``"strict"`` the
    same with the identical-request and six-in-2 s rules on every bar size; ``"off"`` (also
    ``False``) no limits.

    ``master_client_id`` is TWS's "Master API client ID" setting (blank by default): that
    client hears every order's openOrder, orderStatus and executions, but, like any client, may
    change only its own. Change it any time with ``sim.master_client_id = …``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        scenario: Scenario | None = None,
        readonly: bool = False,
        speed: float = 1.0,
        *,
        pacing: PacingMode | bool = True,
        max_clients: int = 32,
        clock: Callable[[], float] = time.time,
        master_client_id: int | None = None,
    ) -> None:
        if isinstance(pacing, bool):
            mode: PacingMode = "ib" if pacing else "off"
        elif pacing in PACING_MODES:
            mode = pacing
        else:
            raise ValueError(f"pacing must be one of {', '.join(PACING_MODES)}, got {pacing!r}")
        super().__init__(
            scenario=scenario,
            seed=seed,
            readonly=readonly,
            speed=speed,
            pacing=mode,
            max_clients=max_clients,
            clock=clock,
            handlers=HANDLERS,
            master_client_id=master_client_id,
        )
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._step = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind and listen; with ``port=0`` the OS picks a free port, read it from ``sim.port``."""
        await self._listen()
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._run_market(), name="ibflow-sim-market")
        log.info(
            "simulator listening on %s:%d (server version %d)", self.host, self.port, SERVER_VERSION
        )

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        """Run until cancelled (the CLI's Ctrl-C)."""
        if self._server is None:
            await self.start()
        await asyncio.Event().wait()

    # -- faults ------------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close every client socket at once, as a crashing gateway does."""
        for conn in [*self._clients.values(), *self._pending]:
            conn.abort()
        self._clients.clear()
        self._pending.clear()

    async def restart(self, down_for: float = 1.0) -> None:
        """Drop everyone, refuse connections for ``down_for`` seconds, then listen again."""
        if self._server is not None:
            self._server.close()
            self.drop_connections()
            await self._server.wait_closed()
            self._server = None
        self.drop_connections()
        log.info("fault: gateway down for %.2fs", down_for)
        await asyncio.sleep(down_for)
        await self._listen()
        log.info("fault: gateway back on port %d", self.port)

    def silence_handshake(self, on: bool = True) -> None:
        """Accept TCP but never answer the API handshake (API not enabled / prompt pending)."""
        self._silence_handshake = on

    def accept_then_close(self, on: bool = True) -> None:
        """Accept TCP then close immediately (a relay whose gateway is down)."""
        self._accept_then_close = on

    def stall(self, on: bool = True) -> None:
        """Hold every outgoing frame until un-stalled (a half-open socket or a hung gateway)."""
        self._stalled = on
        if not on:
            frames, self._stalled_frames = self._stalled_frames, []
            for conn, frame in frames:
                conn.write(frame)

    def delay(self, seconds: float) -> None:
        """Delay every outgoing frame by ``seconds`` (0 turns it off)."""
        self._delay = max(0.0, seconds)

    def notice(
        self, code: int, text: str, *, req_id: int = -1, client_id: int | None = None
    ) -> None:
        """Send an errMsg (1100/1101/1102, 2103–2110, 10197, …) to everyone, or to one client.

        With a ``req_id`` the error is addressed to that request, as TWS addresses errors of a
        running subscription. The connectivity codes act as they do in TWS: after 1100 no
        market data flows; 1102 resumes it; 1101 ("data lost") also drops every market-data
        subscription, which clients must request again.
        """
        if code == 1100:
            self._ib_link_down = True
        elif code in (1101, 1102):
            self._ib_link_down = False
            if code == 1101:
                for conn in self._clients.values():
                    for key in [k for k, sub in conn.subs.items() if sub.kind in MARKET_KINDS]:
                        del conn.subs[key]
        targets = (
            list(self._clients.values())
            if client_id is None
            else [c for cid, c in self._clients.items() if cid == client_id]
        )
        for conn in targets:
            conn.error(req_id, code, text)

    def fail_next(self, kind: str, code: int, text: str, *, after: int = 0) -> None:
        """Answer a coming request of ``kind`` (e.g. ``"historical_data"``) with this error.

        The first ``after`` requests of ``kind`` are answered normally, the one after them gets
        the error instead of an answer (addressed to its request id, or to the order id for
        ``"place_order"`` and ``"cancel_order"``). A failed placeOrder never reaches the broker:
        the order does not exist, and with a rejection code (201, 203…) clients treat the
        error as its end. One fault is pending per kind; a new call replaces it.

        Raises:
            ValueError: ``kind`` is not a request kind, or ``after`` is negative.
        """
        if after < 0:
            raise ValueError(f"after must be 0 or more, got {after!r}")
        self._fail_next[self._kind(kind)] = Fault(code, text, after)

    def inactivate_next(
        self,
        symbol: str | None = None,
        *,
        after: int = 0,
        code: int = INACTIVE_CODE,
        text: str = INACTIVE_TEXT,
        acknowledge: bool = True,
    ) -> None:
        """Make a coming new order ``Inactive``: TWS holds it but will not work it.

        Skips ``after`` new orders (of ``symbol`` only, when given) and hits the next one, as
        TWS does when its checks after accepting an order refuse it (margin, permissions,
        trading hours). The placing client gets openOrder/orderStatus ``PreSubmitted`` (not
        with ``acknowledge=False``: TWS has been seen sending the error first), then error
        ``code`` with ``text`` addressed to the order id (TWS's wording starts with
        ``"Order rejected - reason:"``), then openOrder/orderStatus ``Inactive``. The order
        never fills, stays among the open orders with status ``Inactive``, and a cancel turns
        it ``Cancelled`` (with error 202). Orders refused outright and modifications are not
        counted; each call adds one more such order.

        Raises:
            KeyError: no instrument in the universe has that symbol.
            ValueError: ``after`` is negative.
        """
        name = self._instrument(symbol, "").symbol if symbol is not None else ""
        self.broker.inactivate_next(
            symbol=name, after=after, code=code, text=text, acknowledge=acknowledge
        )

    def correct_fill(
        self, exec_id: str, *, price: float | None = None, quantity: float | None = None
    ) -> str:
        """Correct an execution the way TWS does; returns the correction's execution id.

        The correction keeps the id and raises its last part (``….01`` → ``….02``). The
        clients that receive the order's fills (its client and the master client id) get the
        corrected execDetails (reqId -1), then its
        commissionReport; reqExecutions and :attr:`fills` report it instead of the original;
        positions, average cost, cash and PnL move by the difference and are pushed to their
        subscribers.

        Raises:
            ValueError: ``exec_id`` is unknown or already corrected, or the new price or
                quantity is not positive, or would overfill the order.
        """
        corrected, events = self.broker.correct_execution(exec_id, price=price, quantity=quantity)
        log.info("fault: execution %s corrected as %s", exec_id, corrected.exec_id)
        dispatch(self, events)
        return corrected.exec_id

    def place_manual(
        self,
        symbol: str,
        action: str,
        quantity: float,
        *,
        order_type: str = "LMT",
        limit_price: float | None = None,
        stop_price: float | None = None,
        tif: str = "DAY",
        account: str = "",
    ) -> int:
        """Place an order as a user clicking in TWS would; returns its perm id.

        No API client owns it: clients see it as client id 0's with order id 0, and none may
        change it, until client id 0 binds it. A client id 0 that asked for
        reqAutoOpenOrders(True) binds it at once and hears its events; client id 0's
        reqOpenOrders binds every such order open at the time. A bound order shows its
        negative order id (TWS's "use negative numbers to bind automatic orders"), under which
        client id 0 can modify and cancel it. :attr:`orders` lists it with client id -1, as no
        API client's.

        Raises:
            KeyError: no instrument in the universe has that symbol.
            ValueError: TWS refused the order (the text says why).
        """
        return place_manual(
            self,
            symbol,
            action,
            quantity,
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            tif=tif,
            account=account,
        )

    def ignore(self, kind: str, on: bool = True) -> None:
        """Never answer requests of ``kind`` (a sync answer that never comes)."""
        if on:
            self._ignored.add(self._kind(kind))
        else:
            self._ignored.discard(self._kind(kind))

    def send_malformed(self) -> None:
        """Send every client one frame that is not a valid message (a tickPrice cut short)."""
        frame = encode_raw(b"1\x006\x00not-a-number\x00")
        for conn in list(self._clients.values()):
            conn.write(frame)

    @staticmethod
    def _kind(kind: str) -> str:
        k = kind.lower()
        if k not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}; use one of {sorted(REQUEST_KINDS)}")
        return k

    # -- market control ----------------------------------------------------------------------

    def push_quote(
        self,
        symbol: str,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        bid_size: float | None = None,
        ask_size: float | None = None,
        last_size: float | None = None,
        volume: float | None = None,
        halted: bool | None = None,
        sec_type: str = "",
    ) -> None:
        """Set an instrument's quote now; subscribers get the ticks and resting orders match."""
        inst = self._instrument(symbol, sec_type)
        self.market.push(
            inst.con_id,
            bid=bid,
            ask=ask,
            last=last,
            bid_size=bid_size,
            ask_size=ask_size,
            last_size=last_size,
            volume=volume,
            halted=halted,
        )
        self._after_move(inst)

    def freeze_quotes(self, symbol: str, on: bool = True, *, sec_type: str = "") -> None:
        """Stop the random walk of ``symbol`` (``on=False`` restarts it).

        Its quote then moves only by :meth:`push_quote`, so a test can drive prices exactly;
        resting orders still match on every market step.
        """
        self.market.freeze(self._instrument(symbol, sec_type).con_id, on)

    async def burst(self, symbol: str, count: int, *, rate: float | None = None) -> int:
        """Send ``count`` quote ticks for ``symbol`` to every market-data subscriber, fast.

        The frames are encoded once up front, so the cost is the socket's, not the sim's: this is
        the flood the benchmarks measure client receive paths with. ``rate`` paces the feed in
        messages per second (None = as fast as the sockets take it). Returns frames sent per
        subscriber; the prices are a deterministic saw-tooth around the current quote.
        """
        inst = self._instrument(symbol, "")
        q = self.market.quote(inst.con_id)
        targets = [
            (conn, sub.req_id)
            for conn in self._clients.values()
            for sub in conn.subs.values()
            if sub.kind == "mkt_data"
            and sub.instrument is not None
            and sub.instrument.con_id == inst.con_id
        ]
        if not targets or count <= 0:
            return 0
        tick = inst.min_tick
        cycle = 1000
        blocks: dict[int, list[bytes]] = {}
        for conn, req_id in targets:
            frames = []
            for i in range(cycle):
                step = (i % 50 - 25) * tick
                if i % 4 == 0:
                    frames.append(
                        encode_fields([Msg.TICK_PRICE, 6, req_id, 1, q.bid + step, 100 + i % 7, 0])
                    )
                elif i % 4 == 1:
                    frames.append(
                        encode_fields([Msg.TICK_PRICE, 6, req_id, 2, q.ask + step, 200 + i % 5, 0])
                    )
                elif i % 4 == 2:
                    frames.append(encode_fields([Msg.TICK_SIZE, 6, req_id, 0, 300 + i % 11]))
                else:
                    frames.append(encode_fields([Msg.TICK_SIZE, 6, req_id, 3, 400 + i % 13]))
            blocks[id(conn)] = frames
        loop = asyncio.get_running_loop()
        batch = 500 if rate is None else max(1, min(500, int(rate / 200)))
        started = loop.time()
        sent = 0
        while sent < count:
            n = min(batch, count - sent)
            for conn, _ in targets:
                frames = blocks[id(conn)]
                start = sent % cycle
                chunk = frames[start : start + n]
                if len(chunk) < n:
                    chunk += frames[: n - len(chunk)]
                if conn.transport is not None and not conn.closed:
                    if not conn.transport.is_closing():
                        conn.transport.write(b"".join(chunk))
            sent += n
            for conn, _ in targets:
                await conn.writable.wait()
            if rate is not None:
                delay = started + sent / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        return sent

    def _instrument(self, symbol: str, sec_type: str) -> Instrument:
        if not sec_type:
            found = self.universe.by_name(symbol)
            if found is not None:
                return found
        matches = self.universe.match(ContractQuery(symbol=symbol, sec_type=sec_type))
        if not matches:
            raise KeyError(f"no instrument {symbol!r} in the simulator's universe")
        return matches[0]

    @property
    def clients(self) -> list[ClientInfo]:
        return [
            ClientInfo(cid, c.version, c.peer, c.connected_at) for cid, c in self._clients.items()
        ]

    def request_count(self, kind: str) -> int:
        return self._requests[self._kind(kind)]

    @property
    def requests(self) -> list[tuple[int, str, tuple[str, ...]]]:
        """The most recent requests as (client id, kind, raw fields), oldest first."""
        return list(self._request_log)

    @property
    def orders(self) -> list[SimOrder]:
        return [*self.broker.open_orders(None), *self.broker.completed_orders()]

    @property
    def fills(self) -> list[SimExecution]:
        return self.broker.executions()

    # -- the market loop ---------------------------------------------------------------------

    def _after_move(self, inst: Instrument) -> None:
        dispatch(self, self.broker.on_quote(inst.con_id))
        if self._ib_link_down:
            return
        for conn in list(self._clients.values()):
            for sub in list(conn.subs.values()):
                if sub.instrument is None or sub.instrument.con_id != inst.con_id:
                    continue
                if sub.kind == "mkt_data":
                    send_quote_update(conn, sub, inst)
                elif sub.kind == "tick_by_tick":
                    send_tick_by_tick(conn, sub, inst)
                elif sub.kind == "mkt_depth":
                    depth.on_move(self, conn, sub, inst)

    async def _run_market(self) -> None:
        # Faster time makes the market move more often, but never beyond 100 steps a second:
        # past that the sim would only be flooding its own clients.
        interval = max(self.scenario.tick_interval / self.speed, 0.01)
        while True:
            await asyncio.sleep(interval)
            try:
                self._tick()
            except Exception:  # a bug in one tick must not kill the market for everyone
                log.exception("simulator market step failed")

    def _tick(self) -> None:
        self._step += 1
        moving: dict[int, Instrument] = {}
        for conn in self._clients.values():
            for sub in conn.subs.values():
                if sub.instrument is not None:
                    moving[sub.instrument.con_id] = sub.instrument
        for order in self.broker.open_orders(None):
            moving.setdefault(order.instrument.con_id, order.instrument)
            for cond in order.conditions:  # a condition's contract keeps moving too
                watched = self.universe.by_con_id(cond.con_id)
                if watched is not None:
                    moving.setdefault(watched.con_id, watched)
        for con_id, inst in with_underlyings(self.universe, moving).items():
            self.market.step(con_id)
            self._after_move(inst)
        now = self.clock()
        periodic = self._step % max(1, round(1.0 / self.scenario.tick_interval)) == 0
        for conn in list(self._clients.values()):
            for sub in list(conn.subs.values()):
                if self._ib_link_down and sub.kind in MARKET_KINDS:
                    continue
                if sub.kind == "real_time_bars":
                    maybe_send_realtime_bar(conn, sub)
                elif sub.kind == "historical_data":
                    send_bar_update(conn, sub, now)
                elif periodic and sub.kind in ("pnl", "pnl_single"):
                    send_pnl(conn, sub)
                elif sub.kind == "scanner_subscription":
                    scanner.on_tick(self, conn, sub, now)
