"""Market scanners: the parameters XML and scans ranked from the simulator's own market.

Scans run over the universe's US stocks and ETFs:

* ``TOP_PERC_GAIN`` / ``TOP_PERC_LOSE``: change of the last price from the previous close (the
  same two prices reqMktData reports), gainers above 0 %, losers below;
* ``MOST_ACTIVE``: the session's volume so far (the daily TRADES bar reqHistoricalData serves);
* ``MOST_ACTIVE_USD``: that volume times the last price;
* ``HOT_BY_VOLUME``: that volume against the average of the ten sessions before, scaled by the
  share of today's session that has run.

Filters: ``abovePrice``, ``belowPrice``, ``aboveVolume`` and ``stockTypeFilter`` of the
subscription, and the filter options ``priceAbove``, ``priceBelow``, ``volumeAbove``,
``changePercAbove``, ``changePercBelow``; a filter the simulator has no data for (market cap,
ratings, coupons…) is refused with 321 rather than ignored. At most 50 rows (IB's limit per
scan) and 10 scanner subscriptions at once for the whole TWS (162 with IB's text). A
subscription gets its results at once and again whenever they change, at most every 30 s
(scaled by ``speed``), each time as one scannerData message ranked from 0.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ._codec import Fields
from ._core import Sub
from ._history import zone
from ._ids import Msg
from ._model import Instrument, SimError

if TYPE_CHECKING:
    from ._core import Connection, SimCore

MAX_ROWS = 50
MAX_SUBSCRIPTIONS = 10
UPDATE_INTERVAL = 30.0
TOO_MANY_TEXT = (
    "Historical Market Data Service error message:"
    "Only 10 simultaneous API scanner subscriptions are allowed."
)
_VALIDATING = "Error validating request.-'bQ' : cause - "


@dataclass(frozen=True, slots=True)
class Stats:
    """What the scans rank by, for one instrument."""

    last: float
    change_pct: float
    volume: float
    relative_volume: float


@dataclass(frozen=True, slots=True)
class ScanCode:
    code: str
    name: str
    key: Callable[[Stats], float]  # higher ranks first
    keep: Callable[[Stats], bool]


SCAN_CODES: dict[str, ScanCode] = {
    s.code: s
    for s in (
        ScanCode(
            "TOP_PERC_GAIN",
            "Top % Gainers",
            lambda s: s.change_pct,
            lambda s: s.change_pct > 0,
        ),
        ScanCode(
            "TOP_PERC_LOSE",
            "Top % Losers",
            lambda s: -s.change_pct,
            lambda s: s.change_pct < 0,
        ),
        ScanCode("MOST_ACTIVE", "Most Active", lambda s: s.volume, lambda s: s.volume > 0),
        ScanCode(
            "MOST_ACTIVE_USD",
            "Most Active ($)",
            lambda s: s.volume * s.last,
            lambda s: s.volume > 0,
        ),
        ScanCode(
            "HOT_BY_VOLUME",
            "Hot Contracts by Volume",
            lambda s: s.relative_volume,
            lambda s: s.volume > 0,
        ),
    )
}

# Instrument type → (display name, its locations: code → (display name, who belongs)).
_Belongs = Callable[[Instrument], bool]
_US_MAJOR = ("NASDAQ", "NYSE", "ARCA", "AMEX")


def _listed(*exchanges: str) -> _Belongs:
    return lambda i: (i.primary_exchange or i.exchange) in exchanges


INSTRUMENTS: dict[str, tuple[str, dict[str, tuple[str, _Belongs]]]] = {
    "STK": (
        "US Stocks",
        {
            "STK.US": ("US Stocks", lambda i: True),
            "STK.US.MAJOR": ("Listed/NASDAQ", _listed(*_US_MAJOR)),
            "STK.NASDAQ": ("NASDAQ", _listed("NASDAQ")),
            "STK.NYSE": ("NYSE", _listed("NYSE")),
            "STK.ARCA": ("NYSE Arca", _listed("ARCA")),
        },
    ),
    "ETF.EQ.US": (
        "US Equity ETFs",
        {
            "ETF.EQ.US": ("US Equity ETFs", lambda i: i.stock_type == "ETF"),
            "ETF.EQ.US.MAJOR": (
                "Listed/NASDAQ ETFs",
                lambda i: i.stock_type == "ETF" and _listed(*_US_MAJOR)(i),
            ),
        },
    ),
}
# Filter option tag → (filter id in the XML, what it checks).
FILTER_OPTIONS: dict[str, tuple[str, Callable[[Stats, float], bool]]] = {
    "priceAbove": ("PRICE", lambda s, v: s.last > v),
    "priceBelow": ("PRICE", lambda s, v: s.last < v),
    "volumeAbove": ("VOLUME", lambda s, v: s.volume > v),
    "changePercAbove": ("CHANGE_PERC", lambda s, v: s.change_pct > v),
    "changePercBelow": ("CHANGE_PERC", lambda s, v: s.change_pct < v),
}
_STOCK_TYPES = {"": None, "ALL": None, "CORP": "COMMON", "ETF": "ETF"}


# ---------------------------------------------------------------------------------------------
# Parameters XML


def _text(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, tag).text = value


def scanner_parameters_xml() -> str:
    """The ScanParameterResponse document: instruments, the location tree, scan types and the
    filters, in the structure TWS sends."""
    root = ET.Element("ScanParameterResponse")
    instruments = ET.SubElement(root, "InstrumentList", varName="fullInstrumentList")
    for code, (name, _) in INSTRUMENTS.items():
        inst = ET.SubElement(instruments, "Instrument")
        _text(inst, "name", name)
        _text(inst, "type", code)
        _text(inst, "filters", ",".join(sorted({f for f, _ in FILTER_OPTIONS.values()})))
        _text(inst, "group", "STK.GLOBAL")
        _text(inst, "shortName", name)
    tree = ET.SubElement(root, "LocationTree", varName="locationTree")
    for code, (_, locations) in INSTRUMENTS.items():
        for loc_code, (loc_name, _) in locations.items():
            loc = ET.SubElement(tree, "Location")
            _text(loc, "displayName", loc_name)
            _text(loc, "locationCode", loc_code)
            _text(loc, "instruments", code)
            _text(loc, "routeExchange", "SMART")
            _text(loc, "delayedOnly", "false")
            _text(loc, "access", "unrestricted")
    scans = ET.SubElement(root, "ScanTypeList", varName="scanTypeList")
    for scan in SCAN_CODES.values():
        st = ET.SubElement(scans, "ScanType")
        _text(st, "displayName", scan.name)
        _text(st, "scanCode", scan.code)
        _text(st, "instruments", ",".join(INSTRUMENTS))
        _text(st, "absoluteColumns", "false")
        _text(st, "supportsSorting", "true")
        _text(st, "respSizeLimit", str(MAX_ROWS))
        _text(st, "snapshotSizeLimit", str(MAX_ROWS))
        _text(st, "searchDefault", "false")
        _text(st, "access", "unrestricted")
    filters = ET.SubElement(root, "FilterList", varName="filterList")
    by_id: dict[str, list[str]] = {}
    for tag, (fid, _) in FILTER_OPTIONS.items():
        by_id.setdefault(fid, []).append(tag)
    for fid, tags in by_id.items():
        rf = ET.SubElement(filters, "RangeFilter")
        _text(rf, "id", fid)
        _text(
            rf, "category", "Price" if fid == "PRICE" else "Volume" if fid == "VOLUME" else "Change"
        )
        _text(rf, "histogram", "false")
        _text(rf, "access", "unrestricted")
        for tag in tags:
            field = ET.SubElement(rf, "AbstractField", type="scanner.filter.DoubleField")
            _text(field, "code", tag)
            _text(field, "displayName", tag)
            _text(field, "varName", tag)
            _text(field, "abbrev", tag)
            _text(field, "skipValidation", "false")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


# ---------------------------------------------------------------------------------------------
# Scanning


@dataclass(frozen=True, slots=True)
class ScanRequest:
    rows: int
    instrument: str
    location: str
    code: str
    above_price: float | None
    below_price: float | None
    above_volume: int | None
    stock_type: str
    options: tuple[tuple[str, float], ...]


def _session_share(inst: Instrument, now: float) -> float:
    """How much of today's regular session has run (1 when none is running)."""
    z = zone(inst.time_zone)
    local = datetime.fromtimestamp(now, z)
    start, end = inst.rth
    opened = local.replace(hour=int(start[:2]), minute=int(start[2:]), second=0, microsecond=0)
    closed = local.replace(hour=int(end[:2]), minute=int(end[2:]), second=0, microsecond=0)
    if local.weekday() >= 5 or not opened < local < closed:
        return 1.0
    return max((local - opened) / (closed - opened), 0.02)


