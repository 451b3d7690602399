"""Client ids that do not collide, and the rules for the ones users choose.

Every API connection to one TWS/Gateway needs its own client id, and a taken id ends the
connection with error 326. Hard-coded ids (``clientId=1`` in every example) collide as soon
as a second script, a notebook and a service share a gateway. An id derived from the clock in
milliseconds is unique across processes in practice, and a lock plus "never hand out the same
id twice" makes it unique inside one process. Id 0 is never generated: it is TWS's special
id that binds manual orders.
"""

from __future__ import annotations

import hashlib
import threading
import time

from ._errors import ConfigError, InvalidRequest

__all__ = ["MAX_CLIENT_ID", "check_client_id", "client_id_for", "new_client_id"]

MAX_CLIENT_ID = 2**31 - 1
"""The largest id the API's 32-bit signed int field can carry."""

_lock = threading.Lock()
_last = 0


def new_client_id() -> int:
    """A fresh client id derived from the current time in milliseconds.

    The result is in ``1..2**31-1`` and never 0 (0 binds manual TWS orders). Two calls in the
    same process never return the same id, even within one millisecond.

    Returns:
        An id to pass as ``client_id``.
    """
    global _last
    with _lock:
        candidate = time.time_ns() // 1_000_000 % MAX_CLIENT_ID + 1
        if candidate <= _last and _last - candidate < MAX_CLIENT_ID // 2:
            # Same millisecond (or the clock stepped back a little): move past the last one.
            candidate = _last % MAX_CLIENT_ID + 1
        _last = candidate
        return candidate


def client_id_for(name: str) -> int:
    """The stable client id of ``name``: the same name gives the same id everywhere, always.

    For a bot that must find its own orders again after a restart: TWS lets only the client
    id that placed an order modify or cancel it, so a bot that reconnects under
    ``client_id_for("my-bot")`` can manage what it placed before. Two names collide with a
    chance of about one in two billion; two bots must not share a name.

    Raises:
        InvalidRequest: ``name`` is not a non-empty string of printable characters.
    """
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise InvalidRequest(
            f"client_id_for needs a non-empty, printable name such as 'my-bot', got {name!r}"
        )
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % MAX_CLIENT_ID + 1


def check_client_id(value: object, *, variable: str = "client_id") -> int:
    """Validate a client id given by a user (argument or environment variable).

    Raises:
        ConfigError: not an integer in ``0..2**31-1``; the message names ``variable``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{variable} must be an integer between 0 and {MAX_CLIENT_ID}, got {value!r}; "
            "leave it unset to get a fresh id from ibflow.new_client_id()",
            variable=variable,
        )
    if not 0 <= value <= MAX_CLIENT_ID:
        raise ConfigError(
            f"{variable} must be between 0 and {MAX_CLIENT_ID}, got {value}; "
            "leave it unset to get a fresh id from ibflow.new_client_id()",
            variable=variable,
        )
    return value
