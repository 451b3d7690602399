"""ibflow: an asyncio-native, typed client for Interactive Brokers TWS / IB Gateway.

The public API is this flat namespace; the modules behind it are private::

    import ibflow

    async with ibflow.Session(port=7497) as session:
        print(session.accounts, session.is_paper)
"""

import typing as _typing

from . import _errors
from ._errors import *  # noqa: F403 - light, and needed at once by `except ibflow.X:` clauses
from ._names import claim as _claim
from ._version import __version__

_claim(getattr(_errors, name) for name in _errors.__all__)

if _typing.TYPE_CHECKING:
    from ._public import *  # noqa: F403 - what the lazy loader below provides

__all__ = [
    "AccessDenied",
    "AccountSummary",
    "AccountValue",
    "Adaptive",
    "Algo",
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
    "ExecutionCondition",
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
    "LimitIfTouchedOrder",
    "LimitOnCloseOrder",
    "LimitOrder",
    "MarginCondition",
    "MarketDataError",
    "MarketDataType",
    "MarketIfTouchedOrder",
    "MarketOnCloseOrder",
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
    "PeggedToMidpointOrder",
    "PercentChangeCondition",
    "PnL",
    "PortfolioItem",
    "Position",
    "PositionPnL",
    "PriceCondition",
    "PriceIncrement",
    "Quote",
    "ReconnectPolicy",
    "RelativeOrder",
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
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamStatistics",
    "SyncTimeout",
    "Tick",
    "TickKind",
    "TimeCondition",
    "TimeInForce",
    "Trade",
    "TradeGroup",
    "TradeGroupLike",
    "TradeLike",
    "TradeTick",
    "TradingSession",
    "TrailingStopLimitOrder",
    "TrailingStopOrder",
    "VolumeCondition",
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
]


def __getattr__(name: str) -> _typing.Any:
    # Importing ibflow stays cheap (a CLI can handle Ctrl-C from its first line); the first
    # public name asked for loads them all. The exceptions are loaded at once: an `except
    # ibflow.X:` clause must never start that load while another exception is in flight.
    if name in __all__:
        from . import _public

        globals().update((n, getattr(_public, n)) for n in __all__ if hasattr(_public, n))
        return globals()[name]
    raise AttributeError(f"module 'ibflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
