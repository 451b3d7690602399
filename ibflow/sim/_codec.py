"""Sans-I/O codec for the TWS API text protocol (server versions up to 200).

Framing, the ``API\\0`` handshake, version negotiation and field encoding live here with no
sockets and no asyncio, so every rule of the wire format is unit-testable from bytes alone and the
asyncio server stays a thin shell around it.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ._model import ContractQuery

API_PREFIX = b"API\0"
SERVER_VERSION = 178
MIN_CLIENT_VERSION = 100  # oldest client range we still negotiate with (ibapi sends v100..)
MAX_FRAME = 0xFFFFFF  # ibapi refuses larger frames; so do we
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
UNSET_LONG = 2**63 - 1

_LEN = struct.Struct(">I")
_VERSION_RE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$", re.DOTALL)


class ProtocolError(ValueError):
    """The peer sent bytes that are not the TWS protocol (bad prefix, bad length, bad text)."""


# ---------------------------------------------------------------------------------------------
# Encoding


def format_value(value: object) -> str:
    """Render one field as TWS writes it: ints as integers, bools as 1/0, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "Infinite"
        if value == UNSET_DOUBLE:
            return "1.7976931348623157E308"
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.1f}"
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    if not text.isascii():
        # Clients unicode-escape-decode text fields, so non-ASCII travels as \uXXXX.
        text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text


def encode_fields(fields: Iterable[object]) -> bytes:
    """One complete frame: a 4-byte big-endian length, then NUL-terminated text fields."""
    payload = "".join(format_value(f) + "\0" for f in fields).encode("ascii")
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(payload)} bytes exceeds the {MAX_FRAME} byte limit")
    return _LEN.pack(len(payload)) + payload


def encode_raw(payload: bytes) -> bytes:
    """A frame around an arbitrary payload (used to send deliberately malformed frames)."""
    return _LEN.pack(len(payload)) + payload


# ---------------------------------------------------------------------------------------------
# Decoding


class FrameDecoder:
    """Incremental frame splitter: feed bytes as they arrive, get complete messages out.

    Walks an offset through its buffer and trims once per feed instead of re-slicing after every
    frame, so a large burst costs linear time (the per-frame copy is what makes ib_async's own
    receive path quadratic).
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[str]]:
        self._buf += data
        out: list[list[str]] = []
        buf, pos, end = self._buf, 0, len(self._buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise ProtocolError(f"frame length {size} exceeds {MAX_FRAME}")
            if end - pos - 4 < size:
                break
            payload = bytes(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
            out.append(split_fields(payload))
        if pos:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)


def split_fields(payload: bytes) -> list[str]:
    """Split a text payload on NUL; the trailing NUL's empty piece is dropped."""
    text = payload.decode("utf-8", errors="backslashreplace")
    parts = text.split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


# ---------------------------------------------------------------------------------------------
# Handshake


@dataclass(frozen=True, slots=True)
class ClientHello:
    min_version: int
    max_version: int
    options: str


class HandshakeDecoder:
    """Reads ``API\\0`` + one framed ``v<min>..<max>[ options]`` string."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> tuple[ClientHello | None, bytes]:
        """Returns the hello once complete, plus any bytes that followed it."""
        self._buf += data
        if len(self._buf) < len(API_PREFIX):
            if not API_PREFIX.startswith(bytes(self._buf)):
                raise ProtocolError("connection did not start with the API prefix")
            return None, b""
        if not self._buf.startswith(API_PREFIX):
            raise ProtocolError("connection did not start with the API prefix")
        rest = self._buf[len(API_PREFIX) :]
        if len(rest) < 4:
            return None, b""
        (size,) = _LEN.unpack_from(rest, 0)
        if size > 1024:
            raise ProtocolError(f"version string of {size} bytes is implausible")
        if len(rest) < 4 + size:
            return None, b""
        text = bytes(rest[4 : 4 + size]).decode("ascii", errors="replace").rstrip("\0")
        return parse_version_string(text), bytes(rest[4 + size :])


def parse_version_string(text: str) -> ClientHello:
    """Parse ``v157..178``, ``v176`` or ``v100..200 +PACEAPI``."""
    m = _VERSION_RE.match(text.strip("\0").lstrip())
    if not m:
        raise ProtocolError(f"bad version string {text!r}")
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) else low
    if low > high:
        raise ProtocolError(f"version range {text!r} is empty")
    return ClientHello(low, high, (m.group(3) or "").strip())


def negotiate(hello: ClientHello, server_max: int = SERVER_VERSION) -> int | None:
    """TWS's rule: min(client max, server max), or None when the ranges do not overlap."""
    version = min(hello.max_version, server_max)
    if version < hello.min_version or version < MIN_CLIENT_VERSION:
        return None
    return version


# ---------------------------------------------------------------------------------------------
# Reading request fields


class Fields:
    """A cursor over one request's fields with typed readers that understand "unset" values."""

    __slots__ = ("_fields", "_i")

    def __init__(self, fields: Sequence[str], start: int = 1) -> None:
        self._fields = fields
        self._i = start

    @property
    def raw(self) -> Sequence[str]:
        """Every field of the message, the message id first."""
        return self._fields

    @property
    def remaining(self) -> int:
        return len(self._fields) - self._i

    def str(self) -> str:
        if self._i >= len(self._fields):
            raise ProtocolError(f"message {self._fields[:1]} ended early at field {self._i}")
        value = self._fields[self._i]
        self._i += 1
        return value

    def skip(self, n: int = 1) -> None:
        for _ in range(n):
            self.str()

    def int(self, default: int = 0) -> int:
        raw = self.str().strip()
        if raw == "" or raw in ("2147483647", "9223372036854775807"):
            return default
        try:
            return int(raw)
        except ValueError:
            try:
                as_float = float(raw)
            except ValueError:
                raise ProtocolError(f"expected an integer, got {raw!r}") from None
            if not as_float.is_integer():
                raise ProtocolError(f"expected an integer, got {raw!r}") from None
            return int(as_float)

    def float(self) -> float | None:
        """A double, or None when unset (empty or IB's max-double sentinel)."""
        raw = self.str().strip()
        if raw == "":
            return None
        if raw.lower() == "infinite":
            return math.inf
        try:
            value = float(raw)
        except ValueError:
            raise ProtocolError(f"expected a number, got {raw!r}") from None
        if value >= UNSET_DOUBLE:
            return None
        return value

    def bool(self) -> bool:
        raw = self.str().strip()
        if raw in ("", "0", "false", "False"):
            return False
        return raw not in ("0",)

    def contract(self) -> ContractQuery:
        """The 12-field contract block: conId … tradingClass."""
        con_id = self.int()
        symbol = self.str()
        sec_type = self.str()
        last_trade_date = self.str()
        strike = self.float() or 0.0
        right = self.str()
        multiplier = self.str()
        exchange = self.str()
        primary_exchange = self.str()
        currency = self.str()
        local_symbol = self.str()
        trading_class = self.str()
        return ContractQuery(
            con_id=con_id,
            symbol=symbol,
            sec_type=sec_type,
            last_trade_date=last_trade_date,
            strike=strike,
            right=normalize_right(right),
            multiplier=multiplier,
            exchange=exchange,
            primary_exchange=primary_exchange,
            currency=currency,
            local_symbol=local_symbol,
            trading_class=trading_class,
        )


def normalize_right(right: str) -> str:
    r = right.strip().upper()
    return {"CALL": "C", "PUT": "P", "?": "", "0": ""}.get(r, r)
