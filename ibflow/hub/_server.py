"""``Hub``: one ``ibflow.Session`` served to many remote sessions over NATS.

The hub owns the only TWS connection. Reads are NATS request-reply on ``ibflow.<hub>.req.*``;
streams (quotes, ticks, bars, PnL…) are published once per distinct call however many remote
consumers listen, held open by leases the consumers renew, within the hub's market-data limits
(``_serve_streams``). Orders carry a client key that the hub claims in a
JetStream key-value bucket before placing, so a retried request never places twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from types import TracebackType
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

import ibflow

from ._access import leave_nats, resolve_access
from ._chunks import part_limit, send_answer
from ._journal import OrderJournal, owner_of, tagged
from ._leader import heartbeat
from ._protocol import (
    Subjects,
    check_name,
    connect_nats,
    decode,
    decode_error,
    dumps,
    encode,
    encode_error,
    loads,
    stop_tasks,
)
from ._serve_orders import OrderDesk, describe
from ._serve_streams import FeedServer
from ._stats import HubOps

__all__ = ["Hub"]

_log = logging.getLogger("ibflow.hub")

# Session reads served as they are: the hub calls the method of that name with the remote's
# arguments and returns its records.
_READS = frozenset(
    {
        "positions",
        "account_values",
        "account_summary",
        "portfolio",
        "pnl",
        "current_time",
        "contract_details",
        "qualify",
        "history",
        "head_timestamp",
        "historical_ticks",
        "open_orders",
        "completed_orders",
        "fills",
        "what_if",
    }
)
_ORDER_KEYS_TTL = 24 * 3600.0  # IB's orders and executions are a day's business
_CLAIM_POLL = 0.02
_KV_PATIENCE = 10.0  # seconds a bucket write is tried again while JetStream elects a leader
_KV_AWAY = (
    nats.errors.TimeoutError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
)


class Hub:
    """Serve ``session`` on the NATS server at ``nats_url`` under the name ``name``.

    ``async with Hub(session, "nats://127.0.0.1:4222", name="desk1"): ...`` — the session must
    be connected already and stays the caller's to close.

    Args:
        session: the connected session to serve.
        nats_url: the NATS server (JetStream on), e.g. ``nats://127.0.0.1:4222``; several
            servers of a cluster comma-separated; default ``IBFLOW_NATS_URL`` or that one.
        name: the hub's name; remote sessions address it with ``hub=``.
        readonly_names: remote names that may read and stream but never trade.
        lease_ttl: seconds a consumer's interest in a stream lasts without a renewal.
        max_lines: market-data lines the hub may hold at TWS; one more raises
            ``MarketDataError`` at the remote caller instead of error 101 at TWS.
        max_tick_by_tick: tick-by-tick subscriptions (one per contract and kind) the hub may
            hold at TWS; one more raises ``MarketDataError`` (code 10190) at the remote caller.
        connect_timeout: seconds ``start()`` waits for the NATS server.
        user, password, token, creds, nkey: NATS credentials (a creds or nkey seed file's
            path); each defaults to its ``IBFLOW_NATS_*`` variable. See ``docs/hub.md``.
        replicas: JetStream replicas of the hub's buckets: 1 on one NATS server, 3 on a
            three-node cluster so they survive the loss of a node.
        stats_interval: seconds between statistics published on ``ibflow.<name>.stats``.
        log_interval: seconds between summary lines in the log.
    """

    def __init__(
        self,
        session: ibflow.Session,
        nats_url: str | None = None,
        *,
        name: str,
        readonly_names: Iterable[str] = (),
        lease_ttl: float = 3.0,
        max_lines: int = 100,
        max_tick_by_tick: int = 3,
        connect_timeout: float = 10.0,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        creds: str | None = None,
        nkey: str | None = None,
        replicas: int = 1,
        stats_interval: float = 1.0,
        log_interval: float = 60.0,
    ) -> None:
        self._session = session
        self._access = resolve_access(
            nats_url, user=user, password=password, token=token, creds=creds, nkey=nkey
        )
        self._url = self._access.shown
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 5:
            raise ibflow.InvalidRequest(f"replicas must be an int from 1 to 5, got {replicas!r}")
        self._replicas = replicas
        self._name = check_name(name, "the hub's name")
        self._readonly = frozenset(check_name(n, "a read-only name") for n in readonly_names)
        if not lease_ttl > 0.1:
            raise ibflow.InvalidRequest(f"lease_ttl must be > 0.1 s, got {lease_ttl!r}")
        if isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1:
            raise ibflow.InvalidRequest(f"max_lines must be an int >= 1, got {max_lines!r}")
        if (
            isinstance(max_tick_by_tick, bool)
            or not isinstance(max_tick_by_tick, int)
            or max_tick_by_tick < 0
        ):
            raise ibflow.InvalidRequest(
                f"max_tick_by_tick must be an int >= 0, got {max_tick_by_tick!r}"
            )
        self._lease_ttl = float(lease_ttl)
        self._connect_timeout = connect_timeout
        self._max_lines = max_lines
        self._subjects = Subjects(self._name)
        self._nc: NATS | None = None
        self._orders_kv: KeyValue | None = None
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._trades: dict[int, ibflow.Trade] = {}
        self._orders_relayed = 0
        self._desk = OrderDesk(self._name, self._trades)
        self._placing: set[str] = set()  # the order keys (digests) this hub is placing now
        self._id = uuid.uuid4().hex[:12]
        self._journal = OrderJournal(session, self._name)
        self._ops = HubOps(
            self._name,
            lease_ttl=self._lease_ttl,
            stats_interval=stats_interval,
            log_interval=log_interval,
        )
        self._streams = FeedServer(
            session,
            self._subjects,
            lease_ttl=self._lease_ttl,
            max_lines=max_lines,
            max_tick_by_tick=max_tick_by_tick,
            heard=self._ops.seen,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        """The NATS server(s), any password or token in the URL shown as ``***``."""
        return self._url

    def subscriptions(self) -> dict[int, int]:
        """Instruments subscribed at TWS (by ``con_id``) and how many leases hold each."""
        return {con_id: len(owners) for con_id, (_, owners) in self._streams.instruments().items()}

    async def start(self) -> None:
        """Connect to NATS, open the order-key bucket and start answering."""
        self._nc = await connect_nats(
            self._access, name=f"ibflow-hub-{self._name}", timeout=self._connect_timeout
        )
        js = self._nc.jetstream()
        try:
            self._orders_kv = await js.create_key_value(
                bucket=self._subjects.orders_bucket,
                history=1,
                ttl=_ORDER_KEYS_TTL,
                replicas=self._replicas,
            )
            await self._journal.start(js, replicas=self._replicas)
        except nats.errors.Error as exc:
            await self.aclose()
            raise ibflow.ConnectError(
                f"the NATS server at {self._url} cannot hold the hub's JetStream state "
                f"({type(exc).__name__}: {exc}): start nats-server with -js (or a jetstream block "
                f"in its config), and give --replicas at most its number of JetStream nodes "
                f"(here {self._replicas})"
            ) from None
        nc = self._nc
        self._subs = [
            await nc.subscribe(self._subjects.requests, cb=self._on_request),
            await nc.subscribe(
                self._subjects.stats_get, cb=partial(self._ops.answer, snapshot=self.statistics)
            ),
        ]
        await self._streams.start(nc)
        self._spawn(self._ops.publish(lambda: self._nc, self._subjects.stats, self.statistics))
        self._spawn(self._publish_states())
        self._spawn(
            heartbeat(
                lambda: self._nc,
                self._subjects.state,
                self._id,
                self._state,
                lambda: {"pacing": encode(self._session.pacing_statistics())},
            )
        )
        await nc.flush()
        _log.info("hub %s serving on %s", self._name, self._url)

    async def aclose(self) -> None:
        """Stop answering, cancel every TWS subscription, leave NATS; the session stays open."""
        for sub in self._subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        self._subs = []
        await stop_tasks(self._tasks)
        await self._journal.aclose()
        await self._streams.aclose()
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await leave_nats(nc)

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def statistics(self) -> dict[str, Any]:
        """What ``ibflow.<name>.stats`` publishes: remote sessions, instruments at TWS and
        their leases, lines, pacing, orders relayed, the other streams' feeds, the journal's
        publications, uptime (see ``docs/hub.md``)."""
        return {
            **self._ops.snapshot(
                session=self._session,
                instruments=self._streams.instruments(),
                held=self._streams.held(),
                lines_used=self._streams.lines,
                max_lines=self._max_lines,
                orders_relayed=self._orders_relayed,
                url=self._url,
            ),
            **self._streams.statistics(),
            **self._journal.statistics(),
        }

    def _state(self) -> ibflow.ConnectionState:
        return self._session.state

    # -- request-reply -------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_request(self, msg: Msg) -> None:
        # nats-py runs one callback at a time per subscription: answer in a task of its own.
        self._spawn(self._answer(msg))

    async def _answer(self, msg: Msg) -> None:
        method = self._subjects.method_of(msg.subject)
        their_limit: object = None
        try:
            request = loads(msg.data)
            their_limit = request.get("max")
            remote = check_name(request.get("name"), "the remote session's name")
            self._ops.seen(remote, request=True)
            args = decode(request.get("args", []))
            kwargs = decode(request.get("kwargs", {"$m": {}}))
            result = await self._dispatch(method, remote, args, kwargs)
            reply = {"ok": encode(result)}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._ops.failed += 1
            if not isinstance(exc, ibflow.IBFlowError):
                _log.exception("hub %s: %s failed", self._name, method)
            reply = {"error": encode_error(exc)}
        if msg.reply and self._nc is not None:
            limit = part_limit(self._nc.max_payload, their_limit)
            with contextlib.suppress(nats.errors.Error):
                await send_answer(self._nc, msg.reply, dumps(reply), limit)

    async def _dispatch(
        self, method: str, remote: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        if method in _READS:
            call: Callable[..., Awaitable[Any]] = getattr(self._session, method)
            return await call(*args, **kwargs)
        handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "hello": self._hello,
            "place": self._place,
            "order.wait": self._wait_order,
            "order.cancel": self._cancel_order,
            "order.modify": self._modify_order,
            "group.cancel": self._cancel_group,
            "cancel_order": self._cancel_by_id,
            "download": self._download,
            "feed.open": self._streams.open,
            "quote": self._streams.quote,
        }
        handler = handlers.get(method)
        if handler is None:
            raise ibflow.InvalidRequest(f"hub {self._name!r} serves no method {method!r}")
        return await handler(remote, *args, **kwargs)

    async def _hello(self, remote: str) -> dict[str, Any]:
        session = self._session
        return {
            "state": session.state,
            "accounts": list(session.accounts),
            "is_paper": session.is_paper,
            "lease_ttl": self._lease_ttl,
            "readonly": remote in self._readonly,
            "hub_id": self._id,
            "pacing": encode(session.pacing_statistics()),
        }

    async def _publish_states(self) -> None:
        async with self._session.state_changes() as changes:
            async for change in changes:
                if self._nc is not None:
                    payload = dumps({"state": encode(change.current)})
                    with contextlib.suppress(nats.errors.Error):
                        await self._nc.publish(self._subjects.state, payload)

    # -- orders --------------------------------------------------------------------------------

    def _check_trader(self, remote: str) -> None:
        if remote in self._readonly:
            raise ibflow.SafetyError(
                f"remote session {remote!r} is read-only at hub {self._name!r}: it may read "
                "and stream but not trade"
            )

    async def _place(
        self,
        remote: str,
        contract: ibflow.Contract,
        order: ibflow.Order | ibflow.Bracket | ibflow.OcaGroup,
        *,
        key: str,
        timeout: float | None,
    ) -> dict[str, Any]:
        self._check_trader(remote)
        if not isinstance(key, str) or not key:
            raise ibflow.InvalidRequest(f"key must be a non-empty str, got {key!r}")
        assert self._orders_kv is not None
        kv_key = hashlib.sha256(key.encode()).hexdigest()
        if not isinstance(order, ibflow.Order | ibflow.Bracket | ibflow.OcaGroup):
            raise ibflow.InvalidRequest(
                f"order must be an ibflow.Order, Bracket or OcaGroup, got {type(order).__name__}"
            )
        order = tagged(order, remote, kv_key)  # before the claim: a refused tag burns no key
        legs: list[ibflow.Order]
        if isinstance(order, ibflow.Order):
            kind, legs = "order", [order]
        elif isinstance(order, ibflow.Bracket):
            kind, legs = "bracket", [order.parent, order.take_profit, order.stop_loss]
        else:
            kind, legs = "group", list(order.orders)
        claim = {"state": "placing", "by": remote, "hub": self._id, "claim": uuid.uuid4().hex}
        claimed = False
        if kv_key not in self._placing:  # else a request of this hub with this key is placing
            self._placing.add(kv_key)
            try:
                claimed = await self._kv(lambda: self._claim(kv_key, claim))
            finally:
                if not claimed:
                    self._placing.discard(kv_key)
        if not claimed:
            return await self._placed_before(kv_key, key, timeout, (kind, legs))
        try:
            try:
                placed = await self._session.place(contract, order, timeout=timeout)
            except BaseException as exc:
                if isinstance(exc, ibflow.OrderRejected) and exc.trade is not None:
                    self._journal.follow(exc.trade, remote)
                failed = dumps({"state": "failed", "error": encode_error(exc)})
                await asyncio.shield(self._kv(lambda: self._orders_kv_put(kv_key, failed)))
                raise
            self._desk.keep(placed)
            for trade in (placed,) if isinstance(placed, ibflow.Trade) else placed.trades:
                self._journal.follow(trade, remote)
            self._orders_relayed += 1
            result = {**describe(placed), "key": key}
            done = dumps({"state": "placed", "result": encode(result)})
            await self._kv(lambda: self._orders_kv_put(kv_key, done))
        finally:
            self._placing.discard(kv_key)
        _log.info("hub %s: %s placed %r (key %s)", self._name, remote, placed, key)
        return {**result, "duplicate": False}

    async def _claim(self, kv_key: str, claim: dict[str, Any]) -> bool:
        """Create the key's entry; True when it is this request's (also after a create whose
        answer was lost and is tried again)."""
        assert self._orders_kv is not None
        try:
            await self._orders_kv.create(kv_key, dumps(claim))
        except nats.js.errors.KeyWrongLastSequenceError:
            entry = await self._orders_kv.get(kv_key)
            return bool(loads(entry.value or b"{}").get("claim") == claim["claim"])
        return True

    async def _orders_kv_put(self, kv_key: str, value: bytes) -> None:
        assert self._orders_kv is not None
        await self._orders_kv.put(kv_key, value)

    async def _kv(self, write: Callable[[], Awaitable[Any]]) -> Any:
        """A write to the order-key bucket, tried again while JetStream is briefly away (a
        NATS cluster electing the bucket's leader after losing a node)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _KV_PATIENCE
        while True:
            try:
                return await write()
            except _KV_AWAY as exc:
                if loop.time() >= give_up:
                    raise ibflow.ConnectionLost(
                        f"hub {self._name!r}'s order-key bucket did not answer for "
                        f"{_KV_PATIENCE:g} s ({type(exc).__name__}); place again with the same "
                        "key: it is never placed twice"
                    ) from None
                await asyncio.sleep(_CLAIM_POLL * 10)

    async def _placed_before(
        self, kv_key: str, key: str, timeout: float | None, placing: tuple[str, list[ibflow.Order]]
    ) -> dict[str, Any]:
        """The outcome of the first request with this key, waiting while it is in flight."""
        assert self._orders_kv is not None
        async with asyncio.timeout(timeout):
            while True:
                try:
                    entry = await self._orders_kv.get(kv_key)
                except nats.js.errors.KeyNotFoundError:
                    if kv_key in self._placing:  # this hub's request is still claiming it
                        await asyncio.sleep(_CLAIM_POLL)
                        continue
                    raise ibflow.ConnectionLost(
                        f"hub {self._name!r} could not claim this key in its order-key bucket; "
                        "nothing was placed: place again with the same key"
                    ) from None
                record = loads(entry.value or b"{}")
                if record.get("state") == "placing" and (
                    record.get("hub") != self._id or kv_key not in self._placing
                ):  # its hub died, or this one gave up on the bucket: TWS knows what happened
                    record = await self._settle(kv_key, key, record, entry.revision, placing)
                if record.get("state") == "placed":
                    return {**decode(record["result"]), "duplicate": True}
                if record.get("state") == "failed":
                    raise decode_error(record["error"])
                await asyncio.sleep(_CLAIM_POLL)

    async def _settle(
        self,
        kv_key: str,
        key: str,
        record: dict[str, Any],
        revision: int | None,
        placing: tuple[str, list[ibflow.Order]],
    ) -> Any:
        """A key another hub was placing when it died: what TWS knows of its orders decides.

        ``placing`` is the retry's kind and orders, tagged: the same key places the same
        orders."""
        assert self._orders_kv is not None
        kind, legs = placing
        rows = await self._journal.find(record.get("by", ""), kv_key)
        settled: dict[str, Any]
        if rows and len(rows) == len(legs):
            result = {
                "kind": kind,
                "orders": [
                    {"order_id": r.order_id, "status": r.status, "order": leg}
                    for r, leg in zip(rows, legs, strict=True)
                ],
                "key": key,
            }
            settled = {"state": "placed", "result": encode(result)}
        else:
            what = (
                "before TWS had it; nothing was placed: place it again with a new key"
                if not rows
                else f"when TWS had only orders {[r.order_id for r in rows]} of its "
                f"{len(legs)}: cancel them, then place it again with a new key"
            )
            lost = ibflow.ConnectionLost(
                f"hub {self._name!r} failed over (or lost its order-key bucket) while placing "
                f"this order, {what}"
            )
            settled = {"state": "failed", "error": encode_error(lost)}
        try:
            await self._orders_kv.update(kv_key, dumps(settled), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:  # settled by a concurrent retry
            return loads((await self._orders_kv.get(kv_key)).value or b"{}")
        return settled

    async def _wait_order(self, remote: str, order_id: int, **options: Any) -> dict[str, Any]:
        return await self._desk.wait(order_id, **options)

    def _check_owner(self, remote: str, order_ids: Iterable[object]) -> None:
        """An order this hub placed for one remote name is that name's to change or cancel."""
        for order_id in order_ids:
            if isinstance(order_id, int) and self._desk.knows(order_id):
                owner = owner_of(self._desk.trade(order_id).order.order_ref)
                if owner is not None and owner[0] != remote:
                    raise ibflow.InvalidRequest(
                        f"order {order_id} was placed through hub {self._name!r} by "
                        f"{owner[0]!r}: only that remote session may change or cancel it"
                    )

    async def _check_earlier_order(self, remote: str, order_id: int) -> None:
        """An order an earlier leader placed is ``remote``'s to change only if it is still
        working at TWS under ``remote``'s tag."""
        if await self._journal.working_owner(order_id) != remote:
            raise ibflow.InvalidRequest(
                f"order {order_id} is not a working order {remote!r} placed through hub "
                f"{self._name!r}"
            )

    async def _cancel_order(
        self, remote: str, order_id: int, *, timeout: float | None
    ) -> ibflow.OrderStatus:
        self._check_trader(remote)
        self._check_owner(remote, [order_id])
        if isinstance(order_id, int) and not self._desk.knows(order_id):
            # Placed by an earlier leader: TWS lets this hub's client id cancel it.
            await self._check_earlier_order(remote, order_id)
            return await self._session.cancel_order(order_id, timeout=timeout)
        return await self._desk.trade(order_id).cancel(timeout=timeout)

    async def _modify_order(self, remote: str, order_id: int, **changes: Any) -> dict[str, Any]:
        self._check_trader(remote)
        self._check_owner(remote, [order_id])
        if isinstance(order_id, int) and not self._desk.knows(order_id):
            # Placed by an earlier leader: this hub's session adopted it from TWS's open orders
            # (same client id), so it may change it for the remote that placed it.
            await self._check_earlier_order(remote, order_id)
            adopted = [t for t in self._session.trades() if t.order_id == order_id and t.owned]
            if adopted:
                self._desk.keep(adopted[-1])
        return await self._desk.modify(order_id, **changes)

    async def _cancel_group(
        self, remote: str, order_ids: list[int], *, timeout: float | None
    ) -> list[dict[str, Any]]:
        self._check_trader(remote)
        self._check_owner(remote, order_ids if isinstance(order_ids, list) else [])
        return await self._desk.cancel_group(order_ids, timeout=timeout)

    async def _cancel_by_id(
        self, remote: str, order_id: int, *, timeout: float | None
    ) -> ibflow.OrderStatus:
        self._check_trader(remote)
        self._check_owner(remote, [order_id])
        if isinstance(order_id, int) and not self._desk.knows(order_id):
            owner = await self._journal.working_owner(order_id)
            if owner is not None and owner != remote:
                raise ibflow.InvalidRequest(
                    f"order {order_id} was placed through hub {self._name!r} by {owner!r}: "
                    "only that remote session may cancel it"
                )
        return await self._session.cancel_order(order_id, timeout=timeout)

    async def _download(
        self, remote: str, contract: ibflow.Contract, *, cache: object, **options: Any
    ) -> list[ibflow.Bar]:
        if not isinstance(cache, bool):
            raise ibflow.InvalidRequest(
                "through a hub, download(cache=) is True (the hub's cache) or False; a cache "
                f"object or path would name one on the hub's machine, got {cache!r}"
            )
        return await self._session.download(
            contract, cache=cache, progress=False, on_progress=None, **options
        )
