"""IB's numeric error codes, mapped once to ibflow exception classes and severities.

TWS reports everything through one ``errMsg`` message: data-farm status, lost connectivity,
rejected orders and unknown contracts all look alike on the wire. Callers need to know which
of them fail a request, which only inform, and which concern the link itself. Deciding that in
one literal table (the asyncpg way, seeded from the codes the nautilus adapter and ib_async
single out) keeps the rest of ibflow free of magic numbers and makes the decision reviewable.

Severities:

* ``INFO``: informational (farm status, 1101/1102); delivered by ``session.notices()``, logged,
  never raised.
* ``WARNING``: something to look at, but the request or order goes on (10167 delayed data,
  2109, 404); delivered by ``notices()``, logged as a warning, never raised.
* ``ERROR``: the request it is addressed to failed; raised to that caller as the mapped class.
* ``CONNECTION``: about the link itself (326, 502, 504, 1100, 1300); the session acts on it
  (fails the connect, reconnects) instead of failing one request.

Unknown codes fall back to ``RequestError`` (``ERROR``), except IB's 2100–2199 warning band,
which stays ``WARNING``. The code is always kept on the exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ._errors import (
    AmbiguousContract,
    ClientIdInUse,
    ConnectError,
    ConnectionLost,
    ContractNotFound,
    IBFlowError,
    MarketDataError,
    OrderRejected,
    PacingViolation,
    RequestError,
)

__all__ = ["CODES", "CodeInfo", "Severity", "error_for", "is_raised", "lookup"]


class Severity(StrEnum):
    """How ibflow treats an IB error code; see the module docstring."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CONNECTION = "connection"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One row of the table: what an IB code means to ibflow."""

    code: int
    error_class: type[IBFlowError]
    severity: Severity
    summary: str
    hint: str = ""


_I, _W, _E, _C = Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CONNECTION

