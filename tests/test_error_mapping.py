"""The IB error-code table and the translation of every ib_async exception.

Two promises are checked here: every IB code the issue names has a row (and informational
codes never raise), and every exception type ib_async defines or raises has a translation into
ibflow's tree, so none can leak to users (httpx's ``test_httpcore_all_exceptions_mapped``).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import ib_async
import pytest

import ibflow
from ibflow._error_codes import CODES, Severity, error_for, is_raised, lookup
from ibflow._ib import ESCAPING_BUILTINS, map_ib_errors, translate

ISSUE_CODES = [
    100, 101, 103, 162, 165, 200, 201, 202, 321, 326, 354, 366, 502, 504, 507,
    1100, 1101, 1102, 1300, *range(2100, 2111), 2119, 2137, 2157, 2158,
    10089, 10090, 10147, 10148, 10167, 10168, 10182, 10197,
]  # fmt: skip

# Raised inside ib_async and caught there again; never reaches a caller.
NOT_ESCAPING = {"Warning": "ibcontroller.Watchdog raises 'Hard timeout' and catches it itself"}


@pytest.mark.parametrize("code", ISSUE_CODES)
def test_issue_codes_have_a_row(code: int) -> None:
    row = CODES[code]
    assert row.code == code
    assert issubclass(row.error_class, ibflow.IBFlowError)
    assert row.summary


@pytest.mark.parametrize("code", [165, 1101, 1102, 2104, 2106, 2107, 2108, 2119, 2158])
def test_informational_codes_never_raise(code: int) -> None:
    assert lookup(code).severity is Severity.INFO
    assert not is_raised(code)


def test_only_error_rows_raise_and_they_raise_request_errors() -> None:
    for row in CODES.values():
        assert is_raised(row.code) == (row.severity is Severity.ERROR)
        if row.severity is Severity.ERROR:
            assert issubclass(row.error_class, ibflow.RequestError), row
        if row.severity is Severity.CONNECTION:
            assert issubclass(row.error_class, ibflow.ConnectError | ibflow.ConnectionLost), row


@pytest.mark.parametrize(
    ("code", "message", "cls"),
    [
        (200, "No security definition has been found for the request", ibflow.ContractNotFound),
        (200, "The contract description specified for XYZ is ambiguous", ibflow.AmbiguousContract),
        (162, "HMDS error message:pacing violation", ibflow.PacingViolation),
        (162, "HMDS error message:HMDS query returned no data", ibflow.MarketDataError),
        (100, "Max rate of messages per second has been exceeded", ibflow.PacingViolation),
        (354, "Requested market data is not subscribed", ibflow.MarketDataError),
        (10197, "No market data during competing live session", ibflow.MarketDataError),
        (201, "Order rejected - reason: no funds", ibflow.OrderRejected),
        (10147, "OrderId 5 that needs to be cancelled is not found", ibflow.OrderRejected),
        (321, "Error validating request", ibflow.RequestError),
        (99999, "something new", ibflow.RequestError),
    ],
)  # fmt: skip
def test_error_for_picks_the_class(code: int, message: str, cls: type) -> None:
    err = error_for(code, message, 4)
    assert type(err) is cls
    assert (err.code, err.message, err.req_id) == (code, message, 4)


def test_unknown_codes_fall_back() -> None:
    assert lookup(99999).severity is Severity.ERROR
    assert lookup(2199).severity is Severity.WARNING
    assert not is_raised(2199)


def test_error_messages_carry_the_hint() -> None:
    assert "con_id" in str(error_for(200, "No security definition"))


def _ib_async_modules() -> list[object]:
    return [
        importlib.import_module(f"ib_async.{info.name}")
        for info in pkgutil.iter_modules(ib_async.__path__)
    ]


def _defined_exception_types() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module in _ib_async_modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("ib_async"):
                found.add(obj)
    return found


def _raised_names() -> set[str]:
    names: set[str] = set()
    for path in Path(ib_async.__path__[0]).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return names


def _escaping_types() -> set[type[BaseException]]:
    types = set(_defined_exception_types()) | set(ESCAPING_BUILTINS)
    for name in _raised_names() - set(NOT_ESCAPING):
        obj = getattr(builtins, name, None)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            types.add(obj)
    return types


def test_the_scan_finds_what_we_know_ib_async_raises() -> None:
    names = {t.__name__ for t in _escaping_types()}
    assert {"RequestError", "FlexError", "ConnectionError", "ValueError", "TimeoutError"} <= names


def _instance(exc_type: type[BaseException]) -> BaseException:
    if exc_type is ib_async.wrapper.RequestError:
        return exc_type(3, 200, "No security definition")
    return exc_type("boom")


@pytest.mark.parametrize("exc_type", sorted(_escaping_types(), key=lambda t: t.__name__))
def test_every_ib_async_exception_type_is_mapped(exc_type: type[BaseException]) -> None:
    original = _instance(exc_type)
    mapped = translate(original, what="probe")
    assert isinstance(mapped, ibflow.IBFlowError)
    assert type(mapped) is not ibflow.IBFlowError, f"{exc_type} falls through to the root"
    with pytest.raises(ibflow.IBFlowError) as caught, map_ib_errors("probe"):
        raise original
    assert caught.value.__cause__ is original


def test_specific_translations() -> None:
    assert isinstance(translate(ConnectionRefusedError()), ibflow.ConnectRefused)
    assert isinstance(translate(ConnectionError("Not connected")), ibflow.ConnectionLost)
    assert isinstance(translate(TimeoutError()), ibflow.RequestTimeout)
    req = translate(ib_async.wrapper.RequestError(3, 200, "No security definition"))
    assert isinstance(req, ibflow.ContractNotFound)
    assert req.req_id == 3


def test_cancellation_passes_through_untouched() -> None:
    import asyncio

    with pytest.raises(asyncio.CancelledError), map_ib_errors("probe"):
        raise asyncio.CancelledError
