"""Every exception ibflow raises on purpose, in one tree.

ib_async ends a failed connect in a bare ``TimeoutError``, reports request failures only when a
class flag is set, and uses builtin ``ConnectionError`` for everything else, so callers cannot
tell "TWS is not running" from "the client id is taken". This module is the answer: one root,
structured fields (``code``, ``req_id``, ``part``…), messages that say what to do, and builtin
bases where they help (``except TimeoutError`` catches every timeout ibflow raises;
``except ConnectionError`` catches every connect failure and every lost link).

The tree::

    IBFlowError(Exception)                           root: everything ibflow raises on purpose
    ├── ConnectError(IBFlowError, ConnectionError)   the API session could not be established
    │   ├── ConnectRefused(ConnectError, ConnectionRefusedError)
    │   │                                            TCP refused: nothing listens on host:port
    │   ├── ConnectTimeout(ConnectError, TimeoutError)
    │   │                                            TCP connect did not complete in time
    │   ├── HandshakeTimeout(ConnectError, TimeoutError)
    │   │                                            TCP accepted, no API handshake answer
    │   ├── ConnectionClosedEarly(ConnectError)      peer closed before the API was ready
    │   ├── ClientIdInUse(ConnectError)              IB error 326 for an explicit client id
    │   ├── SyncTimeout(ConnectError, TimeoutError)  API start or a start-up sync part is silent
    │   └── AccessDenied(ConnectError, PermissionError)
    │                                                a server refused the credentials (NATS)
    ├── ConnectionLost(IBFlowError, ConnectionError) the link dropped mid-session (EOF, 1100,
    │                                                heartbeat); in-flight requests fail with it
    ├── SessionClosedError(IBFlowError)              used before connect or after aclose()
    ├── RequestError(IBFlowError)                    IB answered a request with an error code
    │   ├── ContractNotFound(RequestError)           e.g. 200
    │   ├── AmbiguousContract(RequestError)          200 "ambiguous", or several matches
    │   ├── OrderRejected(RequestError)              201, 103, 110, 10147 …
    │   ├── OrderCancelled(RequestError)             the order ended cancelled before filling
    │   ├── MarketDataError(RequestError)            101, 354, 10089, 10168, 10197 …
    │   └── PacingViolation(RequestError)            100, 162 "pacing violation", 420
    ├── RequestTimeout(IBFlowError, TimeoutError)    no answer in time
    ├── SafetyError(IBFlowError)                     refused on purpose: read-only, live guard
    │   └── NotOrderOwner(SafetyError)               another client id (or TWS) owns the order
    ├── StreamError(IBFlowError)                     a stream's own condition, not IB's
    │   ├── SlowConsumer(StreamError)                an "error"-policy buffer overflowed
    │   ├── StreamClosed(StreamError)                receive() after you closed the stream
    │   │   └── EndOfStream(StreamClosed)            receive() after the stream ended
    │   └── WouldBlock(StreamError)                  receive_nowait() with nothing buffered
    └── InvalidRequest(IBFlowError, ValueError)      a bad argument
        └── ConfigError(InvalidRequest)              a bad setting or environment variable

Which IB code becomes which class, and which codes never raise, is decided by the table in
``ibflow._error_codes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AccessDenied",
    "AmbiguousContract",
    "ClientIdInUse",
    "ConfigError",
    "ConnectError",
    "ConnectRefused",
    "ConnectTimeout",
    "ConnectionClosedEarly",
    "ConnectionLost",
    "ContractNotFound",
    "EndOfStream",
    "HandshakeTimeout",
    "IBFlowError",
    "InvalidRequest",
    "MarketDataError",
    "NotOrderOwner",
    "OrderCancelled",
    "OrderRejected",
    "PacingViolation",
    "RequestError",
    "RequestTimeout",
    "SafetyError",
    "SessionClosedError",
    "SlowConsumer",
    "StreamClosed",
    "StreamError",
    "SyncTimeout",
    "WouldBlock",
]


class IBFlowError(Exception):
    """Root of every exception ibflow raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConnectError(IBFlowError, ConnectionError):
    """The API session could not be established; ``host``/``port`` say where we tried."""

    def __init__(self, message: str, *, host: str | None = None, port: int | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class ConnectRefused(ConnectError, ConnectionRefusedError):
    """Nothing accepted the TCP connection: TWS/Gateway not running, or the wrong port."""


class ConnectTimeout(ConnectError, TimeoutError):
    """The TCP connection itself did not complete in time (firewall, wrong host)."""


class HandshakeTimeout(ConnectError, TimeoutError):
    """TCP was accepted but the API handshake was never answered."""


class ConnectionClosedEarly(ConnectError):
    """The peer closed the socket before the API session was ready, without error 326."""


class ClientIdInUse(ConnectError):
    """IB error 326: another API client is connected with this client id."""

    def __init__(
        self,
        message: str,
        *,
        client_id: int,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(message, host=host, port=port)
        self.client_id = client_id


class SyncTimeout(ConnectError, TimeoutError):
    """A start-up stage after the handshake did not answer; ``part`` names which one."""

    def __init__(
        self,
        message: str,
        *,
        part: str,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(message, host=host, port=port)
        self.part = part


class AccessDenied(ConnectError, PermissionError):
    """The server refused this client's credentials (a hub's NATS server: authorization
    violation); the message names the credential that was used and where to fix it."""


class ConnectionLost(IBFlowError, ConnectionError):
    """The link to TWS/Gateway dropped while the session was in use."""


class SessionClosedError(IBFlowError):
    """The session is not open: used before ``connect()``, or after ``aclose()``."""


class RequestError(IBFlowError):
    """IB answered a request with an error code.

    Attributes:
        code: IB's error code (e.g. 200).
        message: IB's text, unchanged.
        req_id: the request (or order) id the error was addressed to; -1 when none.
    """

    def __init__(self, code: int, message: str, req_id: int = -1, *, hint: str = "") -> None:
        text = f"IB error {code}"
        if req_id != -1:
            text += f" for request {req_id}"
        text += f": {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.code = code
        self.message = message
        self.req_id = req_id
        self.hint = hint


class ContractNotFound(RequestError):
    """IB has no contract matching the description."""


class AmbiguousContract(RequestError):
    """The description matches several contracts; add exchange, currency or con_id.

    Attributes:
        candidates: every matching :class:`~ibflow.Contract`, for the caller to pick from.
    """

    def __init__(
        self,
        code: int,
        message: str,
        req_id: int = -1,
        *,
        hint: str = "",
        candidates: Sequence[Any] = (),
    ) -> None:
        super().__init__(code, message, req_id, hint=hint)
        self.candidates: tuple[Any, ...] = tuple(candidates)


class OrderRejected(RequestError):
    """IB refused an order, or a change to one.

    Attributes:
        trade: when ``place()`` raises it, the rejected order's :class:`~ibflow.Trade`. TWS
            may still hold the order (it can follow a rejection with an ``Inactive`` status);
            the session keeps following it through this handle, and ``trade.cancel()``
            removes it.
            ``None`` for a refused change or cancel.
    """

    trade: Any = None


class OrderCancelled(RequestError):
    """The order ended cancelled (by you, by TWS or by IB) before it filled completely.

    Raised by ``Trade.wait_filled()``. ``status`` is the final :class:`~ibflow.OrderStatus`;
    ``filled`` is how much filled before the cancel.
    """

    def __init__(self, message: str, *, order_id: int, status: str, filled: float) -> None:
        super().__init__(202, message, order_id)
        self.order_id = order_id
        self.status = status
        self.filled = filled


class MarketDataError(RequestError):
    """A market-data request failed: permissions, lines, competing session."""


class PacingViolation(RequestError):
    """IB's pacing rules were broken (messages per second, historical data).

    Attributes:
        retry_after: seconds to wait before the same request may succeed, when known.
    """

    def __init__(
        self,
        code: int,
        message: str,
        req_id: int = -1,
        *,
        hint: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, req_id, hint=hint)
        self.retry_after = retry_after


class RequestTimeout(IBFlowError, TimeoutError):
    """A request got no answer in time."""


class SafetyError(IBFlowError):
    """ibflow refused an action on purpose (read-only session, live account guard)."""


class NotOrderOwner(SafetyError):
    """The order belongs to another client id (or to TWS itself): TWS would refuse the change.

    Raised before anything is sent. ``owner_client_id`` is the client id that placed the order
    (0 for an order placed by hand in TWS); ``order_id`` is TWS's id for it (0 for a manual
    order no client id 0 has bound).
    """

    def __init__(self, message: str, *, owner_client_id: int, order_id: int) -> None:
        super().__init__(message)
        self.owner_client_id = owner_client_id
        self.order_id = order_id


class StreamError(IBFlowError):
    """Root of the errors a ``Stream`` raises about itself (not about IB)."""


class SlowConsumer(StreamError):
    """The consumer fell ``buffer`` items behind a stream whose overflow policy is ``"error"``.

    Attributes:
        stream: the stream's name.
        buffer: its capacity.
    """

    def __init__(self, message: str, *, stream: str, buffer: int) -> None:
        super().__init__(message)
        self.stream = stream
        self.buffer = buffer


class StreamClosed(StreamError):
    """``receive()`` on a stream you closed with ``aclose()`` (anyio's ``ClosedResourceError``).

    Iteration with ``async for`` ends quietly instead.
    """


class EndOfStream(StreamClosed):
    """``receive()`` on a stream that ended: the session closed, or its producer finished.

    A subclass of :class:`StreamClosed`, so ``except StreamClosed`` catches both.
    """


class WouldBlock(StreamError):
    """``receive_nowait()`` found nothing buffered on an open stream."""


class InvalidRequest(IBFlowError, ValueError):
    """An argument is invalid; the message says which and what is accepted."""


class ConfigError(InvalidRequest):
    """A setting is invalid; ``variable`` names the argument or environment variable."""

    def __init__(self, message: str, *, variable: str) -> None:
        super().__init__(message)
        self.variable = variable
