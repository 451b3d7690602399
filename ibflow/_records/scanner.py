"""Market-scanner records: what TWS can scan, a scan to run, and its ranked results."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .._errors import InvalidRequest
from .contracts import Contract

__all__ = [
    "ScanCode",
    "ScanInstrument",
    "ScanLocation",
    "ScanResult",
    "ScannerParameters",
    "ScannerSubscription",
    "parse_scanner_parameters",
]

MAX_ROWS = 50  # IB's most results per scan
_EMPTY: Mapping[str, str] = MappingProxyType({})


def _filter_text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InvalidRequest(f"scanner filter {name!r} needs a number, a bool or text, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerSubscription:
    """One scan: ``code`` (``"TOP_PERC_GAIN"``, ``"MOST_ACTIVE"``…) over ``instrument`` in
    ``location``, at most ``rows`` results, narrowed by ``filters`` (IB's filter codes, e.g.
    ``{"priceAbove": 10, "volumeAbove": 1e6}``). ``session.scanner_parameters()`` lists them.
    """

    code: str
    instrument: str = "STK"
    location: str = "STK.US.MAJOR"
    rows: int = MAX_ROWS
    filters: Mapping[str, str | float] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        for name in ("code", "instrument", "location"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequest(f"ScannerSubscription({name}=...) needs text, got {value!r}")
            object.__setattr__(self, name, value.strip())
        rows = self.rows
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
            raise InvalidRequest(f"rows must be an integer from 1 to {MAX_ROWS}, got {rows!r}")
        if not isinstance(self.filters, Mapping):
            raise InvalidRequest(f"filters must be a mapping of filter codes, got {self.filters!r}")
        texts = {str(k): _filter_text(str(k), v) for k, v in self.filters.items()}
        object.__setattr__(self, "filters", MappingProxyType(texts))

    def __hash__(self) -> int:
        return hash((self.code, self.instrument, self.location, self.rows, *self.filters.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    """One row of a scan: ``rank`` 0 is the top; the other fields are IB's text, ``None`` when
    empty (most scans leave them so)."""

    rank: int
    contract: Contract
    distance: str | None = None
    benchmark: str | None = None
    projection: str | None = None


@dataclass(frozen=True, slots=True)
class ScanCode:
    code: str
    name: str
    instruments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScanInstrument:
    type: str
    name: str
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScanLocation:
    code: str
    name: str
    instruments: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerParameters:
    """What TWS can scan (``reqScannerParameters``): scan codes, instruments, locations and
    filter codes, parsed from its XML (kept whole in ``xml``)."""

    scan_codes: tuple[ScanCode, ...]
    instruments: tuple[ScanInstrument, ...]
    locations: tuple[ScanLocation, ...]
    filters: tuple[str, ...]
    xml: str = field(repr=False)


def _text(element: ET.Element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_scanner_parameters(xml: str) -> ScannerParameters:
    """Parse TWS's scanner-parameters XML.

    Raises:
        ValueError: the text is not XML.
    """
    root = ET.fromstring(xml)
    return ScannerParameters(
        scan_codes=tuple(
            ScanCode(_text(e, "scanCode"), _text(e, "displayName"), _list(_text(e, "instruments")))
            for e in root.iter("ScanType")
            if _text(e, "scanCode")
        ),
        instruments=tuple(
            ScanInstrument(_text(e, "type"), _text(e, "name"), _list(_text(e, "filters")))
            for e in root.iter("Instrument")
            if _text(e, "type")
        ),
        locations=tuple(
            ScanLocation(
                _text(e, "locationCode"), _text(e, "displayName"), _list(_text(e, "instruments"))
            )
            for e in root.iter("Location")
            if _text(e, "locationCode")
        ),
        filters=tuple(sorted({c.text.strip() for c in root.iter("code") if c.text})),
        xml=xml,
    )
