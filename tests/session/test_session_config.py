"""Configuration precedence and validation, with no loop and no socket."""

from __future__ import annotations

import pytest

import ibflow
from ibflow._config import DEFAULT_HOST, DEFAULT_PORT, resolve_config


def test_defaults_without_arguments_or_environment() -> None:
    cfg = resolve_config(env={})
    assert (cfg.host, cfg.port, cfg.client_id, cfg.account, cfg.readonly) == (
        DEFAULT_HOST,
        DEFAULT_PORT,
        None,
        None,
        False,
    )
    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 7497)
    assert set(cfg.sources.values()) == {"default"}


@pytest.mark.parametrize(
    ("env", "expected_port", "source"),
    [
        ({"TWS_PORT": "4002"}, 4002, "TWS_PORT"),
        ({"TWS_PORT": "4002", "IB_PORT": "4001"}, 4001, "IB_PORT"),
        ({"TWS_PORT": "4002", "IB_PORT": "4001", "IBFLOW_PORT": "7496"}, 7496, "IBFLOW_PORT"),
        ({"IBFLOW_PORT": "  ", "IB_PORT": "4001"}, 4001, "IB_PORT"),  # empty counts as unset
    ],
)
def test_environment_precedence(env: dict[str, str], expected_port: int, source: str) -> None:
    cfg = resolve_config(env=env)
    assert cfg.port == expected_port
    assert cfg.sources["port"] == source


def test_explicit_arguments_beat_every_variable() -> None:
    env = {
        "IBFLOW_HOST": "h1",
        "IBFLOW_PORT": "1",
        "IBFLOW_CLIENT_ID": "1",
        "IBFLOW_ACCOUNT": "DU1",
        "IB_HOST": "h2",
        "TWS_ACCOUNT": "DU2",
    }
    cfg = resolve_config("gw.local", 4002, 9, "DU1234567", env=env)
    assert (cfg.host, cfg.port, cfg.client_id, cfg.account) == ("gw.local", 4002, 9, "DU1234567")
    assert {cfg.sources[k] for k in ("host", "port", "client_id", "account")} == {"argument"}


def test_every_setting_reads_its_variables() -> None:
    cfg = resolve_config(
        env={
            "TWS_HOST": "10.0.0.2",
            "IB_CLIENT_ID": "17",
            "TWS_CLIENT_ID": "18",
            "TWS_ACCOUNT": "DU7654321",
            "IBFLOW_READONLY": "yes",
        }
    )
    assert cfg.host == "10.0.0.2"
    assert cfg.client_id == 17
    assert cfg.account == "DU7654321"
    assert cfg.readonly is True
    assert cfg.sources["readonly"] == "IBFLOW_READONLY"


def test_readonly_from_the_environment_can_only_tighten() -> None:
    assert resolve_config(readonly=True, env={"IBFLOW_READONLY": "0"}).readonly is True
    assert resolve_config(readonly=False, env={"IBFLOW_READONLY": "1"}).readonly is True
    assert resolve_config(readonly=False, env={"IBFLOW_READONLY": "off"}).readonly is False


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"IB_PORT": "abc"}, "IB_PORT", "port number"),
        ({"IBFLOW_PORT": "99999"}, "IBFLOW_PORT", "between 1 and 65535"),
        ({"TWS_CLIENT_ID": "x1"}, "TWS_CLIENT_ID", "integer client id"),
        ({"IBFLOW_CLIENT_ID": "-1"}, "IBFLOW_CLIENT_ID", "between 0 and 2147483647"),
        ({"IB_CLIENT_ID": str(2**31)}, "IB_CLIENT_ID", "between 0 and 2147483647"),
        ({"IBFLOW_READONLY": "maybe"}, "IBFLOW_READONLY", "1/0"),
        ({"TWS_ACCOUNT": "DU-12"}, "TWS_ACCOUNT", "account id"),
    ],
)
def test_bad_environment_values_name_the_variable(
    env: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(ibflow.ConfigError) as caught:
        resolve_config(env=env)
    assert caught.value.variable == variable
    assert variable in str(caught.value)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ibflow.InvalidRequest)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "variable"),
    [
        ({"port": 0}, "port"),
        ({"port": True}, "port"),
        ({"port": "7497x"}, "port"),
        ({"client_id": -3}, "client_id"),
        ({"client_id": 1.5}, "client_id"),
        ({"host": ""}, "host"),
        ({"account": ""}, "account"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], variable: str) -> None:
    with pytest.raises(ibflow.ConfigError) as caught:
        resolve_config(env={}, **kwargs)  # type: ignore[arg-type]
    assert caught.value.variable == variable


def test_client_id_zero_is_allowed_explicitly() -> None:
    assert resolve_config(client_id=0, env={}).client_id == 0


def test_session_reads_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_HOST", "example.invalid")
    monkeypatch.setenv("IB_PORT", "4002")
    monkeypatch.setenv("IBFLOW_CLIENT_ID", "33")
    session = ibflow.Session()
    assert session.client_id == 33
    assert "example.invalid:4002" in repr(session)


def test_session_reports_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_PORT", "seven")
    with pytest.raises(ibflow.ConfigError, match="IB_PORT"):
        ibflow.Session()
