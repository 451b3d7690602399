"""Where the connection settings come from, in one documented order.

People already configure IB programs through a handful of environment variables
(``IB_PORT``, ``TWS_PORT``…), and a service wants to set everything from its environment while a
notebook wants explicit arguments. This module resolves each setting once, in this order:

1. an explicit argument to ``Session(...)`` / ``ibflow.connect(...)``;
2. ``IBFLOW_HOST``, ``IBFLOW_PORT``, ``IBFLOW_CLIENT_ID``, ``IBFLOW_ACCOUNT``, ``IBFLOW_READONLY``;
3. the names people already use: ``IB_HOST``/``IB_PORT``/``IB_CLIENT_ID``, then
   ``TWS_HOST``/``TWS_PORT``/``TWS_CLIENT_ID``/``TWS_ACCOUNT``;
4. defaults: host ``127.0.0.1``, port 7497 (TWS paper), a fresh client id, no account.

``readonly`` is a safety switch: the argument and ``IBFLOW_READONLY`` are combined with OR, so
the environment can make a program read-only but never the reverse. An empty variable counts as
unset. A bad value raises :class:`ConfigError` naming the argument or variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._client_ids import check_client_id
from ._errors import ConfigError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENV_NAMES",
    "JOURNAL_ENV",
    "LIVE_PORTS",
    "PAPER_PORTS",
    "ResolvedConfig",
    "port_hint",
    "resolve_config",
    "resolve_journal",
]

JOURNAL_ENV = "IBFLOW_JOURNAL"
"""The order journal's file when ``Session(journal=...)`` is not given."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7497

PAPER_PORTS: Mapping[int, str] = {7497: "TWS paper", 4002: "IB Gateway paper"}
LIVE_PORTS: Mapping[int, str] = {7496: "TWS live", 4001: "IB Gateway live"}

ENV_NAMES: Mapping[str, tuple[str, ...]] = {
    "host": ("IBFLOW_HOST", "IB_HOST", "TWS_HOST"),
    "port": ("IBFLOW_PORT", "IB_PORT", "TWS_PORT"),
    "client_id": ("IBFLOW_CLIENT_ID", "IB_CLIENT_ID", "TWS_CLIENT_ID"),
    "account": ("IBFLOW_ACCOUNT", "TWS_ACCOUNT"),
    "readonly": ("IBFLOW_READONLY",),
}
"""Environment variables per setting, highest precedence first."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """The settings a session connects with, and where each one came from."""

    host: str
    port: int
    client_id: int | None
    account: str | None
    readonly: bool
    sources: Mapping[str, str] = field(default_factory=dict)
    """Setting name → ``"argument"``, the environment variable's name, or ``"default"``."""


def port_hint(port: int) -> str:
    """A short description of a well-known TWS/Gateway port, or ``""``."""
    if port in PAPER_PORTS:
        return PAPER_PORTS[port]
    if port in LIVE_PORTS:
        return LIVE_PORTS[port]
    return ""


def _from_env(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for var in ENV_NAMES[name]:
        raw = env.get(var)
        if raw is not None and raw.strip():
            return raw.strip(), var
    return None


def _check_host(value: object, variable: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{variable} must be a host name or IP address such as '127.0.0.1', got {value!r}",
            variable=variable,
        )
    return value.strip()


def _check_port(value: object, variable: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(
                f"{variable} must be a port number (paper: 7497 TWS / 4002 Gateway, "
                f"live: 7496 TWS / 4001 Gateway), got {value!r}",
                variable=variable,
            ) from None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(
            f"{variable} must be a port number between 1 and 65535 (paper: 7497 TWS / "
            f"4002 Gateway, live: 7496 TWS / 4001 Gateway), got {value!r}",
            variable=variable,
        )
    return value


def _check_env_client_id(raw: str, variable: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{variable} must be an integer client id, got {raw!r}; unset it to get a fresh id",
            variable=variable,
        ) from None
    return check_client_id(value, variable=variable)


def _check_account(value: object, variable: str) -> str:
    if not isinstance(value, str) or not value.strip() or not value.strip().isalnum():
        raise ConfigError(
            f"{variable} must be an IB account id such as 'DU1234567' (letters and digits), "
            f"got {value!r}",
            variable=variable,
        )
    return value.strip()


def _check_bool(raw: str, variable: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(
        f"{variable} must be one of 1/0, true/false, yes/no, on/off, got {raw!r}",
        variable=variable,
    )


def resolve_config(
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    account: str | None = None,
    readonly: bool = False,
    *,
    env: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """Resolve the connection settings; see the module docstring for the order.

    Args:
        host, port, client_id, account, readonly: explicit arguments (``None`` = not given).
        env: the environment to read; ``os.environ`` when omitted.

    Raises:
        ConfigError: a value is malformed or out of range; the message names its origin.
    """
    environ = os.environ if env is None else env
    sources: dict[str, str] = {}

    if host is not None:
        host_value = _check_host(host, "host")
        sources["host"] = "argument"
    elif (found := _from_env(environ, "host")) is not None:
        host_value = _check_host(found[0], found[1])
        sources["host"] = found[1]
    else:
        host_value = DEFAULT_HOST
        sources["host"] = "default"

    if port is not None:
        port_value = _check_port(port, "port")
        sources["port"] = "argument"
    elif (found := _from_env(environ, "port")) is not None:
        port_value = _check_port(found[0], found[1])
        sources["port"] = found[1]
    else:
        port_value = DEFAULT_PORT
        sources["port"] = "default"

    client_id_value: int | None
    if client_id is not None:
        client_id_value = check_client_id(client_id, variable="client_id")
        sources["client_id"] = "argument"
    elif (found := _from_env(environ, "client_id")) is not None:
        client_id_value = _check_env_client_id(found[0], found[1])
        sources["client_id"] = found[1]
    else:
        client_id_value = None
        sources["client_id"] = "default"

    account_value: str | None
    if account is not None:
        account_value = _check_account(account, "account")
        sources["account"] = "argument"
    elif (found := _from_env(environ, "account")) is not None:
        account_value = _check_account(found[0], found[1])
        sources["account"] = found[1]
    else:
        account_value = None
        sources["account"] = "default"

    if not isinstance(readonly, bool):
        raise ConfigError(f"readonly must be True or False, got {readonly!r}", variable="readonly")
    readonly_value = readonly
    sources["readonly"] = "argument" if readonly else "default"
    if (found := _from_env(environ, "readonly")) is not None:
        env_readonly = _check_bool(found[0], found[1])
        if env_readonly and not readonly:
            readonly_value = True
            sources["readonly"] = found[1]

    return ResolvedConfig(
        host=host_value,
        port=port_value,
        client_id=client_id_value,
        account=account_value,
        readonly=readonly_value,
        sources=sources,
    )


def resolve_journal(value: object, *, env: Mapping[str, str] | None = None) -> Path | None:
    """The order journal's path: the argument, else ``IBFLOW_JOURNAL``, else none.

    Raises:
        ConfigError: not a path (a ``str`` or ``os.PathLike``), or an empty one.
    """
    variable = "journal"
    if value is None:
        raw = (os.environ if env is None else env).get(JOURNAL_ENV, "")
        if not raw:
            return None
        value, variable = raw, JOURNAL_ENV
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(
            f"{variable} must be a file path (str or os.PathLike) for the order journal, or "
            f"None; got {value!r:.80}",
            variable=variable,
        )
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise ConfigError(
            f"{variable} must name a file for the order journal, got {value!r:.80}",
            variable=variable,
        )
    return Path(text).expanduser()
