"""Keep ``ibflow.__all__`` honest and ib_async out of the public API.

The flat namespace is the contract (httpx ``test_exported_members``, anyio
``test_all_attributes``): every name in ``__all__`` exists, every public name is listed, and no
ib_async type, event or exception can be reached through it. Only ``ibflow/_ib/`` may import
ib_async.
"""

from __future__ import annotations

import ast
import inspect
import types
import typing
from pathlib import Path

import ibflow

# The public names: the flat namespace is the contract.
EXPECTED = {
    "AccessDenied",
    "AccountSummary",
    "AccountValue",
    "AmbiguousContract",
    "Bar",
    "BarSize",
    "BidAskTick",
    "Bracket",
    "BracketTrade",
    "BracketTradeLike",
    "ClientIdInUse",
    "Commission",
    "ConfigError",
    "ConnectError",
    "ConnectRefused",
    "ConnectTimeout",
    "ConnectionClosedEarly",
    "ConnectionLost",
    "ConnectionState",
    "Contract",
    "ContractDescription",
    "ContractDetails",
    "ContractNotFound",
    "DepthExchange",
    "DownloadProgress",
    "EndOfStream",
    "Fill",
    "Forex",
    "FormingBar",
    "Future",
    "Gap",
    "Greeks",
    "HandshakeTimeout",
    "HistoryCache",
    "IBFlowError",
    "Index",
    "InvalidRequest",
    "Level",
    "LimitOrder",
    "MarketDataError",
    "MarketDataType",
    "MarketOrder",
    "MarketRule",
    "MidpointTick",
    "NotOrderOwner",
    "Notice",
    "OcaGroup",
    "OcaType",
    "Option",
    "OptionChain",
    "Order",
    "OrderBook",
    "OrderCancelled",
    "OrderEvent",
    "OrderEventKind",
    "OrderPreview",
    "OrderRejected",
    "OrderSnapshot",
    "OrderStatus",
    "OrderType",
    "Overflow",
    "PacingRules",
    "PacingStatistics",
    "PacingViolation",
    "PnL",
    "PortfolioItem",
    "Position",
    "PositionPnL",
    "PriceIncrement",
    "Quote",
    "ReconnectPolicy",
    "RequestError",
    "RequestTimeout",
    "Right",
    "SafetyError",
    "ScanCode",
    "ScanInstrument",
    "ScanLocation",
    "ScanResult",
    "ScannerParameters",
    "ScannerSubscription",
    "SecType",
    "Session",
    "SessionClosedError",
    "SessionLike",
    "SessionStatistics",
    "Severity",
    "Side",
    "SlowConsumer",
    "StateChange",
    "Stock",
    "StopLimitOrder",
    "StopOrder",
    "Adaptive",  # order types
    "Algo",  # order types
    "ExecutionCondition",  # order types
    "MarginCondition",  # order types
    "PercentChangeCondition",  # order types
    "PriceCondition",  # order types
    "TimeCondition",  # order types
    "VolumeCondition",  # order types
    "LimitIfTouchedOrder",  # order types
    "LimitOnCloseOrder",  # order types
    "MarketIfTouchedOrder",  # order types
    "MarketOnCloseOrder",  # order types
    "PeggedToMidpointOrder",  # order types
    "RelativeOrder",  # order types
    "TrailingStopLimitOrder",  # order types
    "TrailingStopOrder",  # order types
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamStatistics",
    "SyncTimeout",
    "Tick",
    "TickKind",
    "TimeInForce",
    "Trade",
    "TradeGroup",
    "TradeGroupLike",
    "TradeLike",
    "TradeTick",
    "TradingSession",
    "WhatToShow",
    "WouldBlock",
    "__version__",
    "bracket",
    "client_id_for",
    "configure_logging",
    "connect",
    "new_client_id",
    "oca",
    "resample",
    "to_frame",
}

PACKAGE = Path(ibflow.__file__).parent


def test_all_is_exactly_the_promised_names() -> None:
    assert set(ibflow.__all__) == EXPECTED
    assert len(ibflow.__all__) == len(set(ibflow.__all__))


def test_every_name_in_all_exists() -> None:
    for name in ibflow.__all__:
        assert hasattr(ibflow, name), name


def test_every_public_attribute_is_in_all() -> None:
    public = {
        name
        for name, value in vars(ibflow).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(ibflow.__all__)


def test_exported_objects_live_in_ibflow() -> None:
    for name in ibflow.__all__:
        obj = getattr(ibflow, name)
        if name != "__version__":
            assert obj.__module__ == "ibflow", (name, obj.__module__)


def _mentions_ib_async(annotation: object) -> bool:
    module = getattr(annotation, "__module__", "") or ""
    if module.startswith(("ib_async", "eventkit")):
        return True
    return any(_mentions_ib_async(arg) for arg in typing.get_args(annotation))


def test_no_ib_async_type_in_public_signatures() -> None:
    checked = 0
    for name in ibflow.__all__:
        obj = getattr(ibflow, name)
        members = [obj]
        if inspect.isclass(obj):
            members += [
                member
                for attr, member in vars(obj).items()
                if not attr.startswith("_") or attr in ("__init__", "__aenter__", "__anext__")
            ]
        for member in members:
            target = member.fget if isinstance(member, property) else member
            if not callable(target):
                continue
            module = inspect.getmodule(target)
            # Public annotations may name any public type, as the flat namespace does.
            namespace = {**vars(ibflow), **(vars(module) if module else {})}
            hints = typing.get_type_hints(target, namespace)
            for hint in hints.values():
                assert not _mentions_ib_async(hint), (name, target, hint)
            checked += 1
    assert checked > 20


def test_exceptions_do_not_inherit_from_ib_async() -> None:
    for name in ibflow.__all__:
        obj = getattr(ibflow, name)
        if inspect.isclass(obj):
            assert not any(base.__module__.startswith("ib_async") for base in obj.__mro__), name


def test_only_the_adapter_package_imports_ib_async() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "_ib":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "ib_async" or n.startswith("ib_async.") for n in names):
                offenders.append(str(relative))
    assert offenders == []
