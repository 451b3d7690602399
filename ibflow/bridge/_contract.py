"""The TWS Bridge Server's routes, so its clients can point at ``ibflow bridge`` unchanged.

Tools written for that server fetch bars with ``POST /api/v1/bars`` and a small body, read
``GET /api/v1/health``, and ``POST /api/v1/connect`` / ``/disconnect``. This module answers them
in that server's shapes, with ibflow doing the work: pacing, validation and typed errors, which
become the right HTTP status with the same ``{success: false, ...}`` body. ``GET /metrics``
lives here too: it is how such deployments are watched.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, BeforeValidator, Field
from starlette.responses import Response

import ibflow
from ibflow import ConnectionState, SecType

from . import _requests as requests
from . import _schemas as schemas
from ._errors import describe, validation_message
from ._security import require_token
from ._settings import API_PREFIX
from ._state import Bridge, bridge_of, session_of

__all__ = ["bars_router", "router"]

router = APIRouter(prefix=API_PREFIX)


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


# -- models ---------------------------------------------------------------------------------------


class BarsRequest(BaseModel):
    """The TWS Bridge Server's bar request; ``sec_type``/``exchange``/``currency`` are ibflow's."""

    symbol: str = Field(min_length=1, description='"AAPL" (VIX is the CBOE index).')
    period: str = Field(description='Bar size: "1m", "5m", "15m", "1h", "1d", "1w", "1M"…')
    duration: str = Field(description='How far back: "1 D", "2 D", "1 W", "3600 S"…')
    what: str = Field(default="TRADES", description="TRADES, MIDPOINT, BID, ASK, BID_ASK…")
    session: Annotated[Literal["rth", "all"], BeforeValidator(_lower)] = Field(
        default="rth", description='"rth": regular trading hours only; "all": extended hours.'
    )
    include_forming: bool = Field(
        default=False, description="Append the bar still forming (its period has not ended)."
    )
    end_datetime: str | None = Field(
        default="",
        description='Empty: now. "20250126 10:30:00" (the exchange\'s time, or with a zone '
        'name after it, or "20250126-15:30:00" in UTC) or ISO 8601.',
    )
    sec_type: SecType | None = Field(default=None, description="Default STK.")
    exchange: str | None = None
    currency: str | None = None


class BarOut(BaseModel):
    date: str = Field(description='"yyyyMMdd HH:mm:ss" in the exchange\'s zone; "yyyyMMdd" daily.')
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    wap: float | None
    count: int | None
    time: datetime = Field(description="The bar's start, ISO 8601 with its offset.")


class BarsResponse(BaseModel):
    success: bool
    symbol: str
    period: str
    bars: list[BarOut]
    count: int
    error: str | None = Field(description="What went wrong, when success is false.")
    error_type: str | None = Field(description='ibflow\'s error class, e.g. "ContractNotFound".')
    code: int | None = Field(description="IB's error code, when IB sent one.")


class ConnectionAnswer(BaseModel):
    success: bool
    message: str
    connected: bool
    state: ConnectionState


# -- health, connect, disconnect, metrics ---------------------------------------------------------


@router.get(
    "/health",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "the session is not READY"}},
    tags=["session"],
)
async def health(request: Request) -> Response:
    """The bridge's and the session's state; 503 unless READY (for load-balancer probes)."""
    bridge = bridge_of(request)
    session = None if bridge.disconnected else bridge.session
    statistics = session.statistics() if session is not None else None
    # The link's details exist once the session has connected; before that they raise.
    linked = session if statistics is not None and statistics.connects > 0 else None
    if session is not None:
        state = session.state
    else:
        state = ConnectionState.CLOSED if bridge.disconnected else ConnectionState.DISCONNECTED
    ready = state is ConnectionState.READY
    body = schemas.Health(
        status="ok" if ready else "degraded",
        connected=ready,
        tws_host=bridge.target.host if bridge.target else None,
        tws_port=bridge.target.port if bridge.target else None,
        uptime_seconds=round(bridge.uptime, 3),
        version=ibflow.__version__,
        state=state,
        ready=ready,
        client_id=session.client_id if session is not None else None,
        server_version=linked.server_version if linked is not None else None,
        accounts=list(linked.accounts) if linked is not None else [],
        is_paper=linked.is_paper if linked is not None else None,
        statistics=(
            schemas.SessionStatistics.model_validate(statistics) if statistics is not None else None
        ),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


_CONNECT_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorBody, "description": "a token is configured and missing"},
    403: {"model": schemas.ErrorBody, "description": "the token is wrong"},
    409: {"model": schemas.ErrorBody, "description": "the session belongs to the host app"},
    503: {
        "model": schemas.ErrorBody,
        "description": "TWS cannot be reached, or the session is reconnecting: `message` says",
    },
    504: {"model": schemas.ErrorBody, "description": "TWS did not answer in time"},
}


@router.post(
    "/connect",
    dependencies=[Depends(require_token)],
    responses=_CONNECT_ERRORS,
    tags=["session"],
)
async def connect(request: Request) -> ConnectionAnswer:
    """Connect to TWS now (a new session after a disconnect); at once if already connected.

    A session that lost its link and is reconnecting on its own answers 503 ``ConnectionLost``.
    """
    bridge = bridge_of(request)
    already = _ready(bridge)
    session = await bridge.connect()
    if session.state is not ConnectionState.READY:
        raise ibflow.ConnectionLost(
            f"the link to TWS is down and the session is {session.state.value} on its own; "
            "retry later"
        )
    return ConnectionAnswer(
        success=True,
        message="Already connected to TWS" if already else "Connected to TWS",
        connected=True,
        state=session.state,
    )


@router.post(
    "/disconnect",
    dependencies=[Depends(require_token)],
    responses=_CONNECT_ERRORS,
    tags=["session"],
)
async def disconnect(request: Request) -> ConnectionAnswer:
    """Close the session (orders being placed finish first); requests answer 503 until
    ``POST /api/v1/connect``."""
    closed = await bridge_of(request).disconnect()
    return ConnectionAnswer(
        success=True,
        message="Disconnected from TWS" if closed else "Not connected to TWS",
        connected=False,
        state=ConnectionState.CLOSED,
    )


def _ready(bridge: Bridge) -> bool:
    session = bridge.session
    return (
        not bridge.disconnected and session is not None and session.state is ConnectionState.READY
    )


async def metrics(request: Request) -> Response:
    """The session's and the bridge's counters, in Prometheus' text format."""
    registry = bridge_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# -- bars -----------------------------------------------------------------------------------------


