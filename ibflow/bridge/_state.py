"""What every endpoint of one bridge app shares: its session and its idempotency store.

Both live on ``app.state`` rather than in module globals, so several bridge apps (one per
account, say) can run in one process, and an app mounted inside another still finds its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Query
from starlette.requests import HTTPConnection

import ibflow

from ._idempotency import IdempotencyStore
from ._schemas import ContractQuery

__all__ = ["Bridge", "ContractDep", "SessionDep", "bridge_of", "session_of"]

_STATE_KEY = "ibflow_bridge"


@dataclass(slots=True)
class Bridge:
    session: ibflow.Session | None
    orders: IdempotencyStore

    def attach(self, state: object) -> None:
        setattr(state, _STATE_KEY, self)


def bridge_of(conn: HTTPConnection) -> Bridge:
    return cast(Bridge, getattr(conn.app.state, _STATE_KEY))


def session_of(conn: HTTPConnection) -> ibflow.Session:
    """The app's session.

    Raises:
        SessionClosedError: the app has not started it (or has stopped).
    """
    session = bridge_of(conn).session
    if session is None:
        raise ibflow.SessionClosedError(
            "the bridge has no session: create_app() without a session connects one in the "
            "app's lifespan, which has not run (a mounted app never runs it: pass a session "
            "you connect yourself)"
        )
    return session


def contract_of(spec: Annotated[ContractQuery, Query()]) -> ibflow.Contract:
    """The contract described by the query string (``symbol=AAPL&sec_type=STK``…).

    Raises:
        InvalidRequest: ibflow refuses the description.
    """
    return spec.to_contract()


SessionDep = Annotated[ibflow.Session, Depends(session_of)]
ContractDep = Annotated[ibflow.Contract, Depends(contract_of)]
