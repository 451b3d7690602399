"""The bridge's HTTP endpoints: one thin route per Session method, served under ``/api/v1``.

Each route reads its input, calls the one ibflow method that does the work, and returns the
mirrored model; validation, timeouts and IB's errors stay ibflow's business (the handlers in
``_errors`` turn them into statuses). The one route with logic of its own is ``POST /orders``:
its ``Idempotency-Key`` becomes the order's ibflow key (kept by TWS and the journal, so it holds
across restarts) and also names the answer in the bridge's store (so a retry gets the same
response, byte for byte). Every route that
changes an order needs the bridge's token when one is configured.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import Response

import ibflow

from . import _requests as requests
from . import _schemas as schemas
from ._errors import BridgeError, describe, error_content
from ._idempotency import Answer, check_key, order_key
from ._metrics import Metrics
from ._security import require_token
from ._settings import API_PREFIX
from ._state import ContractDep, SessionDep, bridge_of

__all__ = ["router"]

log = logging.getLogger("ibflow.bridge")

router = APIRouter(prefix=API_PREFIX)

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody, "description": text}
    for status, text in (
        (401, "a token is configured and the request has none (order routes)"),
        (403, "refused on purpose: read-only session, safety rail, wrong token"),
        (404, "unknown contract (or order)"),
        (409, "the contract is ambiguous: pick one of `candidates`"),
        (422, "invalid input: the message says what to fix"),
        (429, "IB's pacing: wait `Retry-After` seconds"),
        (502, "IB refused the request"),
        (503, "not connected to TWS right now"),
        (504, "TWS did not answer in time"),
    )
}

Account = Annotated[
    str | None,
    Query(description="One managed account; default: the session's account, or all of them."),
]
OneAccount = Annotated[
    str | None,
    Query(description="A managed account; may be left out when the login manages one."),
]


# -- session --------------------------------------------------------------------------------------


@router.get("/accounts", responses=_ERRORS, tags=["session"])
async def accounts(session: SessionDep) -> list[str]:
    """The accounts this login manages."""
    return list(session.accounts)


# -- account --------------------------------------------------------------------------------------


@router.get("/positions", responses=_ERRORS, tags=["account"])
async def positions(session: SessionDep, account: Account = None) -> list[schemas.Position]:
    """The positions TWS reports right now."""
    return [schemas.Position.model_validate(p) for p in await session.positions(account)]


@router.get("/account/values", responses=_ERRORS, tags=["account"])
async def account_values(
    session: SessionDep, account: Account = None
) -> list[schemas.AccountValue]:
    """Every account value (NetLiquidation, CashBalance per currency…), as IB's text."""
    rows = await session.account_values(account)
    return [schemas.AccountValue.model_validate(v) for v in rows]


@router.get("/account/summary", responses=_ERRORS, tags=["account"])
async def account_summary(
    session: SessionDep, account: OneAccount = None
) -> schemas.AccountSummary:
    """Net liquidation, cash, buying power and margin of one account."""
    return schemas.AccountSummary.model_validate(await session.account_summary(account))


@router.get("/portfolio", responses=_ERRORS, tags=["account"])
async def portfolio(session: SessionDep, account: Account = None) -> list[schemas.PortfolioItem]:
    """Each position with its market price, value and PnL."""
    rows = await session.portfolio(account)
    return [schemas.PortfolioItem.model_validate(p) for p in rows]


@router.get("/pnl", responses=_ERRORS, tags=["account"])
async def pnl(session: SessionDep, account: OneAccount = None) -> schemas.PnL:
    """The account's daily, unrealized and realized profit and loss."""
    return schemas.PnL.model_validate(await session.pnl(account))


# -- contracts and market data --------------------------------------------------------------------


@router.get("/contracts", responses=_ERRORS, tags=["contracts"])
async def contracts(session: SessionDep, contract: ContractDep) -> list[schemas.ContractDetails]:
    """Everything IB knows about every contract matching the description."""
    rows = await session.contract_details(contract)
    return [schemas.ContractDetails.model_validate(d) for d in rows]