class _BarsRoute(APIRoute):
    """Answers a body FastAPI cannot validate in the bars shape, not the bridge's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                raw = exc.body if isinstance(exc.body, dict) else {}
                return _bars_answer(
                    _text(raw.get("symbol")),
                    _text(raw.get("period")),
                    status=422,
                    error=validation_message(exc.errors()),
                    error_type="InvalidRequest",
                )

        return guarded


bars_router = APIRouter(prefix=API_PREFIX, route_class=_BarsRoute)


@bars_router.post(
    "/bars",
    response_model=BarsResponse,
    responses={
        status: {"model": BarsResponse, "description": text}
        for status, text in (
            (404, "unknown symbol"),
            (409, "the symbol names several contracts: give sec_type/exchange/currency"),
            (422, "a bad body, period, duration or end_datetime: `error` says which"),
            (429, "IB's pacing: wait `Retry-After` seconds"),
            (502, "IB refused the request"),
            (503, "not connected to TWS; `error` says why"),
            (504, "TWS did not answer in time"),
        )
    },
    tags=["market data"],
)
async def fetch_bars(request: Request, body: BarsRequest) -> Response:
    """Historical bars, oldest first, under ibflow's pacing (the TWS Bridge Server's call)."""
    try:
        session = session_of(request)
        contract = _contract(body)
        end = await _end(session, contract, body.end_datetime or "")
        bars = await session.history(
            contract,
            period=body.period,
            duration=body.duration,
            what=body.what,
            rth=body.session == "rth",
            end=end,
        )
        # TWS's clock, not ours, says whether the last bar's period has ended.
        reference = end if end is not None else await session.current_time()
    except ibflow.IBFlowError as exc:
        status, error, headers = describe(exc)
        return _bars_answer(
            body.symbol,
            body.period,
            status=status,
            error=error.message,
            error_type=error.error,
            code=error.code,
            headers=headers,
        )
    length = _period(body.period)
    if bars and length(bars[-1].time) > reference and not body.include_forming:
        bars = bars[:-1]  # the bar in progress: only on request
    daily = length(bars[0].time) - bars[0].time >= timedelta(days=1) if bars else False
    rows = [_bar(bar, daily) for bar in bars]
    return _bars_answer(body.symbol, body.period, rows=rows)


def _bars_answer(
    symbol: str,
    period: str,
    *,
    rows: list[BarOut] | None = None,
    status: int = 200,
    error: str | None = None,
    error_type: str | None = None,
    code: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    answer = BarsResponse(
        success=error is None,
        symbol=symbol,
        period=period,
        bars=rows or [],
        count=len(rows or []),
        error=error,
        error_type=error_type,
        code=code,
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=status, headers=headers)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


# The TWS Bridge Server asks for VIX as the CBOE index; every other symbol is a stock.
_INDEXES = {"VIX": "CBOE"}


def _contract(body: BarsRequest) -> ibflow.Contract:
    symbol = body.symbol.strip().upper()
    kind = body.sec_type
    exchange = body.exchange
    if kind is None and symbol in _INDEXES and exchange is None:
        kind, exchange = SecType.INDEX, _INDEXES[symbol]
    spec = requests.ContractSpec(
        symbol=symbol,
        sec_type=kind or SecType.STOCK,
        exchange=exchange,
        currency=body.currency,
    )
    return spec.to_contract()


_IB_END = re.compile(r"(\d{8})([ -])(\d{1,2}:\d{2}:\d{2})(?:\s+(\S+))?")


async def _end(session: ibflow.Session, contract: ibflow.Contract, text: str) -> datetime | None:
    """``end_datetime`` as an aware datetime; a time without a zone is the exchange's.

    Raises:
        InvalidRequest: not one of the accepted forms, or an unknown zone name.
    """
    text = text.strip()
    if not text:
        return None
    found = _IB_END.fullmatch(text)
    try:
        if found is not None:
            naive = datetime.strptime(f"{found[1]} {found[3]}", "%Y%m%d %H:%M:%S")
        else:
            naive = datetime.fromisoformat(text)
    except ValueError:
        raise ibflow.InvalidRequest(
            f"end_datetime must be empty (now), 'YYYYMMDD HH:MM:SS' (optionally followed by a "
            f"time zone such as US/Eastern), 'YYYYMMDD-HH:MM:SS' (UTC) or ISO 8601 such as "
            f"'2025-01-26T10:30:00-05:00', got {text!r}"
        ) from None
    if naive.tzinfo is not None:
        return naive
    if found is not None and found[2] == "-":
        return naive.replace(tzinfo=UTC)
    zone = found[4] if found is not None and found[4] else None
    if zone is None:
        details = await session.contract_details(contract)
        zone = details[0].time_zone if details else None
    return naive.replace(tzinfo=_zone(zone or "UTC"))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ibflow.InvalidRequest(
            f"end_datetime names an unknown time zone {name!r}; use an IANA name such as "
            "America/New_York or US/Eastern"
        ) from None


_UNITS = {
    "s": timedelta(seconds=1),
    "sec": timedelta(seconds=1),
    "second": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "minute": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "hour": timedelta(hours=1),
    "d": timedelta(days=1),
    "day": timedelta(days=1),
    "w": timedelta(weeks=1),
    "week": timedelta(weeks=1),
}


def _period(period: str) -> Callable[[datetime], datetime]:
    """When a bar of ``period`` starting at a given time ends (ibflow accepted the period)."""
    found = re.fullmatch(r"(\d+)\s*([A-Za-z]+)", period.strip())
    if found is None:  # pragma: no cover - history() refused it already
        raise ibflow.InvalidRequest(f"unknown period {period!r}")
    count, unit = int(found[1]), found[2]
    # One letter is case-sensitive (m: minute, M: month); words are not ("5 mins", "1 Hour").
    word = unit.lower().removesuffix("s") if len(unit) > 1 else unit
    if word in ("M", "month"):

        def month_end(start: datetime) -> datetime:
            months = start.month - 1 + count
            year, month = start.year + months // 12, months % 12 + 1
            day = min(start.day, calendar.monthrange(year, month)[1])
            return start.replace(year=year, month=month, day=day)

        return month_end
    step = _UNITS[word.lower()] * count
    return lambda start: start + step


def _bar(bar: ibflow.Bar, daily: bool) -> BarOut:
    return BarOut(
        date=bar.time.strftime("%Y%m%d" if daily else "%Y%m%d %H:%M:%S"),
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
        wap=bar.wap,
        count=bar.count,
        time=bar.time,
    )
