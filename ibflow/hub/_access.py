"""Who a hub or a remote session is to its NATS server, and the connection that proves it.

A NATS server authenticates clients with a user and password (also written in the URL), a
token, an nkey seed file, or a creds file (a user JWT and its seed, as ``nsc`` writes them).
Each comes from an argument or, when the argument is not given, from an ``IBFLOW_NATS_*``
variable, so a bot started by systemd or docker carries no secret on its command line. A
refused credential is an ``AccessDenied`` that names the credential, never a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client as NATS

import ibflow

__all__ = [
    "DEFAULT_URL",
    "ENV",
    "NatsAccess",
    "connect_nats",
    "leave_nats",
    "redact",
    "resolve_access",
]

_log = logging.getLogger("ibflow.hub")

DEFAULT_URL = "nats://127.0.0.1:4222"
ENV: Mapping[str, str] = {
    "url": "IBFLOW_NATS_URL",
    "user": "IBFLOW_NATS_USER",
    "password": "IBFLOW_NATS_PASSWORD",
    "token": "IBFLOW_NATS_TOKEN",
    "creds": "IBFLOW_NATS_CREDS",
    "nkey": "IBFLOW_NATS_NKEY",
}
"""The environment variable each setting falls back to when its argument is not given."""

_REFUSALS = ("authorization violation", "authentication", "user authentication revoked")


@dataclass(frozen=True, slots=True)
class NatsAccess:
    """Where the NATS server is and how to authenticate: ``options`` go to ``nats.connect``."""

    url: str
    servers: list[str]
    options: Mapping[str, Any] = field(default_factory=dict)
    credential: str = "no credentials"
    """What authenticates, and where it came from, for messages (never the secret)."""

    @property
    def shown(self) -> str:
        """The URL with any password or token replaced by ``***``."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` (one or several, comma-separated) without the secrets of its user part."""
    shown = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if parts.username is None and parts.password is None:
            shown.append(one.strip())
            continue
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
        who = f"{parts.username}:***" if parts.password is not None else "***"
        shown.append(urlunsplit((parts.scheme, f"{who}@{host}", parts.path, "", "")))
    return ",".join(shown)