@router.get("/contracts/qualify", responses=_ERRORS, tags=["contracts"])
async def qualify(session: SessionDep, contract: ContractDep) -> schemas.Contract:
    """The one contract the description names (409 with the candidates when it names several)."""
    [qualified] = await session.qualify(contract)
    return schemas.Contract.model_validate(qualified)


@router.get("/quote", responses=_ERRORS, tags=["market data"])
async def quote(session: SessionDep, contract: ContractDep) -> schemas.Quote:
    """One snapshot quote. For a live feed use the ``/ws/quotes`` websocket."""
    return schemas.Quote.model_validate(await session.quote(contract))


@router.get("/history", responses=_ERRORS, tags=["market data"])
async def history(
    session: SessionDep,
    contract: ContractDep,
    period: Annotated[str, Query(description='Bar size: "1m", "5m", "1h", "1d", "5 mins"…')] = "5m",
    duration: Annotated[str, Query(description='How far back: "3600 S", "1 D", "2 W"…')] = "1 D",
    what: Annotated[str, Query(description="TRADES, MIDPOINT, BID, ASK, BID_ASK…")] = "TRADES",
    rth: Annotated[bool, Query(description="Regular trading hours only.")] = True,
    end: Annotated[
        datetime | None, Query(description="ISO-8601 with an offset; default: now.")
    ] = None,
) -> list[schemas.Bar]:
    """Historical bars, oldest first, under ibflow's pacing."""
    bars = await session.history(
        contract, period=period, duration=duration, what=what, rth=rth, end=end
    )
    return [schemas.Bar.model_validate(b) for b in bars]


# -- orders ---------------------------------------------------------------------------------------


@router.get("/orders", responses=_ERRORS, tags=["orders"])
async def open_orders(session: SessionDep) -> list[schemas.OpenOrder]:
    """The orders TWS has open for this session (every client's with ``all_open_orders``),
    each saying whether this session may change it and whether it placed it."""
    rows = await session.open_orders()
    return [_open_order(session, row) for row in rows]


def _open_order(session: ibflow.Session, row: ibflow.OrderSnapshot) -> schemas.OpenOrder:
    trade = next(
        (
            t
            for t in session.trades()
            if (row.perm_id and t.perm_id == row.perm_id)
            or (t.order_id == row.order_id and t.client_id == row.client_id)
        ),
        None,
    )
    fields = schemas.OrderSnapshot.model_validate(row).model_dump()
    if trade is not None:
        owned, adopted = trade.owned, trade.adopted
    else:  # an order ibflow does not follow (one with an algo or conditions it found at TWS)
        owned = bool(row.order_id) and row.client_id == session.client_id
        adopted = True
    return schemas.OpenOrder(**fields, owned=owned, adopted=adopted)


@router.get("/orders/completed", responses=_ERRORS, tags=["orders"])
async def completed_orders(
    session: SessionDep,
    api_only: Annotated[bool, Query(description="Only orders placed through the API.")] = False,
) -> list[schemas.OrderSnapshot]:
    """Orders that finished today: filled, cancelled or inactive."""
    rows = await session.completed_orders(api_only=api_only)
    return [schemas.OrderSnapshot.model_validate(o) for o in rows]


@router.get("/fills", responses=_ERRORS, tags=["orders"])
async def fills(
    session: SessionDep,
    since: Annotated[
        datetime | None, Query(description="Only executions at or after this (with an offset).")
    ] = None,
) -> list[schemas.Fill]:
    """The account's executions (every client id), with their commissions."""
    return [schemas.Fill.model_validate(f) for f in await session.fills(since)]


# Set before FastAPI validates the body, so a request without the token learns nothing more.
_TOKEN = [Depends(require_token)]


