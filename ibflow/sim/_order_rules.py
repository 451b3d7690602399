"""The rules of an order: what TWS refuses before accepting it, where it fills, what it books.

Pure functions over a parsed placeOrder: the broker calls them first and turns a
:class:`~._model.SimError` into the error TWS sends (a rejected order never exists).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from ._layouts import PlaceOrderRequest
from ._ledger import EPS, dec, tidy
from ._model import Instrument, QuoteState, SimError, SimExecution, SimOrder

READONLY_TEXT = (
    "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode."
)
OFF_TICK_TEXT = "The price does not conform to the minimum price variation for this contract."
CANCELED_TEXT = "Order Canceled - reason:"
INACTIVE_CODE = 201
INACTIVE_TEXT = "Order rejected - reason:The order failed a risk check and is held inactive."

# The order types TWS takes from the API that the simulator works, by IB's names.
ORDER_TYPES = frozenset(
    {
        "MKT",
        "LMT",
        "STP",
        "STP LMT",
        "TRAIL",
        "TRAIL LIMIT",
        "MOC",
        "LOC",
        "MIT",
        "LIT",
        "REL",
        "PEG MID",
    }
)
_TIFS = frozenset({"DAY", "GTC", "IOC", "GTD", "FOK", "OPG", "DTC"})


def check_request(req: PlaceOrderRequest, inst: Instrument, existing: SimOrder | None) -> None:
    """What TWS refuses in any order (or in a modification of ``existing``), with its codes.

    Raises:
        SimError: the rejection TWS sends.
    """
    action = normalize_side(req.action)
    if action not in ("BUY", "SELL"):
        raise SimError(201, f"Order rejected - reason:Invalid action {req.action!r}")
    if inst.sec_type == "IND":
        raise SimError(201, "Order rejected - reason:Indices are not tradable.")
    if req.total_quantity == 0:
        raise SimError(434, "The order size cannot be zero.")
    if req.total_quantity < 0:
        raise SimError(201, "Order rejected - reason:The order quantity must be positive.")
    if req.order_type not in ORDER_TYPES or (
        inst.order_types and req.order_type not in inst.order_types
    ):
        raise SimError(387, "Unsupported order type for this exchange and security type.")
    if (req.tif or "DAY") not in _TIFS:
        raise SimError(201, f"Order rejected - reason:Invalid time in force {req.tif!r}.")
    if req.order_type in ("LMT", "STP LMT") and req.lmt_price is None:
        raise SimError(201, "Order rejected - reason:A limit price is required.")
    if req.order_type in ("STP", "STP LMT") and req.aux_price is None:
        raise SimError(201, "Order rejected - reason:A stop price is required.")
    for price in (req.lmt_price, req.aux_price):
        if price is not None and req.order_type != "MKT" and not on_tick(price, inst):
            raise SimError(110, OFF_TICK_TEXT)
    if existing is not None:
        if inst.con_id != existing.instrument.con_id or action != existing.action:
            raise SimError(105, "Order being modified does not match the original order.")
        if req.total_quantity < existing.filled - EPS:
            raise SimError(
                201, "Order rejected - reason:The quantity is below the filled quantity."
            )


def session_open(inst: Instrument, outside_rth: bool, now: float) -> bool:
    """Whether ``inst`` trades at ``now`` (epoch seconds): its regular or extended session."""
    try:
        tz = ZoneInfo(inst.time_zone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    local = datetime.fromtimestamp(now, tz)
    start, end = inst.eth if outside_rth else inst.rth
    hhmm = local.strftime("%H%M")
    if start <= end:
        return local.weekday() < 5 and start <= hhmm < end
    # A session crossing midnight belongs to the day on which it ends.
    day = local + timedelta(days=1) if hhmm >= start else local
    return day.weekday() < 5 and (hhmm >= start or hhmm < end)


def parse_ib_time(text: str) -> datetime | None:
    """``yyyymmdd hh:mm:ss [zone]`` or ``yyyymmdd-hh:mm:ss``; no zone means UTC."""
    text = text.strip()
    if not text:
        return None
    zone = "UTC"
    if "-" in text[:9]:
        stamp = text
    else:
        parts = text.split()
        if len(parts) >= 3:
            zone = parts[2]
        stamp = "-".join(parts[:2]) if len(parts) >= 2 else parts[0]
    for fmt in ("%Y%m%d-%H:%M:%S", "%Y%m%d"):
        try:
            naive = datetime.strptime(stamp, fmt)
        except ValueError:
            continue
        try:
            tz: ZoneInfo | None = ZoneInfo(zone)
        except (KeyError, ValueError):
            tz = None
        return naive.replace(tzinfo=tz or UTC)
    return None


def order_from(
    req: PlaceOrderRequest,
    client_id: int,
    inst: Instrument,
    account: str,
    *,
    perm_id: int,
    what_if: bool = False,
    status: str = "PendingSubmit",
) -> SimOrder:
    """The order a placeOrder describes, as the broker books it (or previews it)."""
    return SimOrder(
        order_id=req.order_id,
        client_id=client_id,
        perm_id=perm_id,
        account=account,
        instrument=inst,
        action=normalize_side(req.action),
        total_quantity=float(req.total_quantity),
        order_type=req.order_type,
        lmt_price=req.lmt_price,
        aux_price=req.aux_price,
        tif=req.tif or "DAY",
        oca_group=req.oca_group,
        oca_type=req.oca_type,
        order_ref=req.order_ref,
        transmit=req.transmit,
        parent_id=req.parent_id,
        outside_rth=req.outside_rth,
        good_till_date=req.good_till_date,
        what_if=what_if,
        status=status,
    )


def normalize_side(action: str) -> str:
    a = action.strip().upper()
    return {"SSHORT": "SELL", "SLONG": "BUY"}.get(a, a)


def on_tick(price: float, inst: Instrument) -> bool:
    tick = inst.min_tick
    if tick <= 0:
        return True
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


def floor_tick(price: float, tick: float) -> float:
    """``price`` rounded down to the tick grid."""
    if tick <= 0:
        return price
    return round(math.floor(price / tick + 1e-9) * tick, 10)


def ceil_tick(price: float, tick: float) -> float:
    """``price`` rounded up to the tick grid."""
    if tick <= 0:
        return price
    return round(math.ceil(price / tick - 1e-9) * tick, 10)


def trigger_reference(q: QuoteState) -> float | None:
    """Stops trigger on the last trade, or on the midpoint where nothing trades (forex)."""
    if q.last and q.last > 0:
        return q.last
    if q.bid > 0 and q.ask > 0:
        return (q.bid + q.ask) / 2
    return None


def select_executions(
    executions: Iterable[SimExecution],
    *,
    client_id: int = 0,
    account: str = "",
    time: str = "",
    symbol: str = "",
    sec_type: str = "",
    exchange: str = "",
    side: str = "",
) -> list[SimExecution]:
    """The executions a reqExecutions filter selects; blank fields and client id 0 match all."""
    since = parse_ib_time(time)
    want_side = {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper())
    out = []
    for ex in executions:
        inst = ex.instrument
        if client_id and ex.client_id != client_id:
            continue
        if account and ex.account.upper() != account.upper():
            continue
        if since is not None and ex.time < since:
            continue
        if symbol and inst.symbol.upper() != symbol.upper():
            continue
        if sec_type and inst.sec_type.upper() != sec_type.upper():
            continue
        if exchange and exchange.upper() not in (
            inst.exchange.upper(),
            inst.primary_exchange.upper(),
        ):
            continue
        if want_side and ex.side != want_side:
            continue
        out.append(ex)
    return out


def exec_base(exec_id: str) -> str:
    return exec_id.rpartition(".")[0] or exec_id


def average_fill(fills: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """``(quantity, average price)`` of ``(quantity, price)`` fills, summed as decimals."""
    qty = value = Decimal(0)
    for shares, price in fills:
        qty += dec(shares)
        value += dec(shares) * dec(price)
    return tidy(qty), tidy(value / qty) if qty else 0.0


def next_revision(exec_id: str) -> str:
    """The id TWS gives a correction of ``exec_id``: its last dot-separated part raised by one."""
    head, dot, tail = exec_id.rpartition(".")
    if not dot or not tail.isdigit():
        raise ValueError(f"execution id {exec_id!r} has no correction number to raise")
    return f"{head}.{int(tail) + 1:0{len(tail)}d}"


# ---------------------------------------------------------------------------------------------
# The broker
