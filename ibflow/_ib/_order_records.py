"""Orders' values across the ib_async border: ibflow's order records to ib_async objects and
back, and the records of the order messages the tap hands on.

camelCase, ``UNSET_DOUBLE`` and empty-string sentinels stop here: an unset value is ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import ib_async

from .._records import orders as m
from .._records.contracts import Contract
from .._records.orders import Commission, Fill, Order, OrderPreview, OrderSnapshot
from ._contracts import contract_from_ib
from ._order_terms import aux_price, put_terms, reported_terms, terms_from_ib

__all__ = [
    "OpenOrderUpdate",
    "StatusUpdate",
    "commission_from_ib",
    "execution_problem",
    "fill_from_ib",
    "int_id",
    "number",
    "open_update",
    "order_to_ib",
    "preview_from_ib",
    "snapshot_from_ib",
    "text_or_none",
]

_UNSET_LIMIT = 1e300  # IB writes 1.7976931348623157E308 (float max) for "not set"
_UNSET_INT = 2**31 - 1
# Order types whose lmtPrice is a limit (or a relative or pegged order's cap).
_HAS_LIMIT = frozenset({"LMT", "STP LMT", "LOC", "LIT", "REL", "PEG MID", "PEGMID"})


# -- values ------------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """A finite float, or ``None`` for IB's "not set" spellings (``""``, NaN, float max)."""
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(out) or abs(out) >= _UNSET_LIMIT:
        return None
    return out


