"""ibflow: an asyncio-native, typed client for Interactive Brokers TWS / IB Gateway.

The public API is this flat namespace; the modules behind it are private::

    import ibflow

    async with ibflow.Session(port=7497) as session:
        print(session.accounts, session.is_paper)
"""

from ._client_ids import new_client_id
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
    HandshakeTimeout,
    IBFlowError,
    InvalidRequest,
    MarketDataError,
    OrderRejected,
    PacingViolation,
    RequestError,
    RequestTimeout,
    SafetyError,
    SessionClosedError,
    SyncTimeout,
)
from ._log import configure_logging
from ._session import (
    ConnectionState,
    Feed,
    Notice,
    ReconnectPolicy,
    Session,
    SessionStatistics,
    StateChange,
    connect,
)
from ._version import __version__

__all__ = [
    "AmbiguousContract",
    "ClientIdInUse",
    "ConfigError",
    "ConnectError",
    "ConnectRefused",
    "ConnectTimeout",
    "ConnectionClosedEarly",
    "ConnectionLost",
    "ConnectionState",
    "ContractNotFound",
    "Feed",
    "HandshakeTimeout",
    "IBFlowError",
    "InvalidRequest",
    "MarketDataError",
    "Notice",
    "OrderRejected",
    "PacingViolation",
    "ReconnectPolicy",
    "RequestError",
    "RequestTimeout",
    "SafetyError",
    "Session",
    "SessionClosedError",
    "SessionStatistics",
    "Severity",
    "StateChange",
    "SyncTimeout",
    "__version__",
    "configure_logging",
    "connect",
    "new_client_id",
]
