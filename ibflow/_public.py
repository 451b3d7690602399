"""Everything ``ibflow`` exports, imported at once (``ibflow/__init__.py`` loads it lazily)."""

import typing

from ._client_ids import client_id_for, new_client_id
from ._connect import connect
from ._error_codes import Severity
from ._errors import (
    AmbiguousContract,
    ClientIdInUse,
    ConfigError,
    ConnectError,
    ConnectionClosedEarly,
    ConnectionLost,
    ConnectRefused,
    ConnectTimeout,
    ContractNotFound,
    EndOfStream,
    HandshakeTimeout,
    IBFlowError,
    InvalidRequest,
    MarketDataError,
    OrderCancelled,
    OrderRejected,
    PacingViolation,
    RequestError,
    RequestTimeout,
    SafetyError,
    SessionClosedError,
    SlowConsumer,
    StreamClosed,
    StreamError,
    SyncTimeout,
    WouldBlock,
)
from ._frames import to_frame
from ._history import HistoryCache
from ._log import configure_logging
from ._orders import BracketTrade, Trade, TradeGroup
from ._pacer import PacingRules, PacingStatistics
from ._periods import BarSize, WhatToShow
from ._records.account import (
    AccountSummary,
    AccountValue,
    ContractDetails,
    PnL,
    PortfolioItem,
    Position,
    PositionPnL,
)
from ._records.contracts import Bar, Contract, Forex, Future, Index, Option, Right, SecType, Stock
from ._records.history import DownloadProgress
from ._records.market import (
    BidAskTick,
    FormingBar,
    Gap,
    MarketDataType,
    MidpointTick,
    Quote,
    Tick,
    TickKind,
    TradeTick,
)
from ._records.orders import (
    Bracket,
    Commission,
    Fill,
    LimitOrder,
    MarketOrder,
    OcaGroup,
    OcaType,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderPreview,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Side,
    StopLimitOrder,
    StopOrder,
    TimeInForce,
    bracket,
    oca,
)
from ._records.session import (
    ConnectionState,
    Notice,
    ReconnectPolicy,
    SessionStatistics,
    StateChange,
)
from ._resample import resample
from ._schedule import TradingSession
from ._session import Session
from ._stream import Overflow, Stream, StreamStatistics

__all__ = [
    "AccountSummary",
    "AccountValue",
    "AmbiguousContract",
    "Bar",
    "BarSize",
    "BidAskTick",
    "Bracket",
    "BracketTrade",
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
    "ContractDetails",
    "ContractNotFound",
    "DownloadProgress",
    "EndOfStream",
    "Fill",
    "Forex",
    "FormingBar",
    "Future",
    "Gap",
    "HandshakeTimeout",
    "HistoryCache",
    "IBFlowError",
    "Index",
    "InvalidRequest",
    "LimitOrder",
    "MarketDataError",
    "MarketDataType",
    "MarketOrder",
    "MidpointTick",
    "Notice",
    "OcaGroup",
    "OcaType",
    "Option",
    "Order",
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
    "Quote",
    "ReconnectPolicy",
    "RequestError",
    "RequestTimeout",
    "Right",
    "SafetyError",
    "SecType",
    "Session",
    "SessionClosedError",
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
    "TimeInForce",
    "Trade",
    "TradeGroup",
    "TradeTick",
    "TradingSession",
    "WhatToShow",
    "WouldBlock",
    "bracket",
    "client_id_for",
    "configure_logging",
    "connect",
    "new_client_id",
    "oca",
    "resample",
    "to_frame",
]


def _claim_public_names() -> None:
    """Show ``ibflow.Trade`` (not ``ibflow._orders._trade.Trade``) in reprs and tracebacks.

    Its own annotations are resolved first, in the module that wrote them, so
    ``typing.get_type_hints`` keeps working on it once its ``__module__`` says ``ibflow``.
    """
    for name in __all__:
        obj = globals()[name]
        if not callable(obj) or not getattr(obj, "__module__", "").startswith("ibflow."):
            continue
        own = vars(obj).get("__annotations__") if isinstance(obj, type) else obj.__annotations__
        if own:
            hints = typing.get_type_hints(obj, include_extras=True)
            obj.__annotations__ = {key: hints[key] for key in own}
        obj.__module__ = "ibflow"


_claim_public_names()
