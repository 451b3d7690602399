"""Translate every exception ib_async can raise into ibflow's tree.

ib_async signals failures with its own ``RequestError`` and ``FlexError`` and with builtin
``ConnectionError``, ``TimeoutError``, ``OSError`` and ``ValueError``. None of those may reach
ibflow's users, so every call into ib_async runs inside :func:`map_ib_errors` (the httpx
``map_httpcore_exceptions`` pattern), and ``tests/test_error_mapping.py`` checks that each type
ib_async defines or raises has a translation here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from ib_async.flexreport import FlexError
from ib_async.wrapper import RequestError as IBRequestError

from .._error_codes import error_for
from .._errors import (
    ConnectError,
    ConnectionLost,
    ConnectRefused,
    IBFlowError,
    InvalidRequest,
    RequestError,
    RequestTimeout,
    SessionClosedError,
)

__all__ = ["ESCAPING_BUILTINS", "map_ib_errors", "translate", "undo_on_error"]

ESCAPING_BUILTINS: tuple[type[BaseException], ...] = (
    ConnectionRefusedError,  # loop.create_connection: nothing listens
    ConnectionError,  # "Not connected", "Socket disconnect", start-up sync errors
    TimeoutError,  # asyncio.wait_for inside ib_async (asyncio.TimeoutError is TimeoutError)
    OSError,  # create_connection: unreachable host, unknown name
    ValueError,  # contract validation in ib_async.contract
    TypeError,  # arithmetic on ib_async records, non-dataclass helpers
    RuntimeError,  # the event loop ib_async was using is closed
)
"""Builtin exception types ib_async raises or lets through from asyncio."""


def translate(exc: BaseException, *, what: str = "request") -> IBFlowError:
    """The ibflow exception for an exception raised inside ib_async.

    Args:
        exc: what ib_async raised.
        what: a few words naming the operation, used in the message.
    """
    if isinstance(exc, IBFlowError):
        return exc
    if isinstance(exc, IBRequestError):
        return error_for(exc.code, exc.message, exc.reqId)
    if isinstance(exc, FlexError):
        return RequestError(-1, f"flex report: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectRefused(
            f"{what}: connection refused; is TWS/IB Gateway running with the API enabled?"
        )
    if isinstance(exc, TimeoutError):
        return RequestTimeout(f"{what}: no answer in time")
    if isinstance(exc, ConnectionError):
        return ConnectionLost(
            f"{what}: the link to TWS/IB Gateway is down ({exc or 'not connected'}); "
            "wait for the session to reconnect or check that TWS is running"
        )
    if isinstance(exc, OSError):
        return ConnectError(f"{what}: {exc}")
    if isinstance(exc, ValueError | TypeError):
        return InvalidRequest(f"{what}: {exc}")
    if isinstance(exc, RuntimeError):
        return SessionClosedError(
            f"{what}: {exc}; the event loop this session ran on is gone, create a new Session"
        )
    return IBFlowError(f"{what}: unexpected {type(exc).__name__} from ib_async: {exc}")


@contextmanager
def map_ib_errors(what: str = "request") -> Iterator[None]:
    """Run a block that calls ib_async; re-raise anything it raises as an ibflow error.

    ``CancelledError`` and other ``BaseException``s that are not ``Exception``s pass through
    untouched, so cancellation and ``asyncio.timeout()`` keep working.
    """
    try:
        yield
    except IBFlowError:
        raise
    except Exception as exc:
        raise translate(exc, what=what) from exc


@contextmanager
def undo_on_error(undo: Callable[[], None]) -> Iterator[None]:
    """Run ``undo`` (best effort) if the block raises, then re-raise.

    Wraps the registration of a request in ib_async's tables and its send, so a failed send
    leaves no half-registered request behind.
    """
    try:
        yield
    except BaseException:
        with suppress(Exception):
            undo()
        raise