@router.post(
    "/orders",
    dependencies=_TOKEN,
    status_code=201,
    response_model=schemas.Trade,
    responses={
        **_ERRORS,
        400: {"model": schemas.ErrorBody, "description": "no usable Idempotency-Key header"},
    },
    tags=["orders"],
)
async def place_order(
    request: Request,
    body: requests.PlaceOrder,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Required: one unique value per order (a UUID). Retries reuse it. Up "
            "to 64 printable characters without spaces or ':' it is also the order's ibflow "
            "key (its orderRef at TWS), which outlives a restart of the bridge."
        ),
    ] = None,
    wait: Annotated[
        float,
        Query(ge=0, le=60, description="Seconds to wait for the order to be done (0: don't)."),
    ] = 0.0,
) -> Response:
    """Place one order; a repeated ``Idempotency-Key`` gets the first answer and sends nothing.

    Returns once TWS acknowledged the order (or, with ``wait``, once it is done or ``wait``
    seconds passed), with the order's state at that moment; ``GET /orders/{order_id}`` reads
    it later. The first answer for a key is final, errors included: retry a failed order with
    a new key.
    """
    key = check_key(idempotency_key)
    bridge = bridge_of(request)
    # Built before the key is recorded: a body ibflow refuses is answered 422 (an unknown
    # condition contract 404) and the key stays free for the corrected request.
    try:
        contract = body.contract.to_contract()
        conditions = await requests.conditions_of(session, body.order.conditions)
        order = body.order.to_order(conditions)
    except ibflow.IBFlowError as exc:
        bridge.metrics.orders_rejected.labels(type(exc).__name__).inc()
        raise
    # The key names the order, so only the body must match; ``wait`` shapes just the answer.
    fingerprint = json.dumps(body.model_dump(mode="json"), sort_keys=True)

    def locate(order_id: int) -> str:
        return str(request.url_for("get_order", order_id=order_id))

    # The order carries the key to TWS unless it cannot: a key ibflow does not take, or an
    # order_ref of the client's own (then only the bridge's store, in memory, holds the key).
    mapped = order_key(key) if order.order_ref in (None, key) else None
    answer, replayed = await bridge.orders.run(
        key,
        fingerprint,
        lambda: _place(session, contract, order, mapped, wait, locate, bridge.metrics),
    )
    return answer.response(replayed=replayed)


async def _place(
    session: ibflow.Session,
    contract: ibflow.Contract,
    order: ibflow.Order,
    key: str | None,
    wait: float,
    locate: Callable[[int], str],
    metrics: Metrics,
) -> Answer:
    """Place the order and turn whatever happens into the answer for its key (kept unless
    nothing was sent)."""
    try:
        trade = await session.place(contract, order, key=key)
        if key is not None and not _same_order(trade, contract, order):
            # ibflow found another order under the key (placed before a restart) and sent
            # nothing: the key is free in the store for the request it really names.
            raise BridgeError(
                422,
                "IdempotencyKeyReused",
                f"this Idempotency-Key already names order {trade.order_id} ({trade.order.side} "
                f"{trade.order.order_type} {trade.contract.display_name}); nothing was sent. "
                "Use a new key for a new order",
            )
        if wait > 0:
            # The order is placed: whatever the waiting ends in, the answer is the trade.
            with contextlib.suppress(
                ibflow.RequestTimeout, ibflow.ConnectionLost, ibflow.SessionClosedError
            ):
                await trade.wait_done(timeout=wait)
    except BridgeError as exc:
        error = schemas.ErrorBody(error=exc.error, code=None, message=exc.message)
        return Answer(exc.status, json.dumps(error_content(error)).encode(), keep=False)
    except ibflow.IBFlowError as exc:
        metrics.orders_rejected.labels(type(exc).__name__).inc()
        status, error, headers = describe(exc)
        body = json.dumps(error_content(error)).encode()
        return Answer(status, body, headers, keep=not nothing_sent(exc))
    except Exception as exc:
        # A bug, not a refusal: the order may have gone out, so this answer is kept for the
        # key too, and a retry cannot send it again.
        log.exception("placing %r for %s failed unexpectedly", order, contract.display_name)
        error = schemas.ErrorBody(
            error=type(exc).__name__, code=None, message=f"internal error while placing: {exc}"
        )
        return Answer(500, json.dumps(error_content(error)).encode())
    metrics.orders_placed.inc()
    body = schemas.Trade.model_validate(trade).model_dump_json().encode()
    return Answer(201, body, {"Location": locate(trade.order_id)})