def _setting(name: str, value: str | None, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The value and where it came from (``name=`` or the variable), or ``(None, None)``."""
    if value is not None:
        if not isinstance(value, str) or not value:
            raise ibflow.InvalidRequest(f"{name} must be a non-empty str, got {value!r}")
        return value, f"{name}="
    found = env.get(ENV[name]) or None
    return (found, ENV[name]) if found else (None, None)


def _key_file(name: str, value: str, source: str) -> str:
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ibflow.ConfigError(
            f"the NATS {name} file {str(path)!r} ({source}) does not exist or cannot be read",
            variable=source.rstrip("="),
        )
    if importlib.util.find_spec("nkeys") is None:
        raise ibflow.ConfigError(
            f'NATS {name} files need the nkeys package: pip install "nats-py[nkeys]"',
            variable=source.rstrip("="),
        )
    return str(path)


def resolve_access(
    url: str | None = None,
    *,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    creds: str | None = None,
    nkey: str | None = None,
    env: Mapping[str, str] | None = None,
) -> NatsAccess:
    """The server(s) and credentials, each from its argument or else its ``IBFLOW_NATS_*``.

    ``url`` may list several servers of a cluster, comma-separated, and may carry
    ``user:password@`` or ``token@``. At most one way to authenticate may be given.

    Raises:
        ConfigError: two ways to authenticate, half a user/password pair, or a key file that
            cannot be read (``variable`` names the argument or variable to fix).
    """
    env = os.environ if env is None else env
    url = _setting("url", url, env)[0] or DEFAULT_URL
    servers = [s.strip() for s in url.split(",") if s.strip()]
    in_url = [urlsplit(s) for s in servers if urlsplit(s).username is not None]
    given = {
        name: _setting(name, value, env)
        for name, value in (
            ("user", user),
            ("password", password),
            ("token", token),
            ("creds", creds),
            ("nkey", nkey),
        )
    }
    values = {name: v for name, (v, _) in given.items() if v is not None}
    sources = {name: s for name, (_, s) in given.items() if s is not None}
    if ("user" in values) != ("password" in values):
        missing = "password" if "user" in values else "user"
        raise ibflow.ConfigError(
            f"a NATS user needs a password and a password a user: give {missing}= or "
            f"{ENV[missing]}",
            variable=ENV[missing],
        )
    ways: list[str] = [w for w in ("user", "token", "creds", "nkey") if w in values]
    if in_url:
        ways.append("url")
    if len(ways) > 1:
        raise ibflow.ConfigError(
            "give one way to authenticate to NATS, got "
            + " and ".join(sources.get(w, "the URL's user part") for w in ways),
            variable=sources.get(ways[-1], ENV["url"]).rstrip("="),
        )
    options: dict[str, Any] = {}
    credential = "no credentials"
    if "user" in values:
        options = {"user": values["user"], "password": values["password"]}
        credential = f"user {values['user']!r} and its password ({sources['user']})"
    elif "token" in values:
        options = {"token": values["token"]}
        credential = f"the token ({sources['token']})"
    elif "creds" in values:
        options = {"user_credentials": _key_file("creds", values["creds"], sources["creds"])}
        credential = f"the creds file {options['user_credentials']} ({sources['creds']})"
    elif "nkey" in values:
        options = {"nkeys_seed": _key_file("nkey", values["nkey"], sources["nkey"])}
        credential = f"the nkey seed file {options['nkeys_seed']} ({sources['nkey']})"
    elif in_url:
        who = in_url[0].username
        credential = (
            f"user {who!r} and its password (the URL)"
            if in_url[0].password is not None
            else "the token in the URL"
        )
    return NatsAccess(url=url, servers=servers, options=options, credential=credential)


# How long leaving NATS waits for the messages in flight to reach their callbacks.
_DRAIN_TIMEOUT = 2.0


async def leave_nats(nc: NATS) -> None:
    """Leave NATS: when connected, deliver what is in flight (for at most a few seconds), then
    close in any state, so a client caught reconnecting stops trying."""
    if nc.is_connected:
        with contextlib.suppress(nats.errors.Error):
            await nc.drain()
    if not nc.is_closed:
        with contextlib.suppress(nats.errors.Error):
            await nc.close()


def _refused(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _REFUSALS)


async def connect_nats(
    access: NatsAccess | str, *, name: str, timeout: float | None, **callbacks: Any
) -> NATS:
    """A NATS connection that reconnects forever once up, but gives up on the first connect
    after ``timeout`` seconds with a ``ConnectError`` naming the last failure, and at once with
    ``AccessDenied`` when the server refuses the credentials."""
    if isinstance(access, str):
        access = resolve_access(access, env={})
    failures: list[BaseException] = []
    refused: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def on_error(exc: Exception) -> None:
        failures.append(exc)
        if _refused(exc) and not refused.done():
            refused.set_result(exc)
        _log.warning("%s: NATS: %s", name, exc or type(exc).__name__)

    connecting = asyncio.ensure_future(
        nats.connect(
            access.servers,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            drain_timeout=_DRAIN_TIMEOUT,
            connect_timeout=min(timeout or 2.0, 2.0),
            error_cb=on_error,
            **access.options,
            **callbacks,
        )
    )
    try:
        async with asyncio.timeout(timeout):
            waiters: set[asyncio.Future[Any]] = {connecting, refused}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        pass
    finally:
        if not connecting.done():
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
    if refused.done():
        if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
            with contextlib.suppress(Exception):
                await connecting.result().close()
        raise ibflow.AccessDenied(
            f"the NATS server at {access.shown} refused {access.credential}: "
            f"{refused.result()}. Fix the credential (--nats-token, --nats-creds, --nats-nkey, "
            "user:password@ in the URL, or the IBFLOW_NATS_* variables) or the server's "
            "authorization block"
        )
    if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
        return connecting.result()
    error = connecting.exception() if connecting.done() and not connecting.cancelled() else None
    last = failures[-1] if failures else error
    reason = (str(last) or type(last).__name__) if last is not None else "no answer in time"
    raise ibflow.ConnectError(
        f"cannot reach the NATS server at {access.shown}: {reason}; is nats-server running there?"
    )
