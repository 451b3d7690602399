"""``Session`` and ``RemoteSession`` both satisfy ``ibflow.SessionLike``.

Statically: the assignments below type-check under ``mypy --strict`` (run it on this file).
At run time: every member of the protocol exists on both classes with the same parameters
(names, kinds, defaults); a ``RemoteSession`` may add keyword-only parameters (``key=``).
"""

from __future__ import annotations

import inspect
import typing

import pytest

import ibflow
from ibflow.hub import RemoteBracketTrade, RemoteSession, RemoteTrade, RemoteTradeGroup


def _static(session: ibflow.Session, remote: RemoteSession) -> list[ibflow.SessionLike]:
    trades: list[ibflow.TradeLike] = [*session.trades(), *remote.trades()]
    del trades
    return [session, remote]


def _static_handles(
    trade: RemoteTrade, group: RemoteTradeGroup, bracket: RemoteBracketTrade
) -> tuple[ibflow.TradeLike, ibflow.TradeGroupLike, ibflow.BracketTradeLike]:
    return trade, group, bracket


def _protocol_members(protocol: type) -> list[str]:
    own = {name for cls in protocol.__mro__[:-1] for name in vars(cls)}
    return sorted(
        name
        for name in own
        if (not name.startswith("_") or name in {"__aenter__", "__aexit__", "__iter__"})
        and name not in {"__init__", "__subclasshook__"}
    )


SESSION_MEMBERS = _protocol_members(ibflow.SessionLike)


def _parameters(member: object) -> list[tuple[str, object, object]]:
    if isinstance(member, property):
        return [("<property>", None, None)]
    signature = inspect.signature(member)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def _shared(ours: object, theirs: object) -> list[tuple[str, object, object]]:
    """``theirs``'s parameters, less keyword-only extras with a default (``key=``)."""
    expected = {name for name, _, _ in _parameters(ours)}
    return [
        (name, kind, default)
        for name, kind, default in _parameters(theirs)
        if name in expected
        or not (kind is inspect.Parameter.KEYWORD_ONLY and default is not inspect.Parameter.empty)
    ]


def test_the_protocol_lists_the_shared_surface() -> None:
    assert {"place", "quotes", "ticks", "history", "download", "state_changes"} <= set(
        SESSION_MEMBERS
    )


def _variants(member: object) -> list[object]:
    """An overloaded method's overloads, else the method itself."""
    if isinstance(member, property):
        return [member]
    return list(typing.get_overloads(member)) or [member]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", SESSION_MEMBERS)
def test_session_and_remote_session_agree(name: str) -> None:
    protocol = _variants(inspect.getattr_static(ibflow.SessionLike, name))
    session = inspect.getattr_static(ibflow.Session, name)
    assert [_parameters(v) for v in _variants(session)] == [_parameters(v) for v in protocol]
    remote = inspect.getattr_static(RemoteSession, name)
    assert [_shared(p, r) for p, r in zip(protocol, _variants(remote), strict=True)] == [
        _parameters(v) for v in protocol
    ]
    assert _shared(session, remote) == _parameters(session)  # the implementations too
    assert inspect.iscoroutinefunction(remote) == inspect.iscoroutinefunction(session)


@pytest.mark.parametrize(
    ("protocol", "local", "remote"),
    [
        (ibflow.TradeLike, ibflow.Trade, RemoteTrade),
        (ibflow.TradeGroupLike, ibflow.TradeGroup, RemoteTradeGroup),
        (ibflow.BracketTradeLike, ibflow.BracketTrade, RemoteBracketTrade),
    ],
)
def test_trade_handles_agree(protocol: type, local: type, remote: type) -> None:
    for name in _protocol_members(protocol):
        expected = _parameters(inspect.getattr_static(protocol, name))
        assert _parameters(inspect.getattr_static(local, name)) == expected, name
        assert _parameters(inspect.getattr_static(remote, name)) == expected, name