def _same_order(trade: ibflow.Trade, contract: ibflow.Contract, order: ibflow.Order) -> bool:
    """Whether ``trade`` can be the order a request describes (its quantity and prices may
    have been modified since, its side, type and instrument not)."""
    theirs = trade.contract
    same_contract = (
        theirs.con_id == contract.con_id
        if contract.con_id is not None
        else (theirs.symbol, theirs.sec_type) == (contract.symbol, contract.sec_type)
    )
    terms = trade.order
    return same_contract and (terms.side, terms.order_type) == (order.side, order.order_type)


# What ``place()`` raises before anything goes out: validation, lookups, safety rails.
_REFUSED_BEFORE_SENDING = (
    ibflow.InvalidRequest,
    ibflow.ContractNotFound,
    ibflow.AmbiguousContract,
    ibflow.SafetyError,
    ibflow.ConfigError,
)


def nothing_sent(exc: ibflow.IBFlowError) -> bool:
    """Whether ``place()`` failed before sending the order, so its key may be used again.

    An error's own ``sent`` flag (``True``/``False``) decides when it has one; otherwise the
    classes ibflow raises before sending do.
    """
    sent = getattr(exc, "sent", None)
    if isinstance(sent, bool):
        return not sent
    return isinstance(exc, _REFUSED_BEFORE_SENDING)


@router.post("/orders/what-if", responses=_ERRORS, tags=["orders"])
async def what_if(body: requests.PlaceOrder, session: SessionDep) -> schemas.OrderPreview:
    """An order's margin impact and commission; nothing is placed."""
    conditions = await requests.conditions_of(session, body.order.conditions)
    order = body.order.to_order(conditions)
    preview = await session.what_if(body.contract.to_contract(), order)
    return schemas.OrderPreview.model_validate(preview)


@router.get("/orders/{order_id}", responses=_ERRORS, tags=["orders"])
async def get_order(order_id: int, session: SessionDep) -> schemas.Trade:
    """An order this bridge's session placed or adopted, as it stands now."""
    return schemas.Trade.model_validate(_trade(session, order_id))


@router.delete("/orders/{order_id}", dependencies=_TOKEN, responses=_ERRORS, tags=["orders"])
async def cancel_order(order_id: int, session: SessionDep) -> schemas.Trade:
    """Cancel an order of this bridge's client id; returns once TWS reports it done.

    Another client id's order answers 403 ``NotOrderOwner`` and nothing is sent.
    """
    trade = _trade(session, order_id)
    await trade.cancel()
    return schemas.Trade.model_validate(trade)


@router.put("/orders/{order_id}", dependencies=_TOKEN, responses=_ERRORS, tags=["orders"])
async def modify_order(
    order_id: int, body: requests.ModifyOrder, session: SessionDep
) -> schemas.Trade:
    """Change an open order's terms (those ``Trade.modify()`` takes for its type); returns
    once TWS reports them. Another client id's order answers 403 and nothing is sent."""
    trade = _trade(session, order_id)
    await trade.modify(
        quantity=body.quantity,
        limit_price=body.limit_price,
        stop_price=body.stop_price,
        trigger_price=body.trigger_price,
        trail_amount=body.trail_amount,
        trail_percent=body.trail_percent,
        trail_stop_price=body.trail_stop_price,
        limit_offset=body.limit_offset,
        offset=body.offset,
        cap=body.cap,
        tif=body.tif,
        good_till=body.good_till,
    )
    return schemas.Trade.model_validate(trade)


def _trade(session: ibflow.Session, order_id: int) -> ibflow.Trade:
    """The session's trade with ``order_id``: its own client id's first (order ids are per
    client id), else an adopted one of another client id, which ``modify``/``cancel`` refuse
    with ``NotOrderOwner`` before sending anything."""
    matches = [t for t in session.trades() if t.order_id == order_id]
    if matches:
        return min(matches, key=lambda t: not t.owned)
    raise BridgeError(
        404,
        "OrderNotFound",
        f"order {order_id} was not placed by this bridge's session (client id "
        f"{session.client_id}); TWS lets only the client that placed an order change it. "
        "GET /orders lists the open ones.",
    )
