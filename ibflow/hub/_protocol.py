"""What travels between a hub and its remote sessions: subjects, and values as JSON.

Every record ibflow returns is a frozen dataclass or an enum exported by ``ibflow``, so one
generic codec carries them all: a dataclass becomes its class name and its fields, an enum its
class name and value, a datetime its ISO text and time-zone key. Decoding only builds classes
the public ``ibflow`` namespace exports. Exceptions travel as their class name, message and
fields, and come back as the same ``ibflow`` exception class.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import ibflow

from ._access import connect_nats

__all__ = [
    "Subjects",
    "check_name",
    "connect_nats",
    "decode",
    "decode_error",
    "dumps",
    "encode",
    "encode_error",
    "loads",
    "stop_tasks",
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_name(value: object, what: str) -> str:
    """A hub or remote name: letters, digits, ``_`` and ``-`` (it becomes a NATS token)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ibflow.InvalidRequest(
            f"{what} must be 1 to 64 letters, digits, '_' or '-' (it is part of NATS subjects), "
            f"got {value!r}"
        )
    return value


class Subjects:
    """The subjects of one hub, all under ``ibflow.<hub>.``."""

    def __init__(self, hub: str) -> None:
        self.root = f"ibflow.{hub}"
        self.requests = f"{self.root}.req.>"
        self.state = f"{self.root}.state"
        self.renew = f"{self.root}.feed.renew"
        self.release = f"{self.root}.feed.release"
        self.stats = f"{self.root}.stats"
        self.stats_get = f"{self.root}.stats.get"
        self.orders_bucket = f"ibflow_{hub}_orders"

    def request(self, method: str) -> str:
        return f"{self.root}.req.{method}"

    def method_of(self, subject: str) -> str:
        return subject[len(self.root) + len(".req.") :]

    def feed(self, key: str) -> str:
        return f"{self.root}.feed.{key}"


def _public_type(name: object, kind: type) -> Any:
    cls = getattr(ibflow, name, None) if isinstance(name, str) else None
    if not isinstance(cls, type):
        raise ibflow.InvalidRequest(f"the hub protocol carries no ibflow type named {name!r}")
    if kind is Enum and issubclass(cls, Enum):
        return cls
    if kind is object and dataclasses.is_dataclass(cls):
        return cls
    raise ibflow.InvalidRequest(f"{name!r} is not an ibflow record the hub protocol carries")


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data; raises ``InvalidRequest`` for what cannot travel."""
    if isinstance(value, Enum):
        return {"$e": type(value).__name__, "v": value.value}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        zone = value.tzinfo.key if isinstance(value.tzinfo, ZoneInfo) else None
        return {"$dt": value.isoformat(), "tz": zone}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
        return {"$r": type(value).__name__, "f": fields}
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {"$m": {str(k): encode(v) for k, v in value.items()}}
    raise ibflow.InvalidRequest(
        f"a {type(value).__name__} cannot travel to or from a hub; pass ibflow records, "
        "numbers, text, datetimes or lists of them"
    )


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` from."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$e" in data:
        return _public_type(data["$e"], Enum)(data["v"])
    if "$dt" in data:
        moment = datetime.fromisoformat(data["$dt"])
        return moment.astimezone(ZoneInfo(data["tz"])) if data.get("tz") else moment
    if "$d" in data:
        return date.fromisoformat(data["$d"])
    if "$td" in data:
        return timedelta(seconds=data["$td"])
    if "$r" in data:
        cls = _public_type(data["$r"], object)
        try:
            return cls(**{k: decode(v) for k, v in data["f"].items()})
        except TypeError as exc:
            raise ibflow.InvalidRequest(f"not a valid {data['$r']}: {exc}") from None
    if "$t" in data:
        return tuple(decode(v) for v in data["$t"])
    if "$m" in data:
        return {k: decode(v) for k, v in data["$m"].items()}
    raise ibflow.InvalidRequest(f"not a value of the hub protocol: {data!r}")


def encode_error(exc: BaseException) -> dict[str, Any]:
    """An exception as its ``ibflow`` class name, message and the fields that can travel."""
    if not isinstance(exc, ibflow.IBFlowError):
        return {"$x": "IBFlowError", "msg": f"the hub failed: {type(exc).__name__}: {exc}"}
    fields: dict[str, Any] = {}
    for key, value in vars(exc).items():
        try:
            fields[key] = encode(value)
        except ibflow.InvalidRequest:
            continue  # e.g. OrderRejected.trade: a live handle stays at the hub
    return {"$x": type(exc).__name__, "msg": str(exc), "f": fields}


def decode_error(data: Mapping[str, Any]) -> ibflow.IBFlowError:
    """The ``ibflow`` exception :func:`encode_error` described, with its fields set."""
    cls = getattr(ibflow, str(data.get("$x")), None)
    if not (isinstance(cls, type) and issubclass(cls, ibflow.IBFlowError)):
        cls = ibflow.IBFlowError
    exc: ibflow.IBFlowError = cls.__new__(cls)
    Exception.__init__(exc, str(data.get("msg", "")))
    for key, value in data.get("f", {}).items():
        setattr(exc, key, decode(value))
    return exc


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def loads(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise ibflow.InvalidRequest(f"not a hub protocol message: {exc}") from None


async def stop_tasks(tasks: set[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended.

    Cancelled again until it ends: Python 3.11's ``asyncio.wait_for`` (inside nats-py's
    requests) can swallow a cancellation that arrives as its answer does, and the task would
    then wait on forever.
    """
    while tasks:
        for task in list(tasks):
            task.cancel()
        await asyncio.wait(list(tasks), timeout=0.5)
        tasks.difference_update([t for t in tasks if t.done()])
