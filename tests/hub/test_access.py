"""NATS credentials pass through to the server, for the hub and remote sessions alike.

Each test starts a real ``nats-server`` with a config file that requires a token, users with
passwords and an nkey, or (operator mode, JWTs made here as ``nsc`` would) a creds file; a
wrong or missing credential is ``AccessDenied`` at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ibflow
from ibflow.hub import Hub, RemoteSession
from ibflow.hub._access import redact, resolve_access
from ibflow.sim import Simulator
from ibflow.testing import session_for

from .conftest import NatsServer

nkeys = pytest.importorskip("nkeys", reason="nkey authentication needs the nkeys package")


class ConfiguredNats(NatsServer):
    """A nats-server started from a config file (auth blocks need one)."""

    def __init__(self, store: Path, config: str) -> None:
        super().__init__(store)
        self._config = store.parent / f"nats-{self.port}.conf"
        self._config.write_text(
            f'listen: "127.0.0.1:{self.port}"\njetstream {{ store_dir: "{store}" }}\n{config}\n'
        )

    def command(self) -> list[str]:
        return ["-c", str(self._config)]


def _server(tmp_path: Path, config: str) -> Iterator[ConfiguredNats]:
    server = ConfiguredNats(tmp_path / "js", config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def token_nats(tmp_path: Path) -> Iterator[ConfiguredNats]:
    yield from _server(tmp_path, 'authorization { token: "s3cret-token" }')


@pytest.fixture
def nkey_pair() -> tuple[str, str]:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    return seed.decode(), public


@pytest.fixture
def users_nats(tmp_path: Path, nkey_pair: tuple[str, str]) -> Iterator[ConfiguredNats]:
    users = (
        'authorization { users = [ { user: "desk", password: "hub-pw" }, '
        '{ user: "bot", password: "bot-pw" }, { nkey: "' + nkey_pair[1] + '" } ] }'
    )
    yield from _server(tmp_path, users)


def _jwt(issuer: Any, sub: str, name: str, nats: dict[str, object]) -> str:
    """A NATS JWT (v2) for ``sub``, signed by the ``issuer`` key pair."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims: dict[str, object] = {
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": sub,
        "nats": {**nats, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    head = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = issuer.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64(signature)}"


def _key(prefix: int) -> Any:
    return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix)))


