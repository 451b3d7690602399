"""One place that turns ibflow's exceptions into HTTP answers and websocket close frames.

ibflow already sorts every failure into a typed tree (``ibflow/_errors.py``); an HTTP client
should be able to act on that without parsing text: retry later on 429/503, fix its input on
422, pick a candidate on 409. So each class maps to one status, and every error body has the
same shape, ``{"error": class name, "code": IB code or null, "message": ...}`` — FastAPI's own
validation errors and unknown routes included, so a client needs one error parser.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect

import ibflow

from ._schemas import ErrorBody

__all__ = [
    "BridgeError",
    "close_socket",
    "describe",
    "error_content",
    "error_message",
    "http_error_name",
    "install",
    "status_for",
    "validation_message",
]

# First match wins, so subclasses come before their bases.
_STATUSES: tuple[tuple[type[BaseException], int], ...] = (
    (ibflow.AmbiguousContract, 409),
    (ibflow.ContractNotFound, 404),
    (ibflow.PacingViolation, 429),
    (ibflow.SafetyError, 403),
    (ibflow.InvalidRequest, 422),
    (TimeoutError, 504),  # RequestTimeout and every connect-stage timeout
    (ConnectionError, 503),  # ConnectionLost, and connect failures
    (ibflow.SessionClosedError, 503),
    (ibflow.StreamError, 503),  # SlowConsumer: the reader fell behind; read again later
)
_UPSTREAM = 502  # any other refusal from IB: OrderRejected, MarketDataError, RequestError

# IB's limits are per second, or the pacer says how long; a client needs a number either way.
_DEFAULT_RETRY_AFTER = 1

# RFC 6455 close codes.
_WS_NORMAL = 1000
_WS_POLICY = 1008  # the request itself is wrong: fix it before trying again
_WS_INTERNAL = 1011
_WS_TRY_AGAIN = 1013
_WS_REASON_BYTES = 123  # the most a close frame's reason can hold


class BridgeError(Exception):
    """A refusal by the bridge itself (not by ibflow): a missing header, an unknown order."""

    def __init__(
        self, status: int, error: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})


def status_for(exc: ibflow.IBFlowError) -> int:
    """The HTTP status for an ibflow exception."""
    for cls, status in _STATUSES:
        if isinstance(exc, cls):
            return status
    return _UPSTREAM


def describe(exc: ibflow.IBFlowError) -> tuple[int, ErrorBody, dict[str, str]]:
    """Status, body and extra headers of the answer for ``exc``."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, ibflow.PacingViolation):
        wait = exc.retry_after
        seconds = max(1, math.ceil(wait)) if wait is not None else _DEFAULT_RETRY_AFTER
        headers["Retry-After"] = str(seconds)
    return status, ErrorBody.of(exc), headers


def error_content(body: ErrorBody) -> dict[str, Any]:
    """The JSON object of an error answer: ``code`` always present, the extras only when set."""
    head = {"error": body.error, "code": body.code, "message": body.message}
    return head | body.model_dump(mode="json", exclude_none=True)


def _json(status: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(error_content(body), status_code=status, headers=dict(headers or {}))


def _plain(error: str, message: str) -> ErrorBody:
    return ErrorBody(error=error, code=None, message=message)


async def _on_ibflow_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ibflow.IBFlowError)
    status, body, headers = describe(exc)
    return _json(status, body, headers)


async def _on_bridge_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BridgeError)
    return _json(exc.status, _plain(exc.error, exc.message), exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _json(422, _plain("InvalidRequest", validation_message(exc.errors())))


async def _on_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _json(
        exc.status_code,
        _plain(http_error_name(exc.status_code), str(exc.detail)),
        exc.headers,
    )


async def _on_unexpected(_request: Request, exc: Exception) -> Response:
    # A bug in the bridge: Starlette still logs the traceback after this answer.
    message = f"internal error: {type(exc).__name__}: {exc}"
    return _json(500, _plain(type(exc).__name__, message))


async def _on_socket_validation_error(websocket: WebSocket, exc: Exception) -> None:
    assert isinstance(exc, WebSocketRequestValidationError)
    # Accept first: a socket closed before the handshake reaches the client as a bare 403.
    await websocket.accept()
    message = validation_message(exc.errors())
    await _send_close(websocket, _plain("InvalidRequest", message), _WS_POLICY)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the same JSON shape."""
    app.add_exception_handler(ibflow.IBFlowError, _on_ibflow_error)
    app.add_exception_handler(BridgeError, _on_bridge_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(WebSocketRequestValidationError, _on_socket_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)


async def close_socket(websocket: WebSocket, exc: ibflow.IBFlowError | None) -> None:
    """Close an accepted socket: normally (``None``), or with the error and a reason."""
    if exc is None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client is gone
            await websocket.close(_WS_NORMAL, "the stream ended: the bridge's session closed")
        return
    status, body, _headers = describe(exc)
    if status in (429, 503, 504):
        code = _WS_TRY_AGAIN
    elif 400 <= status < 500:
        code = _WS_POLICY
    else:
        code = _WS_INTERNAL
    await _send_close(websocket, body, code)


async def _send_close(websocket: WebSocket, body: ErrorBody, code: int) -> None:
    reason = f"{body.error}: {body.message}".encode()
    if len(reason) > _WS_REASON_BYTES:
        reason = reason[: _WS_REASON_BYTES - 3] + b"..."
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client is gone
        await websocket.send_text(json.dumps(error_message(body)))
        await websocket.close(code, reason.decode(errors="ignore"))


def error_message(body: ErrorBody) -> dict[str, Any]:
    """A WebSocket's ``{"type": "error", ...}`` message: an HTTP error body with its type."""
    return {"type": "error", **error_content(body)}


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI's error list as one sentence per problem: where, then what."""
    parts: list[str] = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def http_error_name(status: int) -> str:
    """``NotFound`` for 404: the status's phrase as a class-like name."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "HTTPError"
    return "".join(word.capitalize() for word in phrase.split())
