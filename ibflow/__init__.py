"""ibflow: an asyncio-native, typed client for Interactive Brokers TWS / IB Gateway."""

from ._version import __version__

__all__ = ["__version__"]
