"""What a running hub tells its operators: who is connected, what it holds at TWS, how busy.

The hub publishes a snapshot as plain JSON on ``ibflow.<hub>.stats`` every ``stats_interval``
seconds and answers requests on ``ibflow.<hub>.stats.get`` with the same snapshot, so
``ibflow doctor --hub``, ``nats sub 'ibflow.*.stats'`` or any dashboard can read it without
ibflow's codec. Every ``log_interval`` seconds it also logs one summary line.

A remote session counts as connected while it is heard from: every call, and the lease renewal
it sends every third of the lease lifetime even with no stream open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

import ibflow

from ._access import NatsAccess, connect_nats
from ._protocol import Subjects, check_name

__all__ = ["HubOps", "fetch_stats", "summary"]

_log = logging.getLogger("ibflow.hub")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FORGET_AFTER = 600.0  # seconds after which a silent remote leaves the list
STATS_FORMAT = 1


@dataclass(slots=True)
class _Remote:
    first_seen: float
    last_seen: float
    requests: int = 0


class HubOps:
    """A hub's counters and its statistics publisher (one per ``Hub``)."""

    def __init__(self, hub: str, *, lease_ttl: float, stats_interval: float, log_interval: float):
        for what, value in (("stats_interval", stats_interval), ("log_interval", log_interval)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ibflow.InvalidRequest(f"{what} must be > 0 seconds, got {value!r}")
        self.hub = hub
        self.lease_ttl = lease_ttl
        self.stats_interval = float(stats_interval)
        self.log_interval = float(log_interval)
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.requests = 0
        self.failed = 0
        self._remotes: dict[str, _Remote] = {}

    # -- counting ------------------------------------------------------------------------------

    def seen(self, remote: object, *, request: bool = False) -> None:
        """``remote`` was heard from (a call, or a renewal)."""
        if not isinstance(remote, str) or not _NAME.match(remote):
            return
        now = time.monotonic()
        entry = self._remotes.get(remote)
        if entry is None:
            entry = self._remotes[remote] = _Remote(first_seen=now, last_seen=now)
            _log.info("hub %s: remote session %s connected", self.hub, remote)
        entry.last_seen = now
        if request:
            entry.requests += 1
            self.requests += 1

    # -- the snapshot --------------------------------------------------------------------------

    def snapshot(
        self,
        *,
        session: ibflow.Session,
        instruments: Mapping[int, tuple[ibflow.Contract, Collection[str]]],
        held: Mapping[str, int],
        lines_used: int,
        max_lines: int,
        orders_relayed: int,
        url: str,
    ) -> dict[str, Any]:
        """The hub's statistics as JSON-ready data (see ``docs/hub.md`` for the fields).

        ``instruments``: per ``con_id``, the contract quoted and the remote name of each
        lease on it; ``held``: leases per remote name, on every stream."""
        now = time.monotonic()
        for name in [n for n, r in self._remotes.items() if now - r.last_seen > _FORGET_AFTER]:
            del self._remotes[name]
        quoted: list[dict[str, Any]] = [
            {
                "con_id": con_id,
                "symbol": contract.symbol,
                "sec_type": contract.sec_type,
                "leases": len(owners),
                "consumers": sorted(set(owners)),
            }
            for con_id, (contract, owners) in sorted(instruments.items())
        ]
        remotes: list[dict[str, Any]] = [
            {
                "name": name,
                "connected": now - r.last_seen <= 2 * self.lease_ttl + 1.0,
                "last_seen": round(now - r.last_seen, 3),
                "since": round(now - r.first_seen, 3),
                "requests": r.requests,
                "leases": held.get(name, 0),
            }
            for name, r in sorted(self._remotes.items())
        ]
        pacing = session.pacing_statistics()
        leases = sum(i["leases"] for i in quoted)
        return {
            "format": STATS_FORMAT,
            "hub": self.hub,
            "time": datetime.now(UTC).isoformat(),
            "started_at": self.started_at.isoformat(),
            "uptime": round(now - self.started, 3),
            "nats": url,
            "state": session.state.value,
            "tws": {
                "client_id": session.client_id,
                "accounts": list(session.accounts),
                "paper": session.is_paper,
            },
            "consumers": sum(1 for r in remotes if r["connected"]),
            "remotes": remotes,
            "subscriptions": len(quoted),
            "leases": leases,
            "lines_used": lines_used,
            "lines_limit": max_lines,
            "lines_free": max_lines - lines_used,
            "instruments": quoted,
            "pacing": {
                "historical_requests": pacing.historical_requests,
                "open_requests": pacing.open_requests,
                "waits": pacing.waits,
                "waited": round(pacing.waited, 3),
                "violations": pacing.violations,
                "tick_by_tick_requests": pacing.tick_by_tick_requests,
            },
            "orders_relayed": orders_relayed,
            "requests": self.requests,
            "failed_requests": self.failed,
        }

    # -- publishing ----------------------------------------------------------------------------

    async def answer(self, msg: Msg, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Reply to a ``stats.get`` request with a fresh snapshot."""
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(json.dumps(snapshot()).encode())

    async def publish(
        self, nc: Callable[[], NATS | None], subject: str, snapshot: Callable[[], dict[str, Any]]
    ) -> None:
        """Publish every ``stats_interval`` and log a summary every ``log_interval``, forever."""
        next_log = time.monotonic() + self.log_interval
        while True:
            await asyncio.sleep(self.stats_interval)
            stats = snapshot()
            conn = nc()
            if conn is not None and conn.is_connected:
                with contextlib.suppress(nats.errors.Error):
                    await conn.publish(subject, json.dumps(stats).encode())
            if time.monotonic() >= next_log:
                next_log += self.log_interval
                _log.info("%s", summary(stats))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def summary(stats: Mapping[str, Any]) -> str:
    """One line for the log: the figures an operator scans for."""
    pacing = stats["pacing"]
    return (
        f"hub {stats['hub']}: {stats['state']}, {stats['consumers']} remote sessions, "
        f"{stats['subscriptions']} instruments at TWS for {stats['leases']} leases "
        f"(lines {stats['lines_used']}/{stats['lines_limit']}, tick-by-tick "
        f"{stats['tick_by_tick_used']}/{stats['tick_by_tick_limit']}), "
        f"{pacing['historical_requests']} history requests ({pacing['waits']} waited "
        f"{pacing['waited']:.1f} s, {pacing['violations']} pacing violations), "
        f"{stats['orders_relayed']} orders relayed, {stats['requests']} calls "
        f"({stats['failed_requests']} failed), up {_duration(stats['uptime'])}"
    )


async def fetch_stats(
    access: NatsAccess,
    hub: str | None,
    *,
    timeout: float = 5.0,
    connect_timeout: float = 2.0,
    listen: float = 2.5,
) -> list[dict[str, Any]]:
    """The statistics of the hub named ``hub`` (asked for, waiting ``timeout`` seconds), or of
    every hub heard publishing within ``listen`` seconds; ``[]`` when none answers.

    Raises:
        ConnectError / AccessDenied: the NATS server is unreachable or refuses the credentials.
        InvalidRequest: ``hub`` is not a valid hub name.
    """
    if hub is not None:
        check_name(hub, "the hub's name")
    nc = await connect_nats(access, name="ibflow-doctor", timeout=connect_timeout)
    try:
        if hub is not None:
            try:
                msg = await nc.request(Subjects(hub).stats_get, b"", timeout=timeout)
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                return []
            return [json.loads(msg.data)]
        heard: dict[str, dict[str, Any]] = {}

        async def on_stats(msg: Msg) -> None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                stats = json.loads(msg.data)
                heard[str(stats["hub"])] = stats

        await nc.subscribe(Subjects("*").stats, cb=on_stats)
        await asyncio.sleep(listen)
        return [heard[name] for name in sorted(heard)]
    finally:
        with contextlib.suppress(nats.errors.Error):
            await nc.close()
