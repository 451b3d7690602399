"""ibflow: an asyncio-native, typed client for Interactive Brokers TWS / IB Gateway.

The public API is this flat namespace; the modules behind it are private::

    import ibflow

    async with ibflow.Session(port=7497) as session:
        print(session.accounts, session.is_paper)
"""

from . import _account, _history, _models, _orders, _streams
from ._account import *  # noqa: F403 - each feature module's __all__ joins the flat API
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
from ._history import *  # noqa: F403
from ._log import configure_logging
from ._models import *  # noqa: F403
from ._orders import *  # noqa: F403
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
from ._streams import *  # noqa: F403
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
# Each feature module's own list joins the flat API.
__all__ += _models.__all__
__all__ += _account.__all__
__all__ += _orders.__all__
__all__ += _streams.__all__
__all__ += _history.__all__