def _volumes(sim: SimCore, inst: Instrument, now: float) -> tuple[float, float]:
    """(session volume so far, average of the ten sessions before), cached per minute."""
    cache = sim.features.scan_volumes
    key = (inst.con_id, int(now // 60))
    hit = cache.get(key)
    if hit is not None:
        return hit
    try:
        bars = sim.market.history(
            inst,
            end=datetime.fromtimestamp(now, UTC),
            duration="11 D",
            bar_size="1 day",
            what="TRADES",
            use_rth=True,
        )
    except SimError:
        bars = []
    today = bars[-1].volume if bars else 0.0
    before = [b.volume for b in bars[:-1]]
    result = (today, sum(before) / len(before) if before else 0.0)
    if len(cache) > 4096:
        cache.clear()
    cache[key] = result
    return result


def stats(sim: SimCore, inst: Instrument, now: float) -> Stats:
    q = sim.market.quote(inst.con_id)
    last = q.last or (q.bid + q.ask) / 2
    change = (last / q.close - 1.0) * 100.0 if q.close > 0 else 0.0
    volume, average = _volumes(sim, inst, now)
    expected = average * _session_share(inst, now)
    return Stats(last, change, volume, volume / expected if expected > 0 else 0.0)


def scan(sim: SimCore, req: ScanRequest, now: float) -> list[tuple[Instrument, Stats]]:
    """The ranked rows of a scan (best first)."""
    code = SCAN_CODES[req.code]
    belongs = INSTRUMENTS[req.instrument][1][req.location][1]
    wanted_type = _STOCK_TYPES.get(req.stock_type.upper(), "?")
    found: list[tuple[Instrument, Stats]] = []
    for inst in sim.universe:
        if inst.sec_type != "STK" or inst.currency != "USD" or not belongs(inst):
            continue
        if wanted_type is not None and inst.stock_type != wanted_type:
            continue
        s = stats(sim, inst, now)
        if not code.keep(s) or not _passes(req, s):
            continue
        found.append((inst, s))
    found.sort(key=lambda row: -code.key(row[1]))
    return found[: req.rows]


def _passes(req: ScanRequest, s: Stats) -> bool:
    if req.above_price is not None and not s.last > req.above_price:
        return False
    if req.below_price is not None and not s.last < req.below_price:
        return False
    if req.above_volume is not None and not s.volume > req.above_volume:
        return False
    return all(FILTER_OPTIONS[tag][1](s, value) for tag, value in req.options)


def scanner_data(req_id: int, rows: list[tuple[Instrument, Stats]]) -> list[object]:
    """scannerData (id 20), version 3: all rows in one message, ranked from 0."""
    out: list[object] = [int(Msg.SCANNER_DATA), 3, req_id, len(rows)]
    for rank, (inst, _) in enumerate(rows):
        out += [
            rank,
            inst.con_id,
            inst.symbol,
            inst.sec_type,
            inst.last_trade_date,
            float(inst.strike),
            inst.right,
            inst.exchange,
            inst.currency,
            inst.local_symbol,
            inst.market_name or inst.trading_class or inst.symbol,
            inst.trading_class,
            "",  # distance
            "",  # benchmark
            "",  # projection
            "",  # legsStr
        ]
    return out


# ---------------------------------------------------------------------------------------------
# Handlers and the market hook


def _tag_values(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(";"):
        if item.strip():
            tag, _, value = item.partition("=")
            pairs.append((tag.strip(), value.strip()))
    return pairs


def _refuse(cause: str) -> SimError:
    return SimError(321, _VALIDATING + cause)


def parse_scanner_subscription(f: Fields) -> tuple[int, ScanRequest]:
    """reqScannerSubscription at v178 (no version field); 321 for what the sim cannot scan."""
    req_id = f.int()
    rows = f.int(-1)
    instrument = f.str().strip()
    location = f.str().strip()
    code = f.str().strip().upper()
    above_price = f.float()
    below_price = f.float()
    above_volume_raw = f.str().strip()
    unsupported = []
    names = (
        "marketCapAbove", "marketCapBelow", "moodyRatingAbove", "moodyRatingBelow",
        "spRatingAbove", "spRatingBelow", "maturityDateAbove", "maturityDateBelow",
        "couponRateAbove", "couponRateBelow",
    )  # fmt: skip
    for name in names:
        raw = f.str().strip()
        if raw and raw not in ("1.7976931348623157E308", "1.7976931348623157e+308"):
            unsupported.append(name)
    f.bool()  # excludeConvertible: the universe holds no convertibles
    if f.int(0):
        unsupported.append("averageOptionVolumeAbove")
    f.str()  # scannerSettingPairs: display settings
    stock_type = f.str().strip()
    filter_options = _tag_values(f.str()) if f.remaining else []
    if unsupported:
        raise _refuse(f"the simulator has no data for {', '.join(unsupported)}")
    if instrument not in INSTRUMENTS:
        raise _refuse(f"unknown instrument {instrument!r}; use one of {', '.join(INSTRUMENTS)}")
    locations = INSTRUMENTS[instrument][1]
    if location not in locations:
        raise _refuse(f"unknown location {location!r} for {instrument}")
    if code not in SCAN_CODES:
        raise _refuse(f"unknown scan code {code!r}")
    if stock_type.upper() not in _STOCK_TYPES:
        raise _refuse(f"unknown stock type filter {stock_type!r}")
    options: list[tuple[str, float]] = []
    for tag, value in filter_options:
        if tag not in FILTER_OPTIONS:
            raise _refuse(f"unknown filter {tag!r}")
        try:
            options.append((tag, float(value)))
        except ValueError:
            raise _refuse(f"filter {tag} needs a number, got {value!r}") from None
    above_volume = (
        int(float(above_volume_raw)) if above_volume_raw not in ("", "2147483647") else None
    )
    return req_id, ScanRequest(
        rows=MAX_ROWS if rows <= 0 else min(rows, MAX_ROWS),
        instrument=instrument,
        location=location,
        code=code,
        above_price=above_price,
        below_price=below_price,
        above_volume=above_volume,
        stock_type=stock_type,
        options=tuple(options),
    )


def _publish(sim: SimCore, c: Connection, sub: Sub) -> None:
    rows = scan(sim, sub.params["request"], sim.clock())
    ids = [inst.con_id for inst, _ in rows]
    sub.last_sent = time.monotonic()
    if ids != sub.params.get("sent"):
        sub.params["sent"] = ids
        c.send(scanner_data(sub.req_id, rows))


def on_tick(sim: SimCore, c: Connection, sub: Sub, now: float) -> None:
    """Every market step: rescan when the update interval has passed."""
    if time.monotonic() - sub.last_sent >= UPDATE_INTERVAL / sim.speed:
        _publish(sim, c, sub)


def h_scanner_subscription(c: Connection, f: Fields) -> None:
    req_id, request = parse_scanner_subscription(f)
    sim = c.sim
    active = sim.subscriptions().get("scanner_subscription", 0)
    if ("scanner_subscription", req_id) not in c.subs and active >= MAX_SUBSCRIPTIONS:
        raise SimError(162, TOO_MANY_TEXT)
    sub = Sub("scanner_subscription", req_id, params={"request": request})
    c.subs[("scanner_subscription", req_id)] = sub
    _publish(sim, c, sub)


def h_cancel_scanner_subscription(c: Connection, f: Fields) -> None:
    f.skip()  # version
    c.subs.pop(("scanner_subscription", f.int()), None)


def h_scanner_parameters(c: Connection, f: Fields) -> None:
    c.send([Msg.SCANNER_PARAMETERS, 1, scanner_parameters_xml()])