def text_or_none(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def int_id(value: Any) -> int | None:
    try:
        out = int(value)
    except (TypeError, ValueError):
        return None
    return out if 0 < out < _UNSET_INT else None


def _order_id(value: Any) -> int | None:
    """An order id; TWS gives orders placed by hand negative ids once bound to client id 0,
    and 0 (``None`` here) while unbound."""
    try:
        out = int(value)
    except (TypeError, ValueError):
        return None
    return out if out != 0 and abs(out) < _UNSET_INT else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_ib_time(text: str) -> datetime | None:
    """``yyyymmdd hh:mm:ss [zone]`` or ``yyyymmdd-hh:mm:ss`` (UTC), as TWS writes times."""
    text = (text or "").strip()
    if not text:
        return None
    zone = "UTC"
    if "-" in text[:9]:
        stamp = text
    else:
        parts = text.split()
        if len(parts) >= 3:
            zone = parts[2]
        stamp = "-".join(parts[:2])
    try:
        naive = datetime.strptime(stamp, "%Y%m%d-%H:%M:%S")
    except ValueError:
        return None
    if zone.upper() in ("UTC", "GMT", "Z"):
        return naive.replace(tzinfo=UTC)
    try:
        tz: Any = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = UTC
    return naive.replace(tzinfo=tz)


def _price_fields(order_type: str, lmt: Any, aux: Any) -> tuple[float | None, float | None]:
    """(limit, stop) as the order type uses them; IB fills unused price fields with 0 or unset."""
    kind = order_type.upper()
    limit = number(lmt) if kind in _HAS_LIMIT else None
    stop = number(aux) if kind in ("STP", "STP LMT") else None
    return limit, stop


# -- conversions ---------------------------------------------------------------------------------


def order_to_ib(
    spec: Order,
    order_id: int,
    *,
    parent_id: int = 0,
    transmit: bool = True,
    oca_group: str = "",
    oca_type: int = 0,
    what_if: bool = False,
) -> ib_async.Order:
    """The ib_async order to send for ``spec`` (a fresh object each time)."""
    good_till = ""
    if spec.good_till is not None:
        good_till = spec.good_till.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
    unset = ib_async.util.UNSET_DOUBLE
    aux = aux_price(spec)
    order = ib_async.Order(
        orderId=order_id,
        action=spec.side.value,
        totalQuantity=float(spec.quantity),
        orderType=spec.order_type.value,
        lmtPrice=spec.limit_price if spec.limit_price is not None else unset,
        auxPrice=aux if aux is not None else unset,
        tif=spec.tif.value,
        goodTillDate=good_till,
        outsideRth=spec.outside_rth,
        account=spec.account or "",
        orderRef=spec.order_ref or "",
        transmit=transmit,
        parentId=parent_id,
        ocaGroup=oca_group,
        ocaType=oca_type,
        whatIf=what_if,
    )
    put_terms(order, spec)
    return order


def commission_from_ib(report: ib_async.CommissionReport) -> Commission | None:
    """A commission report, or ``None`` for the empty placeholder ib_async keeps on a fill."""
    if not report.execId:
        return None
    amount = number(report.commission)
    return m.Commission(
        exec_id=report.execId,
        amount=amount if amount is not None else 0.0,
        currency=text_or_none(report.currency),
        realized_pnl=number(report.realizedPNL),
    )


def execution_problem(execution: ib_async.Execution) -> str | None:
    """What makes an execution impossible (a non-finite or non-positive size, a non-finite or
    negative price), or ``None`` when its numbers make sense."""
    try:
        shares = float(execution.shares)
        price = float(execution.price)
    except (TypeError, ValueError):
        return f"unreadable size {execution.shares!r} or price {execution.price!r}"
    if not math.isfinite(shares) or shares <= 0:
        return f"impossible size {execution.shares!r}"
    if not math.isfinite(price) or price < 0:
        return f"impossible price {execution.price!r}"
    return None


def fill_from_ib(
    contract: Contract, execution: ib_async.Execution, commission: Commission | None = None
) -> Fill:
    """One execution; ``ValueError`` for a side ibflow does not know or impossible numbers."""
    side = {"BOT": "BUY", "BUY": "BUY", "SLD": "SELL", "SELL": "SELL"}.get(
        (execution.side or "").upper()
    )
    if side is None:
        raise ValueError(f"unknown execution side {execution.side!r}")
    problem = execution_problem(execution)
    if problem is not None:
        raise ValueError(problem)
    time = execution.time
    when = _aware(time) if isinstance(time, datetime) else datetime.now(UTC)
    return m.Fill(
        exec_id=execution.execId,
        order_id=int_id(execution.orderId),
        perm_id=int_id(execution.permId),
        client_id=int(execution.clientId) if execution.clientId is not None else None,
        contract=contract,
        side=m.Side(side),
        quantity=float(execution.shares),
        price=float(execution.price),
        time=when,
        account=text_or_none(execution.acctNumber),
        exchange=text_or_none(execution.exchange),
        cumulative_quantity=number(execution.cumQty),
        avg_price=number(execution.avgPrice),
        order_ref=text_or_none(execution.orderRef),
        commission=commission,
    )


def snapshot_from_ib(
    contract: ib_async.Contract,
    order: ib_async.Order,
    status: str,
    *,
    filled: float | None = None,
    remaining: float | None = None,
    avg_fill_price: float | None = None,
    completed_time: str = "",
    completed_status: str = "",
    completed: bool = False,
) -> OrderSnapshot:
    """One order as TWS reports it; ``ValueError`` for what ibflow cannot represent."""
    order_type_raw = (order.orderType or "").upper()
    try:
        order_type: m.OrderType | str = m.OrderType(order_type_raw)
    except ValueError:
        order_type = order_type_raw
    tif_raw = (order.tif or "").upper()
    try:
        tif: m.TimeInForce | str = m.TimeInForce(tif_raw) if tif_raw else m.TimeInForce.DAY
    except ValueError:
        tif = tif_raw
    limit, stop = _price_fields(order_type_raw, order.lmtPrice, order.auxPrice)
    quantity = float(order.totalQuantity)
    if completed:
        done = number(order.filledQuantity)
        filled = done if done is not None else filled
    filled_qty = filled if filled is not None else 0.0
    left = remaining if remaining is not None else max(quantity - filled_qty, 0.0)
    return m.OrderSnapshot(
        order_id=_order_id(order.orderId),
        perm_id=int_id(order.permId),
        client_id=None if completed else int(order.clientId),
        parent_id=int_id(order.parentId),
        contract=contract_from_ib(contract),
        side=m.Side((order.action or "").upper()),
        quantity=quantity,
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tif=tif,
        outside_rth=bool(order.outsideRth),
        account=text_or_none(order.account),
        order_ref=text_or_none(order.orderRef),
        oca_group=text_or_none(order.ocaGroup),
        status=m.OrderStatus(status),
        filled=filled_qty,
        remaining=left,
        avg_fill_price=number(avg_fill_price) or None,
        completed_time=_parse_ib_time(completed_time),
        completed_status=text_or_none(completed_status),
        **terms_from_ib(order, number),
    )


def preview_from_ib(state: ib_async.OrderState) -> OrderPreview:
    """The margin and commission preview TWS sends for a what-if order."""
    return m.OrderPreview(
        init_margin_before=number(state.initMarginBefore),
        maint_margin_before=number(state.maintMarginBefore),
        equity_with_loan_before=number(state.equityWithLoanBefore),
        init_margin_change=number(state.initMarginChange),
        maint_margin_change=number(state.maintMarginChange),
        equity_with_loan_change=number(state.equityWithLoanChange),
        init_margin_after=number(state.initMarginAfter),
        maint_margin_after=number(state.maintMarginAfter),
        equity_with_loan_after=number(state.equityWithLoanAfter),
        commission=number(state.commission),
        min_commission=number(state.minCommission),
        max_commission=number(state.maxCommission),
        commission_currency=text_or_none(state.commissionCurrency),
        warning=text_or_none(state.warningText),
    )


# -- the tap ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One orderStatus frame, values as TWS sent them (unset → ``None``)."""

    order_id: int
    client_id: int
    perm_id: int | None
    status: str
    filled: float | None
    remaining: float | None
    avg_fill_price: float | None
    parent_id: int | None
    why_held: str | None


@dataclass(frozen=True, slots=True)
class OpenOrderUpdate:
    """One openOrder frame (not a what-if preview): the order's current terms and status.

    ``snapshot`` is the whole order as a record (``None`` when ibflow cannot represent it), so
    an order this session did not place can be adopted; ``oca_type`` is not part of it.
    ``terms`` are the price terms its type uses, under :class:`Order`'s names (see
    ``reported_terms``), with ``tif`` (``None`` if ibflow does not know it) and ``good_till``.
    ``algo_or_conditions``: the order carries an algo or conditions (the snapshot names only
    the algo).
    """

    order_id: int
    client_id: int
    perm_id: int | None
    status: str
    quantity: float
    limit_price: float | None
    stop_price: float | None
    snapshot: OrderSnapshot | None = None
    oca_type: int = 0
    terms: Mapping[str, Any] = field(default_factory=dict)
    algo_or_conditions: bool = False


def open_update(
    order_id: int,
    contract: ib_async.Contract,
    order: ib_async.Order,
    status: str,
    *,
    filled: float | None = None,
    avg_fill_price: float | None = None,
) -> OpenOrderUpdate:
    limit, stop = _price_fields(order.orderType or "", order.lmtPrice, order.auxPrice)
    try:
        snapshot: OrderSnapshot | None = snapshot_from_ib(
            contract, order, status, filled=filled, avg_fill_price=avg_fill_price
        )
    except ValueError:
        snapshot = None
    terms: dict[str, Any] = dict(reported_terms(order, number))
    try:
        terms["tif"] = m.TimeInForce((order.tif or "DAY").upper())
    except ValueError:
        terms["tif"] = None
    terms["good_till"] = _parse_ib_time(order.goodTillDate or "")
    try:
        terms["order_type"] = m.OrderType((order.orderType or "").upper())
    except ValueError:
        terms["order_type"] = None
    return OpenOrderUpdate(
        order_id=int(order_id),
        client_id=int(order.clientId),
        perm_id=int_id(order.permId),
        status=str(status),
        quantity=float(order.totalQuantity),
        limit_price=limit,
        stop_price=stop,
        snapshot=snapshot,
        oca_type=int(order.ocaType or 0),
        terms=terms,
        algo_or_conditions=bool((order.algoStrategy or "").strip() or order.conditions),
    )
