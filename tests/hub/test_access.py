"""NATS credentials pass through to the server, for the hub and remote sessions alike.

Each test starts a real ``nats-server`` with a config file that requires a token, or users
with passwords and an nkey; a wrong or missing credential is ``AccessDenied`` at once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
