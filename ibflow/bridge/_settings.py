"""The bridge's settings: its own limits and security, where TWS is, and where each came from.

A bridge is configured the way services are, from its environment, under the names a TWS
Bridge Server deployment already sets (``HOST``, ``PORT``, ``TWS_HOST``, ``TWS_PORT``,
``TWS_CLIENT_ID``, ``TWS_MARKET_DATA_TYPE``, ``LOG_LEVEL``) plus ``IBFLOW_BRIDGE_*`` for what
only this bridge has. A bad value is a :class:`ibflow.ConfigError` naming the variable, at
start-up rather than at the first request.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import ibflow

__all__ = [
    "API_PREFIX",
    "LOCAL_HOSTS",
    "BridgeSettings",
    "Target",
    "bind_address",
    "is_loopback",
    "log_level",
    "resolve_target",
]

API_PREFIX = "/api/v1"
"""Where the routes live (the TWS Bridge Server's prefix)."""

LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
"""The host names a bridge answers to unless told otherwise (DNS rebinding stops here)."""

DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 8000

# Where a Session looks for each setting, highest precedence first (docs/session.md): the
# bridge reports the same source the session used.
_TWS_ENV: Mapping[str, tuple[str, ...]] = {
    "host": ("IBFLOW_HOST", "IB_HOST", "TWS_HOST"),
    "port": ("IBFLOW_PORT", "IB_PORT", "TWS_PORT"),
    "client_id": ("IBFLOW_CLIENT_ID", "IB_CLIENT_ID", "TWS_CLIENT_ID"),
}
_TWS_DEFAULTS: Mapping[str, str] = {"host": "127.0.0.1", "port": "7497"}

_MARKET_DATA_TYPES: Mapping[str, ibflow.MarketDataType] = {
    "1": ibflow.MarketDataType.LIVE,
    "2": ibflow.MarketDataType.FROZEN,
    "3": ibflow.MarketDataType.DELAYED,
    "4": ibflow.MarketDataType.DELAYED_FROZEN,
    **{kind.value: kind for kind in ibflow.MarketDataType},
}
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _env(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` set to something other than blanks: (value, name)."""
    for name in names:
        raw = env.get(name)
        if raw is not None and raw.strip():
            return raw.strip(), name
    return None


def _positive_int(raw: str, variable: str, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ibflow.ConfigError(
            f"{variable} must be a positive whole number ({what}), got {raw!r}", variable=variable
        )
    return value


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeSettings:
    """How one bridge app protects itself and what it allows each client.

    Args:
        token: when set, order routes, connect/disconnect and every WebSocket need
            ``Authorization: Bearer <token>`` (401 without it, 403 with another one).
        allowed_hosts: the ``Host`` names the app answers to (others get 400); ``*.example.com``
            patterns work. Localhost names by default, which stops DNS rebinding.
        cors_origins: origins allowed to call from a browser (CORS) and to open WebSockets;
            none by default, so no other site can.
        max_body_bytes: larger request bodies are refused with 413 before being read.
        market_data_type: the market data type set on every session the app connects.
        subscription_burst: subscribe/unsubscribe requests one WebSocket may make at once.
        subscriptions_per_second: how fast that allowance refills.
        max_subscriptions: symbols one WebSocket may stream at the same time.

    Raises:
        InvalidRequest: a value out of range.
    """

    token: str | None = None
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1 << 20
    market_data_type: ibflow.MarketDataType | None = None
    subscription_burst: int = 20
    subscriptions_per_second: float = 5.0
    max_subscriptions: int = 100
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Setting name → the environment variable that supplied it (``from_env`` only)."""

    def __post_init__(self) -> None:
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            raise ibflow.InvalidRequest("token must be a non-empty string or None")
        for name in ("max_body_bytes", "subscription_burst", "max_subscriptions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ibflow.InvalidRequest(f"{name} must be a positive integer, got {value!r}")
        rate = self.subscriptions_per_second
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ibflow.InvalidRequest(
                f"subscriptions_per_second must be a positive number, got {rate!r}"
            )
        if not self.allowed_hosts:
            raise ibflow.InvalidRequest("allowed_hosts needs at least one host name, or '*'")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BridgeSettings:
        """Settings from ``IBFLOW_BRIDGE_TOKEN``, ``IBFLOW_BRIDGE_ALLOWED_HOSTS``,
        ``IBFLOW_BRIDGE_CORS_ORIGINS`` (or ``CORS_ORIGINS``), ``IBFLOW_BRIDGE_MAX_BODY`` and
        ``TWS_MARKET_DATA_TYPE`` (1 live, 2 frozen, 3 delayed, 4 delayed-frozen); the rest keep
        their defaults.

        Raises:
            ConfigError: a variable's value is unusable (the message names it).
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        sources: dict[str, str] = {}

        def take(name: str, found: tuple[str, str] | None) -> str | None:
            if found is None:
                return None
            sources[name] = found[1]
            return found[0]

        token = take("token", _env(env, "IBFLOW_BRIDGE_TOKEN"))
        if token is not None:
            values["token"] = token
        hosts = take("allowed_hosts", _env(env, "IBFLOW_BRIDGE_ALLOWED_HOSTS"))
        if hosts is not None:
            values["allowed_hosts"] = _csv(hosts)
        origins = take("cors_origins", _env(env, "IBFLOW_BRIDGE_CORS_ORIGINS", "CORS_ORIGINS"))
        if origins is not None:
            values["cors_origins"] = tuple(o.rstrip("/") for o in _csv(origins))
        body = take("max_body_bytes", _env(env, "IBFLOW_BRIDGE_MAX_BODY"))
        if body is not None:
            values["max_body_bytes"] = _positive_int(
                body, sources["max_body_bytes"], "bytes a request body may hold"
            )
        kind = take("market_data_type", _env(env, "TWS_MARKET_DATA_TYPE"))
        if kind is not None:
            if kind.lower() not in _MARKET_DATA_TYPES:
                variable = sources["market_data_type"]
                raise ibflow.ConfigError(
                    f"{variable} must be 1 (live), 2 (frozen), 3 (delayed) or 4 "
                    f"(delayed-frozen), got {kind!r}",
                    variable=variable,
                )
            values["market_data_type"] = _MARKET_DATA_TYPES[kind.lower()]
        return cls(**values, sources=sources)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Target:
    """Where the bridge's session connects, and which variable (or argument) said so."""

    host: str
    port: int
    sources: Mapping[str, str]
    """``host``/``port``/``client_id`` → ``"argument"``, a variable's name, or ``"default"``."""

    def describe(self) -> str:
        """``127.0.0.1:4002 (TWS_PORT)``: the address, and the variables that supplied it."""
        named = [
            s for s in dict.fromkeys(self.sources.values()) if s not in ("default", "argument")
        ]
        where = f"{self.host}:{self.port}"
        return f"{where} (from {', '.join(named)})" if named else where


def resolve_target(
    host: str | None, port: int | None, client_id: int | None, env: Mapping[str, str] | None = None
) -> Target:
    """Host and port of a session built from these arguments, resolved as the Session does."""
    env = os.environ if env is None else env
    sources: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, given in (("host", host), ("port", port), ("client_id", client_id)):
        if given is not None:
            values[name], sources[name] = str(given), "argument"
            continue
        found = _env(env, *_TWS_ENV[name])
        if found is not None:
            values[name], sources[name] = found
        elif name in _TWS_DEFAULTS:
            values[name], sources[name] = _TWS_DEFAULTS[name], "default"
    try:
        number = int(values["port"])
    except ValueError:
        variable = sources["port"]
        raise ibflow.ConfigError(
            f"{variable} must be a port number (paper: 7497 TWS / 4002 Gateway), "
            f"got {values['port']!r}",
            variable=variable,
        ) from None
    return Target(values["host"], number, sources)


def bind_address(
    host: str | None, port: int | None, env: Mapping[str, str] | None = None
) -> tuple[str, int]:
    """Where the server listens: the arguments, else ``HOST``/``PORT``, else 127.0.0.1:8000.

    Raises:
        ConfigError: ``PORT`` is not a port number.
    """
    env = os.environ if env is None else env
    if host is None:
        found = _env(env, "HOST")
        host = found[0] if found else DEFAULT_BIND
    if port is None:
        found = _env(env, "PORT")
        if found is None:
            port = DEFAULT_PORT
        else:
            try:
                port = int(found[0])
            except ValueError:
                port = -1
            if not 0 <= port <= 65535:
                raise ibflow.ConfigError(
                    f"PORT must be the HTTP port to listen on (0-65535), got {found[0]!r}",
                    variable="PORT",
                )
    return host, port


def log_level(env: Mapping[str, str] | None = None) -> str | None:
    """``LOG_LEVEL`` in upper case, or ``None`` when unset.

    Raises:
        ConfigError: not one of CRITICAL, ERROR, WARNING, INFO, DEBUG.
    """
    env = os.environ if env is None else env
    found = _env(env, "LOG_LEVEL")
    if found is None:
        return None
    level = found[0].upper()
    if level not in _LOG_LEVELS or not isinstance(logging.getLevelName(level), int):
        raise ibflow.ConfigError(
            f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {found[0]!r}",
            variable="LOG_LEVEL",
        )
    return level
