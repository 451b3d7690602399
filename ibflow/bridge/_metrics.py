"""``GET /metrics``: the session's and the bridge's counters in Prometheus' text format.

The session already counts what matters (``Session.statistics()``, ``pacing_statistics()``);
this module reads those at scrape time instead of keeping copies, and adds what only the bridge
sees: request latencies per route, orders placed and refused, WebSockets open, stream items
dropped behind slow clients and subscription requests refused. Each app has a registry of its
own, so several bridges in one process never mix their numbers.

A session closed by ``POST /api/v1/disconnect`` hands its counters to the next one, so totals
stay monotonic across reconnects of the bridge.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import ibflow

__all__ = ["Metrics", "Timing"]

_CARRIED = ("reconnects", "messages_in", "messages_out", "throttle_events")
_CARRIED_PACING = ("waits", "waited", "violations")


class Metrics(Collector):
    """One app's registry: live session readings plus the bridge's own instruments."""

    def __init__(self, session: Callable[[], ibflow.Session | None]) -> None:
        self._session = session
        self._carried: dict[str, float] = dict.fromkeys((*_CARRIED, *_CARRIED_PACING), 0.0)
        self._streams: weakref.WeakSet[ibflow.Stream[Any]] = weakref.WeakSet()
        self._dropped_closed = 0
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self.latency = Histogram(
            "ibflow_bridge_request_duration_seconds",
            "HTTP request latency by route, method and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.orders_placed = Counter(
            "ibflow_bridge_orders_placed",
            "Orders placed through POST /orders (repeats of a key not counted).",
            registry=self.registry,
        )
        self.orders_rejected = Counter(
            "ibflow_bridge_orders_rejected",
            "Orders refused, by ibflow or by IB, by error class.",
            ("error",),
            registry=self.registry,
        )
        self.websockets = Gauge(
            "ibflow_bridge_websockets",
            "WebSockets open now, by path.",
            ("path",),
            registry=self.registry,
        )
        self.churn_refused = Counter(
            "ibflow_bridge_subscription_changes_refused",
            "Subscribe/unsubscribe requests refused by the per-connection limit.",
            registry=self.registry,
        )

    # -- what the bridge reports to it ----------------------------------------------------------

    def watch(self, stream: ibflow.Stream[Any]) -> None:
        """Count ``stream``'s dropped items (while open, then in the total once released)."""
        self._streams.add(stream)

    def release(self, stream: ibflow.Stream[Any]) -> None:
        if stream in self._streams:
            self._streams.discard(stream)
            self._dropped_closed += stream.statistics().dropped

    def retire(self, session: ibflow.Session) -> None:
        """Keep a session's totals before it closes for good (the next one adds to them)."""
        stats = session.statistics()
        for name in _CARRIED:
            self._carried[name] += getattr(stats, name)
        pacing = session.pacing_statistics()
        for name in _CARRIED_PACING:
            self._carried[name] += getattr(pacing, name)

    # -- the Prometheus collector ---------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        session = self._session()
        stats = session.statistics() if session is not None else None
        pacing = session.pacing_statistics() if session is not None else None
        state = stats.state if stats is not None else ibflow.ConnectionState.DISCONNECTED

        states = GaugeMetricFamily(
            "ibflow_connection_state", "1 for the session's current state.", labels=("state",)
        )
        for each in ibflow.ConnectionState:
            states.add_metric((each.value,), 1.0 if each is state else 0.0)
        yield states
        yield GaugeMetricFamily(
            "ibflow_connected",
            "1 when the session is READY.",
            value=1.0 if state is ibflow.ConnectionState.READY else 0.0,
        )

        def counter(name: str, text: str, source: object, field: str) -> CounterMetricFamily:
            now = getattr(source, field) if source is not None else 0
            return CounterMetricFamily(name, text, value=self._carried[field] + now)

        yield counter("ibflow_reconnects", "Reconnects after a lost link.", stats, "reconnects")
        yield counter("ibflow_messages_in", "API messages received.", stats, "messages_in")
        yield counter("ibflow_messages_out", "API messages sent.", stats, "messages_out")
        yield counter(
            "ibflow_throttle_events",
            "Times the outbound 45 msg/s throttle held messages back.",
            stats,
            "throttle_events",
        )
        yield GaugeMetricFamily(
            "ibflow_active_subscriptions",
            "Market data, bar and account subscriptions open on the session.",
            value=stats.active_subscriptions if stats else 0,
        )
        yield GaugeMetricFamily(
            "ibflow_in_flight_requests",
            "Requests waiting for their answer.",
            value=stats.in_flight_requests if stats else 0,
        )
        yield counter(
            "ibflow_pacing_waits",
            "Historical requests that waited for IB's pacing rules.",
            pacing,
            "waits",
        )
        yield counter(
            "ibflow_pacing_waited_seconds",
            "Seconds historical requests spent waiting for IB's pacing rules.",
            pacing,
            "waited",
        )
        yield counter(
            "ibflow_pacing_violations",
            "Pacing violations IB still answered with.",
            pacing,
            "violations",
        )
        dropped = self._dropped_closed + sum(s.statistics().dropped for s in list(self._streams))
        yield CounterMetricFamily(
            "ibflow_bridge_stream_items_dropped",
            "Stream items skipped behind slow WebSocket clients (quotes keep the newest).",
            value=dropped,
        )


class Timing:
    """ASGI middleware: each HTTP request's latency, labelled with its route's template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )
