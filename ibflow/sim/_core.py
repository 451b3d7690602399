"""The simulator's shared state and its client connections: handshake, framing and dispatch.

:class:`SimCore` holds everything one simulated TWS knows (scenario, universe, market, broker,
pacing meters, connected clients, fault switches); :class:`Connection` is one client socket.
Request handlers (the ``_handlers`` package) receive a connection and read the core through
it; the server module adds the listening socket, the market loop and the public control API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from ._broker import Broker
from ._codec import (
    SERVER_VERSION,
    ClientHello,
    Fields,
    FrameDecoder,
    HandshakeDecoder,
    ProtocolError,
    encode_fields,
    negotiate,
)
from ._ids import Msg, Req, req_id_of
from ._ledger import CommissionModel
from ._market import Market
from ._model import Instrument, SimError
from ._pacing import HistoricalPacing, MessageRate, TickByTickPacing
from ._scenario import Scenario
from ._universe import Universe

log = logging.getLogger("ibflow.sim")

FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
REQUEST_KINDS = frozenset(r.name.lower() for r in Req)
# Subscriptions that carry market data: they stop during an 1100 and die with an 1101.
MARKET_KINDS = frozenset(
    {
        "mkt_data",
        "tick_by_tick",
        "real_time_bars",
        "historical_data",
        "mkt_depth",
        "scanner_subscription",
    }
)
# Subscriptions that hold a market data line. Tick-by-tick streams do not: IB caps them on their
# own, as many as market depth subscriptions (error 10190 past that).
LINE_KINDS = frozenset({"mkt_data", "real_time_bars"})

Handler = Callable[["Connection", Fields], None]
# The broker books orders placed by hand in TWS under this client id (no API client has it);
# clients see them as client id 0, with order id 0 until client id 0 binds them.
MANUAL_CLIENT = -1
NOT_SUPPORTED_CODE = 322  # TWS's "Error processing request": every client ends the request
PacingMode = Literal["ib", "strict", "off"]
PACING_MODES: tuple[PacingMode, ...] = ("ib", "strict", "off")


@dataclass(slots=True)
class Fault:
    """A pending ``Simulator.fail_next``: let ``skip`` requests through, then fail one."""

    code: int
    text: str
    skip: int = 0


@dataclass(slots=True)
class FeatureState:
    """What symbol search and the scanners remember across requests, per simulator."""

    # Client id → monotonic time of its last reqMatchingSymbols (IB allows one a second).
    symbol_lookups: dict[int, float] = field(default_factory=dict)
    # (conId, minute) → (session volume so far, average session volume) for the scanners.
    scan_volumes: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)


@dataclass(slots=True)
class Sub:
    """One live subscription held by a connection, keyed by (kind, req_id)."""

    kind: str
    req_id: int
    instrument: Instrument | None = None
    params: dict[str, Any] = field(default_factory=dict)
    last_sent: float = 0.0


class SimCore:
    """The state of one simulated TWS, shared by all its connections and handlers."""

    def __init__(
        self,
        *,
        scenario: Scenario | None,
        seed: int,
        readonly: bool,
        speed: float,
        pacing: PacingMode,
        max_clients: int,
        clock: Callable[[], float],
        handlers: Mapping[Req, Handler],
        master_client_id: int | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        # A private copy: the broker mutates accounts and positions, and a user may reuse one
        # Scenario for several simulators.
        self.scenario = scenario.copy() if scenario is not None else Scenario.default()
        if self.scenario.seed is not None:
            seed = self.scenario.seed
        self.seed = seed
        self.readonly = readonly
        self.speed = speed
        self.pacing = pacing
        self.max_clients = max_clients
        self.clock = clock
        self.handlers = handlers
        sc = self.scenario
        self.universe = Universe(sc.instruments)
        # Live quotes start where the historical path is now, so a chart and a quote agree.
        self.market = Market(
            sc.instruments,
            seed=seed,
            clock=clock,
            tick_interval=sc.tick_interval,
            live_from_history=True,
        )
        self.broker = Broker(
            sc.accounts,
            sc.positions,
            self.market,
            seed=seed,
            clock=clock,
            readonly=readonly,
            instruments=sc.instruments,
            commission=CommissionModel(
                per_share=sc.commission_per_share,
                min_per_order=sc.min_commission,
                max_rate=sc.max_commission_rate,
                forex_rate=sc.forex_commission_rate,
                forex_min=sc.forex_min_commission,
                future_per_contract=sc.future_commission,
                option_per_contract=sc.option_commission,
                option_min=sc.option_min_commission,
            ),
            partial_fill_clip=sc.fill_clip or None,
            enforce_market_hours=sc.enforce_market_hours,
        )
        paced = pacing != "off"
        self.hist_pacing = (
            HistoricalPacing(speed=speed, small_bars_only=pacing == "ib") if paced else None
        )
        self.tbt_pacing = TickByTickPacing(speed=speed) if paced else None
        self.features = FeatureState()
        self.master_client_id = master_client_id
        # Orders placed by hand that client id 0 has bound (TWS gives them negative ids).
        self.bound_manual: set[int] = set()
        self._manual_ids = -1  # the first bound id is -2 (see new_manual_id)
        self._clients: dict[int, Connection] = {}
        self._pending: set[Connection] = set()
        self._order_ids: dict[int, int] = {}
        # Fault switches (see the Simulator methods of the same names).
        self._silence_handshake = False
        self._accept_then_close = False
        self._stalled = False
        self._stalled_frames: list[tuple[Connection, bytes]] = []
        self._delay = 0.0
        self._fail_next: dict[str, Fault] = {}
        self._ignored: set[str] = set()
        self._ib_link_down = False  # between a 1100 notice and its 1101/1102
        self._requests: Counter[str] = Counter()
        self._request_log: deque[tuple[int, str, tuple[str, ...]]] = deque(maxlen=10_000)

    def connections(self) -> list[Connection]:
        """The clients past startApi, in connection order."""
        return list(self._clients.values())

    def client(self, client_id: int) -> Connection | None:
        return self._clients.get(client_id)

    def subscriptions(self) -> dict[str, int]:
        """Active subscriptions by kind across all clients (e.g. ``{"mkt_data": 2}``)."""
        counts: Counter[str] = Counter()
        for conn in self._clients.values():
            for sub in conn.subs.values():
                counts[sub.kind] += 1
        return dict(counts)

    def lines_in_use(self) -> int:
        """Market data lines held by all clients (streaming quotes and real-time bars)."""
        return sum(
            1 for c in self._clients.values() for s in c.subs.values() if s.kind in LINE_KINDS
        )

    def owners(self, client_id: int) -> Iterable[Connection]:
        """The connections that hear about ``client_id``'s orders: that client; for orders
        placed by hand in TWS, client id 0 while it binds orders (reqAutoOpenOrders); and the
        master client id, which hears every order."""
        conn = self._clients.get(client_id)
        if conn is not None:
            yield conn
        binder = self._clients.get(0)
        if client_id == MANUAL_CLIENT and binder is not None and binder.auto_open_orders:
            yield binder
        master = self.master_client_id
        if master is not None and master != client_id:
            watcher = self._clients.get(master)
            if watcher is not None and not (
                master == 0 and client_id == MANUAL_CLIENT and watcher.auto_open_orders
            ):
                yield watcher

    def new_manual_id(self) -> int:
        """The next id TWS keeps for an order placed by hand (negative, as TWS binds them).

        IB documents only that bound orders get negative ids ("use negative numbers to bind
        automatic orders"), not which. -1 is the id of TWS's general notices (errors about no
        request), so no order takes it here: an error about a bound order must reach it. The
        ids count down from -2.
        """
        self._manual_ids -= 1
        return self._manual_ids

    def next_order_id(self, client_id: int) -> int:
        return self._order_ids.setdefault(client_id, 1)

    def bump_order_id(self, client_id: int, order_id: int) -> None:
        if order_id >= self._order_ids.get(client_id, 1):
            self._order_ids[client_id] = order_id + 1

    def check_account(self, account: str) -> None:
        if account and account not in self.broker.accounts:
            raise SimError(
                321, f"Error validating request.-'bA' : cause - Unknown account {account}"
            )

    def record(self, client_id: int, kind: str, fields: list[str]) -> None:
        self._requests[kind] += 1
        self._request_log.append((client_id, kind, tuple(fields)))
        log.debug("client %d → %s %s", client_id, kind, fields[1:])


class Connection(asyncio.Protocol):
    """One client socket: handshake, framing, per-connection limits and outgoing writes."""

    def __init__(self, sim: SimCore) -> None:
        self.sim = sim
        self.transport: asyncio.Transport | None = None
        self.hello: ClientHello | None = None
        self.bad_hello = False  # the handshake was not the API's: ignore everything after it
        self.handshake = HandshakeDecoder()
        self.frames = FrameDecoder()
        self.version = 0
        self.client_id: int | None = None
        self.peer = ""
        self.connected_at = time.time()
        self.subs: dict[tuple[str, int], Sub] = {}
        self.market_data_type = 1
        self.auto_open_orders = False
        self.rate = MessageRate(speed=sim.speed) if sim.pacing != "off" else None
        self.closed = False
        self.writable = asyncio.Event()
        self.writable.set()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not checked with isinstance, since uvloop's TCPTransport does
        # not derive from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.sim._pending.add(self)
        if self.sim._accept_then_close:
            log.info("fault: accepted %s and closing at once", self.peer)
            self.close()

    def data_received(self, data: bytes) -> None:
        if self.bad_hello:
            return
        try:
            if self.hello is None:
                try:
                    hello, rest = self.handshake.feed(data)
                except ProtocolError as exc:
                    # TWS neither answers nor closes a socket that did not say "API\0" with a
                    # version range: the client hears nothing until its own timeout.
                    log.warning("client %s sent a bad handshake (%s); ignoring it", self.peer, exc)
                    self.bad_hello = True
                    return
                if hello is None:
                    return
                self.hello = hello
                self._on_hello(hello)
                data = rest
                if self.closed or not data:
                    return
            for fields in self.frames.feed(data):
                if self.closed:
                    return
                self._on_message(fields)
        except ProtocolError as exc:
            log.warning("client %s sent bad bytes (%s); closing", self.peer, exc)
            self.close()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()
        self.sim._pending.discard(self)
        if self.client_id is not None and self.sim._clients.get(self.client_id) is self:
            del self.sim._clients[self.client_id]
            log.info("client %s (id %d) disconnected", self.peer, self.client_id)
        self.subs.clear()

    # -- writing -----------------------------------------------------------------------------

    def send(self, fields: Sequence[object]) -> None:
        self.write(encode_fields(fields))

    def write(self, frame: bytes) -> None:
        # A transport closing after a failed send still takes writes until connection_lost
        # runs, and asyncio warns about each one: a client that went away hears nothing more.
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        sim = self.sim
        if sim._stalled:
            sim._stalled_frames.append((self, frame))
        elif sim._delay > 0:
            asyncio.get_running_loop().call_later(sim._delay, self._write_now, frame)
        else:
            self.transport.write(frame)

    def _write_now(self, frame: bytes) -> None:
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send([Msg.ERR_MSG, 2, req_id, code, text, ""])

    def not_supported(self, req_id: int, what: str) -> None:
        """Answer a request the simulator cannot serve: error 322 to ``req_id``, and a warning."""
        log.warning("client %s: %s is not supported by the simulator", self.client_id, what)
        text = f"Error processing request: {what} is not supported by the simulator"
        self.error(req_id, NOT_SUPPORTED_CODE, text)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    # -- handshake ---------------------------------------------------------------------------

    def _on_hello(self, hello: ClientHello) -> None:
        if self.sim._silence_handshake:
            log.info("fault: not answering the handshake of %s", self.peer)
            return
        version = negotiate(hello, SERVER_VERSION)
        if version is None:
            log.warning(
                "client %s offers v%d..%d, no overlap with %d; closing",
                self.peer,
                hello.min_version,
                hello.max_version,
                SERVER_VERSION,
            )
            self.close()
            return
        self.version = version
        stamp = datetime.fromtimestamp(self.sim.clock(), UTC).strftime("%Y%m%d %H:%M:%S UTC")
        self.transport.write(encode_fields([version, stamp]))  # type: ignore[union-attr]

    def _on_start_api(self, f: Fields) -> None:
        f.skip()  # version
        client_id = f.int()
        sim = self.sim
        if client_id in sim._clients:
            log.info("client %s asked for id %d, which is in use: 326", self.peer, client_id)
            self.error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            self.close()
            return
        if len(sim._clients) >= sim.max_clients:
            self.error(-1, 502, "Couldn't connect to TWS. Too many API clients are connected.")
            self.close()
            return
        self.client_id = client_id
        sim._pending.discard(self)
        sim._clients[client_id] = self
        log.info("client %s connected as id %d (v%d)", self.peer, client_id, self.version)
        self.send([Msg.MANAGED_ACCTS, 1, ",".join(sim.broker.accounts)])
        self.send([Msg.NEXT_VALID_ID, 1, sim.next_order_id(client_id)])
        for code, text in FARM_NOTICES:
            self.error(-1, code, text)

    # -- dispatch ----------------------------------------------------------------------------

    def _on_message(self, fields: list[str]) -> None:
        if not fields:
            return
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("client %s sent a frame with message id %r", self.peer, fields[0])
            return
        if self.client_id is None:
            if msg_id == Req.START_API:
                self._on_start_api(Fields(fields))
            else:
                log.warning("client %s sent id %d before startApi", self.peer, msg_id)
            return
        if self.rate is not None:
            verdict = self.rate.on_message()
            if verdict == "disconnect":
                self.error(-1, 100, "Max rate of messages per second has been exceeded.")
                log.warning("client %d keeps exceeding 50 msg/s; disconnecting", self.client_id)
                self.close()
                return
            if verdict == "violation":
                self.error(-1, 100, "Max rate of messages per second has been exceeded.")
                return
            if verdict == "dropped":
                return
        try:
            req = Req(msg_id)
        except ValueError:
            # Not a request of the API at this version: say so rather than leave it unanswered.
            self.not_supported(-1, f"message id {msg_id}")
            return
        kind = req.name.lower()
        self.sim.record(self.client_id, kind, fields)
        if kind in self.sim._ignored:
            return
        fault = self.sim._fail_next.get(kind)
        if fault is not None:
            if fault.skip > 0:
                fault.skip -= 1
            else:
                del self.sim._fail_next[kind]
                # Never handled: a failed placeOrder leaves no order behind, as when TWS
                # rejects one before accepting it.
                self.error(req_id_of(req, fields), fault.code, fault.text)
                return
        handler = self.sim.handlers.get(req)
        if handler is None:
            log.warning("client %d: no handler for %s", self.client_id, kind)
            self.error(
                req_id_of(req, fields), 322, f"Error processing request: {kind} is not handled"
            )
            return
        try:
            handler(self, Fields(fields))
        except SimError as exc:
            self.error(req_id_of(req, fields), exc.code, exc.text)
        except ProtocolError as exc:
            log.warning("client %d sent a malformed %s: %s", self.client_id, kind, exc)
            self.error(req_id_of(req, fields), 320, f"Error reading request: {exc}")