def _creds(account: Any, path: Path) -> str:
    """A creds file (user JWT and seed) of a new user of ``account``."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    user = nkeys.from_seed(bytearray(seed)).public_key.decode()
    token = _jwt(account, user, "bot", {"subs": -1, "data": -1, "payload": -1, "type": "user"})
    path.write_text(
        f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed.decode()}\n------END USER NKEY SEED------\n"
    )
    return str(path)


@pytest.fixture
def operator_nats(tmp_path: Path) -> Iterator[tuple[ConfiguredNats, Any]]:
    """A server in operator mode (JWT accounts, as ``nsc`` sets up); yields it and the key pair
    of its one account, which signs users."""
    operator = _key(nkeys.PREFIX_BYTE_OPERATOR)
    account, system = _key(nkeys.PREFIX_BYTE_ACCOUNT), _key(nkeys.PREFIX_BYTE_ACCOUNT)
    op = operator.public_key.decode()
    limits = {"subs": -1, "conn": -1, "leaf": -1, "imports": -1, "exports": -1}
    limits |= {"data": -1, "payload": -1, "wildcards": True}
    js = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    accounts = {
        key.public_key.decode(): _jwt(operator, key.public_key.decode(), name, nats)
        for key, name, nats in (
            (account, "desk", {"type": "account", "limits": {**limits, **js}}),
            (system, "SYS", {"type": "account", "limits": limits}),
        )
    }
    config = (
        f"operator: {_jwt(operator, op, 'op', {'type': 'operator'})}\n"
        f"system_account: {system.public_key.decode()}\n"
        "resolver: MEMORY\n"
        "resolver_preload: { " + ", ".join(f"{k}: {v}" for k, v in accounts.items()) + " }"
    )
    for server in _server(tmp_path, config):
        yield server, account


async def _hub_on(sim: Simulator, url: str, name: str, **credentials: str) -> Hub:
    session = session_for(sim)
    await session.connect()
    hub = Hub(session, url, name=name, connect_timeout=5, **credentials)
    try:
        await hub.start()
    except BaseException:
        await session.aclose()
        raise
    return hub


async def test_token(ib_sim: Simulator, token_nats: ConfiguredNats, hub_name: str) -> None:
    url = token_nats.url
    with pytest.raises(ibflow.AccessDenied, match="refused no credentials") as denied:
        await _hub_on(ib_sim, url, hub_name)
    assert isinstance(denied.value, ibflow.ConnectError)
    with pytest.raises(ibflow.AccessDenied, match=r"refused the token \(token=\)"):
        async with RemoteSession(url, hub=hub_name, token="wrong", timeout=5):
            pass
    hub = await _hub_on(ib_sim, url, hub_name, token="s3cret-token")
    try:
        async with RemoteSession(url, hub=hub_name, token="s3cret-token") as remote:
            assert remote.accounts == ("DU1234567",)
        # The token in the URL works too, and never shows in messages.
        secret_url = url.replace("nats://", "nats://s3cret-token@")
        async with RemoteSession(secret_url, hub=hub_name) as remote:
            assert await remote.positions() is not None
            assert "s3cret" not in repr(remote)
            assert "s3cret" not in hub.url
    finally:
        await hub.aclose()
        await hub._session.aclose()


async def test_user_password_and_nkey(
    ib_sim: Simulator,
    users_nats: ConfiguredNats,
    hub_name: str,
    nkey_pair: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = users_nats.url
    hub = await _hub_on(ib_sim, url, hub_name, user="desk", password="hub-pw")
    try:
        # In the URL
        in_url = url.replace("nats://", "nats://bot:bot-pw@")
        async with RemoteSession(in_url, hub=hub_name) as remote:
            assert remote.accounts == ("DU1234567",)
        with pytest.raises(ibflow.AccessDenied, match="user 'bot'") as denied:
            async with RemoteSession(url.replace("nats://", "nats://bot:nope@"), hub=hub_name):
                pass
        assert "nope" not in str(denied.value)  # the password is never shown
        # From the environment
        monkeypatch.setenv("IBFLOW_NATS_URL", url)
        monkeypatch.setenv("IBFLOW_NATS_USER", "bot")
        monkeypatch.setenv("IBFLOW_NATS_PASSWORD", "bot-pw")
        async with RemoteSession(hub=hub_name) as remote:
            assert remote.is_paper
        monkeypatch.delenv("IBFLOW_NATS_USER")
        monkeypatch.delenv("IBFLOW_NATS_PASSWORD")
        # An nkey seed file
        seed_file = tmp_path / "bot.nk"
        seed_file.write_text(nkey_pair[0])
        async with RemoteSession(url, hub=hub_name, nkey=str(seed_file)) as remote:
            assert remote.accounts == ("DU1234567",)
        other = tmp_path / "other.nk"
        other.write_text(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode())
        with pytest.raises(ibflow.AccessDenied, match="nkey seed file"):
            async with RemoteSession(url, hub=hub_name, nkey=str(other), timeout=5):
                pass
    finally:
        await hub.aclose()
        await hub._session.aclose()


async def test_creds_file(
    ib_sim: Simulator,
    operator_nats: tuple[ConfiguredNats, Any],
    hub_name: str,
    tmp_path: Path,
) -> None:
    server, account = operator_nats
    hub = await _hub_on(ib_sim, server.url, hub_name, creds=_creds(account, tmp_path / "hub.creds"))
    try:
        bot = _creds(account, tmp_path / "bot.creds")
        async with RemoteSession(server.url, hub=hub_name, creds=bot) as remote:
            assert remote.accounts == ("DU1234567",)
        # A user signed by an account this server does not know.
        stranger = _creds(_key(nkeys.PREFIX_BYTE_ACCOUNT), tmp_path / "stranger.creds")
        with pytest.raises(ibflow.AccessDenied, match="creds file"):
            async with RemoteSession(server.url, hub=hub_name, creds=stranger, timeout=5):
                pass
    finally:
        await hub.aclose()
        await hub._session.aclose()


def test_settings_are_checked_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ibflow.ConfigError, match="one way to authenticate") as two:
        resolve_access("nats://127.0.0.1:1", token="t", user="u", password="p", env={})
    assert two.value.variable in ("token", "user")
    with pytest.raises(ibflow.ConfigError, match="needs a password") as half:
        resolve_access("nats://127.0.0.1:1", user="u", env={})
    assert half.value.variable == "IBFLOW_NATS_PASSWORD"
    with pytest.raises(ibflow.ConfigError, match="cannot be read") as missing:
        resolve_access(env={"IBFLOW_NATS_CREDS": str(tmp_path / "nope.creds")})
    assert missing.value.variable == "IBFLOW_NATS_CREDS"
    access = resolve_access(env={"IBFLOW_NATS_URL": "nats://a:1, nats://b:2"})
    assert access.servers == ["nats://a:1", "nats://b:2"]
    assert resolve_access(env={}).servers == ["nats://127.0.0.1:4222"]
    assert redact("nats://u:pw@h:4222,nats://tok@g:1") == "nats://u:***@h:4222,nats://***@g:1"


async def test_hub_cli_refused_token_is_one_error_line(token_nats: ConfiguredNats) -> None:
    env = {**os.environ, "IBFLOW_NATS_TOKEN": "wrong"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from ibflow.cli import main; main()",
        "hub",
        "--sim",
        "--nats",
        token_nats.url,
        "--name",
        "desk1",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 1
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith(f"ibflow: error: the NATS server at {token_nats.url} refused the token")
    assert "IBFLOW_NATS_TOKEN" in last
    assert b"Traceback" not in err
