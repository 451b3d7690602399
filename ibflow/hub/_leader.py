"""Leadership among hubs of one name: a lease in a JetStream key-value bucket.

Every hub of a name runs the same command. The one that creates the key ``leader`` in the
bucket ``ibflow_<hub>_leader`` leads: it connects to TWS and serves. It renews the entry
(compare-and-set on its revision) three times per lease; the bucket's age limit is the lease,
so the entry of a dead leader vanishes by itself and a standby's create succeeds. A leader that
cannot renew within its lease, or finds another holder, stops serving.

The leading hub also publishes a heartbeat on ``ibflow.<hub>.state`` (its id and state), from
which remote sessions notice a dead leader and a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

import ibflow

from ._protocol import dumps, encode, loads

__all__ = ["Leadership", "LeadershipLost", "heartbeat"]

_log = logging.getLogger("ibflow.hub")
_KEY = "leader"
HEARTBEAT_EVERY = 0.25  # seconds between a serving hub's heartbeats


class LeadershipLost(ibflow.ConnectionLost):
    """This hub no longer holds its name's leadership lease."""


class Leadership:
    """The lease of hub ``hub`` on the NATS connection ``nc``; see the module doc.

    ``ttl`` and ``replicas`` apply when this hub creates the bucket; an existing bucket keeps
    its own.
    """

    def __init__(
        self,
        nc: NATS,
        hub: str,
        *,
        ttl: float,
        replicas: int = 1,
        holder: str | None = None,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 0.5:
            raise ibflow.InvalidRequest(f"the leader lease must be >= 0.5 s, got {ttl!r}")
        self._nc = nc
        self._hub = hub
        self._ttl = float(ttl)
        self._replicas = replicas
        self.holder = holder or uuid.uuid4().hex[:12]
        self._kv: KeyValue | None = None
        self._revision: int | None = None
        self._renewed = 0.0

    @property
    def ttl(self) -> float:
        return self._ttl

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            js = self._nc.jetstream()
            bucket = f"ibflow_{self._hub}_leader"
            try:
                self._kv = await js.create_key_value(
                    bucket=bucket, history=1, ttl=self._ttl, replicas=self._replicas
                )
            except nats.js.errors.ServiceUnavailableError:
                raise ibflow.ConnectError(
                    "the NATS server has no JetStream: start it with `nats-server -js`"
                ) from None
            except nats.js.errors.BadRequestError:  # made by a hub with another lease
                self._kv = await js.key_value(bucket)
                status = await self._kv.status()
                self._ttl = status.ttl or self._ttl
        return self._kv

    def _value(self) -> bytes:
        return dumps({"holder": self.holder, "since": encode(time.time())})

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this hub leads now."""
        kv = await self._bucket()
        try:
            self._revision = await kv.create(_KEY, self._value())
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        self._renewed = time.monotonic()
        _log.info("hub %s: %s took the leadership lease", self._hub, self.holder)
        return True

    async def holder_now(self) -> str | None:
        """Who holds the lease now, if anyone."""
        kv = await self._bucket()
        try:
            entry = await kv.get(_KEY)
        except nats.js.errors.KeyNotFoundError:
            return None
        with contextlib.suppress(ibflow.IBFlowError, AttributeError):
            holder = loads(entry.value or b"{}").get("holder")
            return holder if isinstance(holder, str) else None
        return None

    async def acquire(self, *, poll: float | None = None) -> None:
        """Wait until this hub takes the lease (a standby's wait)."""
        every = poll if poll is not None else min(0.2, self._ttl / 10)
        while True:
            try:
                if await self.try_acquire():
                    return
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                _log.warning("hub %s: cannot reach the lease bucket: %s", self._hub, exc)
            await asyncio.sleep(every)

    async def hold(self) -> None:
        """Renew the lease until cancelled; raises ``LeadershipLost`` once it is gone."""
        kv = await self._bucket()
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                async with asyncio.timeout(self._ttl / 3):
                    self._revision = await kv.update(_KEY, self._value(), last=self._revision)
                self._renewed = time.monotonic()
                continue
            except nats.js.errors.KeyWrongLastSequenceError:
                # Expired (a long NATS outage) or taken: take it back only if nobody holds it.
                if await self.try_acquire():
                    continue
                raise LeadershipLost(
                    f"hub {self._hub!r}: another hub holds the leadership lease now"
                ) from None
            except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
                _log.warning(
                    "hub %s: could not renew the leadership lease: %s",
                    self._hub,
                    exc or type(exc).__name__,
                )
            if time.monotonic() - self._renewed > self._ttl:
                raise LeadershipLost(
                    f"hub {self._hub!r}: the leadership lease lapsed ({self._ttl:g} s without a "
                    "renewal: NATS is unreachable)"
                )

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so a standby need not wait it out."""
        if self._kv is None or self._revision is None:
            return
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
            await self._kv.delete(_KEY, last=self._revision)
        self._revision = None


async def heartbeat(
    nc: Callable[[], NATS | None],
    subject: str,
    hub_id: str,
    state: Callable[[], ibflow.ConnectionState],
    extra: Callable[[], dict[str, Any]] = dict,
) -> None:
    """Publish ``{"state", "hub_id", "every"}`` and ``extra()`` on ``subject`` every
    ``HEARTBEAT_EVERY``."""
    while True:
        client = nc()
        if client is not None:
            beat = {"state": encode(state()), "hub_id": hub_id, "every": HEARTBEAT_EVERY}
            payload = dumps({**beat, **extra()})
            with contextlib.suppress(nats.errors.Error):
                await client.publish(subject, payload)
        await asyncio.sleep(HEARTBEAT_EVERY)
