"""``to_frame``: any list of ibflow records as a pandas DataFrame (the optional ``pandas`` extra).

Records are nested (a ``Position`` holds a ``Contract``), and a DataFrame wants flat columns, so
the contract's fields are lifted into columns of their own (``symbol``, ``con_id``,
``sec_type``…). pandas is imported only when ``to_frame`` is called: ibflow itself never needs it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from ._errors import InvalidRequest

__all__ = ["to_frame"]


def to_frame(records: Iterable[object], *, index: str | None = None) -> Any:
    """A pandas ``DataFrame`` with one row per record and one column per field.

    Works for any list of ibflow records: positions, portfolio items, account values, fills,
    bars… A nested record (typically ``contract``) is flattened into its fields' columns; when a
    nested field's name clashes with a top-level one it is prefixed (``contract_exchange``).
    Enum values become their plain values (``"STK"``), mappings stay as dicts.

    Args:
        records: ibflow records, all of the same type (an empty list gives an empty frame).
        index: a column to use as the index (``"time"`` for bars, ``"symbol"`` …).

    Returns:
        A ``pandas.DataFrame``.

    Raises:
        ImportError: pandas is not installed (``pip install 'ibflow[pandas]'``).
        InvalidRequest: a record is not an ibflow record, the records mix types, or ``index``
            is not a column.
    """
    try:
        pd = importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            "to_frame needs pandas; install it with: pip install 'ibflow[pandas]'"
        ) from exc
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}  # an ordered set: a nested None can hide columns in one row
    kind: type | None = None
    for record in records:
        if not dataclasses.is_dataclass(record) or isinstance(record, type):
            raise InvalidRequest(
                f"to_frame takes ibflow records (positions, fills, bars…), got {record!r}"
            )
        if kind is None:
            kind = type(record)
        elif type(record) is not kind:
            raise InvalidRequest(
                f"to_frame takes records of one type; got {kind.__name__} and "
                f"{type(record).__name__} (call it once per type)"
            )
        row = _flatten(record)
        columns.update(dict.fromkeys(row))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(columns))
    if index is not None:
        if index not in frame.columns:
            raise InvalidRequest(
                f"index {index!r} is not a column; use one of {', '.join(map(str, columns))}"
            )
        frame = frame.set_index(index)
    return frame


def _flatten(record: Any) -> dict[str, Any]:
    top = [f.name for f in dataclasses.fields(record)]
    row: dict[str, Any] = {}
    for name in top:
        value = getattr(record, name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for sub in dataclasses.fields(value):
                column = sub.name if sub.name not in top else f"{name}_{sub.name}"
                row[column] = _plain(getattr(value, sub.name))
        else:
            row[name] = _plain(value)
    return row


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    return value