_ROWS: tuple[CodeInfo, ...] = (
    # -- pacing and request plumbing ------------------------------------------------------
    CodeInfo(
        100,
        PacingViolation,
        _E,
        "max rate of messages per second exceeded",
        "stay under 50 messages/s; repeated violations make TWS drop the connection",
    ),
    CodeInfo(
        101,
        MarketDataError,
        _E,
        "max number of tickers reached",
        "cancel market-data subscriptions you no longer need or buy more market-data lines",
    ),
    CodeInfo(102, RequestError, _E, "duplicate ticker id"),
    CodeInfo(
        103,
        OrderRejected,
        _E,
        "duplicate order id",
        "order ids must increase per client id; another process may use the same client id",
    ),
    CodeInfo(104, OrderRejected, _E, "cannot modify a filled order"),
    CodeInfo(105, OrderRejected, _W, "modified order does not match the original"),
    CodeInfo(110, OrderRejected, _E, "price does not conform to the minimum price variation"),
    CodeInfo(111, OrderRejected, _E, "time in force and order type are incompatible"),
    CodeInfo(135, OrderRejected, _E, "cannot find order with this id"),
    CodeInfo(161, OrderRejected, _E, "order is not in a cancellable state"),
    CodeInfo(
        162,
        MarketDataError,
        _E,
        "historical market data service error",
        "check the bar size, duration and what-to-show; a 'pacing violation' text means wait",
    ),
    CodeInfo(165, RequestError, _I, "historical market data service query message"),
    CodeInfo(166, MarketDataError, _E, "historical data for an expired contract"),
    # -- contracts and orders -------------------------------------------------------------
    CodeInfo(
        200,
        ContractNotFound,
        _E,
        "no security definition found",
        "check symbol, sec type, exchange and currency, or pass a con_id",
    ),
    CodeInfo(201, OrderRejected, _E, "order rejected"),
    CodeInfo(202, OrderRejected, _W, "order cancelled"),
    CodeInfo(203, OrderRejected, _E, "security not available or not allowed for this account"),
    CodeInfo(300, RequestError, _E, "cannot find the request id"),
    CodeInfo(309, MarketDataError, _E, "max number of market depth requests reached"),
    CodeInfo(310, MarketDataError, _E, "cannot find the subscribed market depth"),
    CodeInfo(317, MarketDataError, _W, "market depth data has been reset"),
    CodeInfo(321, RequestError, _E, "error validating request"),
    CodeInfo(322, RequestError, _E, "error processing request"),
    CodeInfo(
        326,
        ClientIdInUse,
        _C,
        "client id already in use",
        "use another client id, or stop the other program using this one",
    ),
    CodeInfo(
        354,
        MarketDataError,
        _E,
        "requested market data is not subscribed",
        "subscribe to the market data in Account Management, or request delayed data",
    ),
    CodeInfo(
        366,
        RequestError,
        _E,
        "no historical data query found for this id",
        "the request was already cancelled or finished",
    ),
    CodeInfo(399, OrderRejected, _W, "order message warning"),
    CodeInfo(404, OrderRejected, _W, "shares not immediately available for short sale"),
    CodeInfo(420, MarketDataError, _E, "invalid real-time query"),
    CodeInfo(430, RequestError, _E, "fundamental data not available"),
    CodeInfo(434, OrderRejected, _E, "order size cannot be zero"),
    # -- the link ------------------------------------------------------------------------
    CodeInfo(501, ConnectError, _C, "already connected"),
    CodeInfo(
        502,
        ConnectError,
        _C,
        "could not connect to TWS",
        "is TWS/Gateway running, API enabled, this host trusted, fewer than 32 clients?",
    ),
    CodeInfo(503, ConnectError, _C, "TWS is out of date and must be upgraded"),
    CodeInfo(504, ConnectionLost, _C, "not connected"),
    CodeInfo(507, ConnectionLost, _C, "bad message length or socket EOF"),
    CodeInfo(
        1100,
        ConnectionLost,
        _C,
        "connectivity between IB and TWS has been lost",
        "TWS will report 1101 or 1102 when it is back",
    ),
    CodeInfo(
        1101,
        RequestError,
        _I,
        "connectivity restored, data lost",
        "subscriptions are re-issued",
    ),
    CodeInfo(1102, RequestError, _I, "connectivity restored, data maintained"),
    CodeInfo(
        1300,
        ConnectionLost,
        _C,
        "TWS socket port has been reset",
        "reconnect on the new port",
    ),
    # -- the 2100 band: farm status and warnings ------------------------------------------
    CodeInfo(2100, RequestError, _W, "unsubscribed from account data"),
    CodeInfo(2101, RequestError, _W, "cannot subscribe to account: another client holds it"),
    CodeInfo(2102, OrderRejected, _W, "order still being processed; cannot modify yet"),
    CodeInfo(2103, MarketDataError, _W, "a market data farm is disconnected"),
    CodeInfo(2104, RequestError, _I, "market data farm connection is OK"),
    CodeInfo(2105, MarketDataError, _W, "a historical data farm is disconnected"),
    CodeInfo(2106, RequestError, _I, "historical data farm connection is OK"),
    CodeInfo(2107, RequestError, _I, "historical data farm inactive, available on demand"),
    CodeInfo(2108, RequestError, _I, "market data farm inactive, available on demand"),
    CodeInfo(2109, OrderRejected, _W, "outside-regular-hours attribute ignored"),
    CodeInfo(2110, ConnectionLost, _W, "TWS to server connectivity broken; will be restored"),
    CodeInfo(2119, RequestError, _I, "market data farm is connecting"),
    CodeInfo(2137, OrderRejected, _W, "cross-side order warning"),
    CodeInfo(2150, RequestError, _W, "invalid position trade derived value"),
    CodeInfo(2157, RequestError, _W, "sec-def data farm connection is broken"),
    CodeInfo(2158, RequestError, _I, "sec-def data farm connection is OK"),
    # -- 10000 band ------------------------------------------------------------------------
    CodeInfo(
        10089,
        MarketDataError,
        _E,
        "market data requires an additional API subscription",
        "subscribe in Account Management, or request delayed data",
    ),
    CodeInfo(10090, MarketDataError, _W, "part of the requested market data is not subscribed"),
    CodeInfo(10091, MarketDataError, _W, "part of the market data needs an API subscription"),
    CodeInfo(10092, MarketDataError, _E, "deep market data not supported for this venue"),
    CodeInfo(10147, OrderRejected, _E, "order to cancel not found"),
    CodeInfo(10148, OrderRejected, _E, "order cannot be cancelled in its current state"),
    CodeInfo(10149, OrderRejected, _E, "invalid order id"),
    CodeInfo(10167, MarketDataError, _W, "not subscribed; displaying delayed market data"),
    CodeInfo(
        10168,
        MarketDataError,
        _E,
        "not subscribed and delayed market data is not enabled",
        "subscribe to the data, or enable delayed data",
    ),
    CodeInfo(
        10182,
        MarketDataError,
        _E,
        "failed to request live updates (disconnected)",
        "the subscription is re-issued when the link is back",
    ),
    CodeInfo(10186, MarketDataError, _E, "not subscribed; delayed data not available"),
    CodeInfo(
        10190,
        MarketDataError,
        _E,
        "max number of tick-by-tick requests reached",
        "close a ticks() stream first: IB allows as many at once as depth subscriptions",
    ),
    CodeInfo(
        10197,
        MarketDataError,
        _E,
        "no market data during a competing live session",
        "log out the other live session (TWS, mobile, another gateway) for this user",
    ),
    CodeInfo(10225, MarketDataError, _W, "bust event: subscription deactivated"),
    CodeInfo(10285, OrderRejected, _E, "fractional size rules rejected the order"),
    CodeInfo(10289, OrderRejected, _E, "order rejected"),
    CodeInfo(10293, OrderRejected, _E, "order rejected"),
)

CODES: dict[int, CodeInfo] = {row.code: row for row in _ROWS}
"""IB error code → :class:`CodeInfo`, for every code ibflow knows."""


def lookup(code: int) -> CodeInfo:
    """The table row for ``code``, or a fallback row for an unknown code."""
    row = CODES.get(code)
    if row is not None:
        return row
    if 2100 <= code < 2200:
        # IB documents the whole 2100 band as warnings.
        return CodeInfo(code, RequestError, Severity.WARNING, "TWS warning")
    return CodeInfo(code, RequestError, Severity.ERROR, "IB error")


def is_raised(code: int) -> bool:
    """Whether an error with this code can fail a request (informational codes never do)."""
    return lookup(code).severity is Severity.ERROR


def error_for(code: int, message: str, req_id: int = -1) -> RequestError:
    """Build the exception a request fails with when IB answers it with ``code``.

    Only request-level classes come out of here; link-level codes (326, 504, 1100…) are
    handled by the session state machine and become :class:`RequestError` if asked anyway.
    """
    row = lookup(code)
    cls: type[RequestError] = RequestError
    if issubclass(row.error_class, RequestError):
        cls = row.error_class
    lowered = message.lower()
    # 162 and 420 carry many different failures; only the text says which one it is.
    if code in (162, 420) and "pacing violation" in lowered:
        cls = PacingViolation
    elif code == 200 and "ambiguous" in lowered:
        cls = AmbiguousContract
    return cls(code, message, req_id, hint=row.hint)
