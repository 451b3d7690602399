"""A session's settings: its constructor's arguments checked once, before anything starts.

Every bad value fails here with a typed error that says what to pass instead, so the session
core holds only values it can trust.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._config import ResolvedConfig, resolve_config, resolve_journal
from ._errors import InvalidRequest
from ._records.session import ReconnectPolicy
from ._timeouts import check_timeout, is_positive_number

__all__ = ["MIN_HEARTBEAT", "SessionSettings", "check_settings"]

MIN_HEARTBEAT = 1.0  # a gateway ignores a reqCurrentTime repeated within 1 s of its answer


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """The checked arguments of :class:`ibflow.Session`, defaults filled in."""

    config: ResolvedConfig
    journal_path: Path | None
    timeout: float | None
    allow_live: bool
    all_open_orders: bool
    reconnect: ReconnectPolicy | None
    heartbeat_interval: float | None
    heartbeat_timeout: float
    max_order_quantity: float | None
    max_order_notional: float | None
    max_finished_trades: int
    wait_for_gateway: float | None


def check_settings(
    host: str | None,
    port: int | None,
    client_id: int | None,
    account: str | None,
    *,
    timeout: float | None,
    readonly: bool,
    allow_live: bool,
    reconnect: ReconnectPolicy | None,
    heartbeat_interval: float | None,
    heartbeat_timeout: float | None,
    all_open_orders: bool,
    max_order_quantity: float | None,
    max_order_notional: float | None,
    max_finished_trades: int,
    wait_for_gateway: float | None,
    journal: str | os.PathLike[str] | None,
) -> SessionSettings:
    """The arguments of :class:`ibflow.Session` (environment variables filled in), checked.

    Raises:
        ConfigError: a setting or environment variable is invalid (the message names it).
        InvalidRequest: another argument is invalid.
    """
    config = resolve_config(host, port, client_id, account, readonly)
    journal_path = resolve_journal(journal)
    session_timeout = check_timeout(timeout, "timeout")
    if not isinstance(allow_live, bool):
        raise InvalidRequest(f"allow_live must be True or False, got {allow_live!r}")
    if not isinstance(all_open_orders, bool):
        raise InvalidRequest(f"all_open_orders must be True or False, got {all_open_orders!r}")
    if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
        raise InvalidRequest(
            "reconnect must be an ibflow.ReconnectPolicy(...) or None (no reconnect), "
            f"got {reconnect!r}"
        )
    interval = check_timeout(heartbeat_interval, "heartbeat_interval")
    if interval is not None and interval < MIN_HEARTBEAT:
        raise InvalidRequest(
            f"heartbeat_interval must be at least {MIN_HEARTBEAT} s (a gateway ignores a "
            f"reqCurrentTime repeated within 1 s), got {heartbeat_interval!r}"
        )
    hb_timeout = check_timeout(heartbeat_timeout, "heartbeat_timeout")
    if wait_for_gateway is not None and not is_positive_number(wait_for_gateway):
        raise InvalidRequest(
            "wait_for_gateway must be a positive number of seconds to keep retrying the "
            f"first connect, or None to fail at once; got {wait_for_gateway!r}"
        )
    if hb_timeout is None:
        hb_timeout = min(session_timeout, 10.0) if session_timeout is not None else 10.0
    quantity = _check_limit(max_order_quantity, "max_order_quantity")
    notional = _check_limit(max_order_notional, "max_order_notional")
    if (
        isinstance(max_finished_trades, bool)
        or not isinstance(max_finished_trades, int)
        or max_finished_trades < 0
    ):
        raise InvalidRequest(
            f"max_finished_trades must be a whole number, 0 or more; got {max_finished_trades!r}"
        )
    return SessionSettings(
        config=config,
        journal_path=journal_path,
        timeout=session_timeout,
        allow_live=allow_live,
        all_open_orders=all_open_orders,
        reconnect=reconnect,
        heartbeat_interval=interval,
        heartbeat_timeout=hb_timeout,
        max_order_quantity=quantity,
        max_order_notional=notional,
        max_finished_trades=max_finished_trades,
        wait_for_gateway=None if wait_for_gateway is None else float(wait_for_gateway),
    )


def _check_limit(value: object, name: str) -> float | None:
    """A safety rail: a positive finite number, or ``None`` for no limit."""
    if value is None:
        return None
    if not is_positive_number(value):
        raise InvalidRequest(
            f"{name} must be a positive number, or None for no limit; got {value!r}"
        )
    return float(value)
