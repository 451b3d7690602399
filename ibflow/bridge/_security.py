"""What stands between the network and the session: hosts, origins, the token, body sizes.

A bridge on loopback is still reachable from every web page the user opens: a page can make
the browser send requests to ``127.0.0.1`` (and, through DNS rebinding, with its own host name),
and WebSockets are not covered by the browser's same-origin policy at all. So the app answers
only to its own host names (Starlette's ``TrustedHostMiddleware``), opens a WebSocket only for
its own origin or a configured one, refuses bodies larger than a cap before reading them, and,
when a token is configured, lets nothing change orders or the connection without it.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Header
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ._errors import BridgeError, error_content, http_error_name
from ._schemas import ErrorBody
from ._settings import BridgeSettings
from ._state import bridge_of

__all__ = ["BodyLimit", "admit_socket", "check_token", "require_token"]

_WS_POLICY = 1008


def check_token(settings: BridgeSettings, authorization: str | None) -> None:
    """Nothing when no token is configured or the header carries it.

    Raises:
        BridgeError: 401 without a bearer token, 403 with another one.
    """
    expected = settings.token
    if expected is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise BridgeError(
            401,
            "Unauthorized",
            "this bridge requires a token: send 'Authorization: Bearer <token>' (the value of "
            "IBFLOW_BRIDGE_TOKEN where the bridge runs)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Constant time: how long the comparison takes says nothing about the token.
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise BridgeError(403, "Forbidden", "the bearer token is not this bridge's token")


async def require_token(
    connection: HTTPConnection,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Route dependency: the configured token, for everything that changes orders or the link."""
    check_token(bridge_of(connection).settings, authorization)


def _same_origin(origin: str, headers: Headers) -> bool:
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == headers.get("host", "").lower()


async def admit_socket(websocket: WebSocket) -> bool:
    """Check a WebSocket handshake's ``Origin`` and token; refuse it (and say why) if wrong.

    A browser always sends ``Origin``: it must be this server's own or a configured CORS
    origin. Programs that send none are let through to the token check. Returns whether the
    socket may go on; a refused one has been answered with 403 (or 401).
    """
    settings = bridge_of(websocket).settings
    origin = websocket.headers.get("origin")
    try:
        if (
            origin is not None
            and origin.rstrip("/") not in settings.cors_origins
            and not _same_origin(origin, websocket.headers)
        ):
            raise BridgeError(
                403,
                "OriginNotAllowed",
                f"WebSockets from {origin} are not allowed: add the origin to "
                "IBFLOW_BRIDGE_CORS_ORIGINS to allow it",
            )
        check_token(settings, websocket.headers.get("authorization"))
    except BridgeError as refused:
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            body = ErrorBody(error=refused.error, code=None, message=refused.message)
            response = JSONResponse(
                error_content(body), status_code=refused.status, headers=refused.headers
            )
            await websocket.send_denial_response(response)
        else:  # the server cannot answer a handshake with a body: a bare 403
            await websocket.close(_WS_POLICY)
        return False
    return True


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Raised inside the route, where the error handlers answer it.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting, send)

    def _message(self) -> str:
        return f"request bodies are limited to {self.limit} bytes (IBFLOW_BRIDGE_MAX_BODY)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = ErrorBody(error=http_error_name(413), code=None, message=self._message())
        response = JSONResponse(
            error_content(body), status_code=413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)
