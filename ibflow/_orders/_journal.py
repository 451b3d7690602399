"""The order journal: an append-only SQLite file of every order intent and what became of it.

A bot that dies between "decide" and "placed" cannot tell on restart whether its order went
out. The journal answers: each order is written here, committed, *before* its placeOrder frame
leaves; its acknowledgement (perm id), statuses, changed terms, fills (one row per execution
id) and commissions follow. Nothing is ever updated or deleted, so a crash can only cut the
journal short, never leave a half-changed row.

Durability: WAL mode with ``synchronous=NORMAL``. A commit has written its WAL frames to the
operating system (``write``) before it returns; only the ``fsync`` waits for the next
checkpoint. So every record, the intent first, survives ``kill -9`` of the bot the moment its
call returns; only a power cut or a kernel crash can take the last ones. ``FULL`` would add an
``fsync`` per commit: 2 to 5 ms of a blocked event loop per order on a busy disk, bought only
against power loss, where TWS's own copy of the order (its key, as ``orderRef``) still stops a
duplicate. The writes are small and inline, on the event loop's thread.

Journal references: a keyless order has no name TWS could give back, and TWS reports a
completed order without its order id. So, with a journal, every keyless order without an
``order_ref`` of its own is sent with a generated one (:func:`journal_ref`), kept in its
intent's terms; on restart it ties an intent the bot never saw acknowledged to TWS's report.
It starts with ``:``, which no key or key leg can (``key``, ``key:tp``…).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any, Final

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .._errors import ConfigError
from .._log import get_logger
from .._records.contracts import Contract
from .._records.orders import Commission, Fill, Order, Side

__all__ = [
    "Intent",
    "Journal",
    "JournalEntry",
    "commission_fields",
    "is_journal_ref",
    "journal_ref",
    "order_fields",
]

log = get_logger("orders")

_SCHEMA: Final = 1
# The order reference an intent was sent with, read from its terms (a torn row has none).
_SENT_REF: Final = "(CASE WHEN json_valid(spec) THEN json_extract(spec, '$.order_ref') END)"
_REF: Final = re.compile(r":j[0-9a-f]{16}")
_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS intents ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, client_id INTEGER NOT NULL,"
    " order_id INTEGER NOT NULL, parent_order_id INTEGER, oca_group TEXT NOT NULL,"
    " oca_type INTEGER NOT NULL, contract TEXT NOT NULL, spec TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS intents_by_key ON intents (key)",
    f"CREATE INDEX IF NOT EXISTS intents_by_ref ON intents {_SENT_REF}",
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, intent INTEGER NOT NULL, kind TEXT NOT NULL,"
    " data TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_intent ON events (intent)",
    "CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, intent)",
    "CREATE TABLE IF NOT EXISTS fills ("
    " exec_id TEXT PRIMARY KEY, intent INTEGER NOT NULL, data TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fills_by_intent ON fills (intent)",
)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """What one leg of an order intent was, as written before it was sent."""

    key: str | None
    client_id: int
    order_id: int
    parent_order_id: int | None
    oca_group: str
    oca_type: int
    contract: Contract
    spec: Order

    @property
    def order_ref(self) -> str | None:
        """The ``orderRef`` the leg was sent with: its key, the user's own ``order_ref``, a
        journal reference, or ``None`` (an order journaled before references existed)."""
        return self.spec.order_ref


def journal_ref() -> str:
    """A fresh journal reference: ``:j`` and 16 random hex digits (never a key's shape)."""
    return f":j{secrets.token_hex(8)}"


def is_journal_ref(order_ref: str | None) -> bool:
    """Whether ``order_ref`` has a journal reference's shape (ibflow's, not the user's)."""
    return order_ref is not None and _REF.fullmatch(order_ref) is not None


@dataclass(slots=True)
class Intent:
    """One journaled intent and everything recorded about it since, read back from the file."""

    seq: int
    entry: JournalEntry
    at: datetime
    perm_id: int | None = None
    status: str | None = None
    reason: str | None = None
    spec: Order | None = None
    """The latest terms TWS reported (``None``: as sent)."""
    fills: list[Fill] = field(default_factory=list)
    commissions: list[Commission] = field(default_factory=list)
    rejected: str | None = None
    """TWS's refusal before any acknowledgement (``"201: Order rejected…"``)."""
    settled: bool = False

    @property
    def not_sent(self) -> bool:
        """Found to have never reached TWS (or lost in transit): safe to place again."""
        return self.status == "Lost"


class Journal:
    """One session's order journal file; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = _hold(path)
        try:
            self._open()
        except BaseException:
            self._lock.close()
            raise

    def _open(self) -> None:
        path = self.path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error("cannot be opened", exc) from None
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.DatabaseError(f"WAL mode refused (journal_mode is {mode})")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _TABLES:
                self._db.execute(statement)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)", (str(_SCHEMA),)
            )
            [version] = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if str(version) != str(_SCHEMA):
                raise sqlite3.DatabaseError(
                    f"schema version {version}, this ibflow writes {_SCHEMA}"
                )
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error("is not a usable order journal", exc) from None

    def _error(self, what: str, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"the order journal {str(self.path)!r} {what}: {exc}. Move the file aside (it may "
            "be another program's file, or damaged) and reconcile by hand from "
            "session.open_orders() / completed_orders() before trading with a new journal",
            variable="journal",
        )

    def close(self) -> None:
        self._db.close()
        self._lock.close()  # releases the lock

    # -- writing ---------------------------------------------------------------------------

    def write_intents(self, entries: list[JournalEntry]) -> list[int]:
        """Commit the intents of legs about to be sent, in one transaction."""
        now = _now()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seqs = [
                int(
                    db.execute(
                        "INSERT INTO intents (key, client_id, order_id, parent_order_id,"
                        " oca_group, oca_type, contract, spec, at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            e.key,
                            e.client_id,
                            e.order_id,
                            e.parent_order_id,
                            e.oca_group,
                            e.oca_type,
                            _dumps(e.contract),
                            _dumps(e.spec),
                            now,
                        ),
                    ).lastrowid
                    or 0
                )
                for e in entries
            ]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seqs

    def write_event(self, intent: int, kind: str, data: Mapping[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO events (intent, kind, data, at) VALUES (?, ?, ?, ?)",
            (intent, kind, json.dumps(data), _now()),
        )

    def write_fill(self, intent: int, fill: Fill) -> bool:
        """Record an execution once; False when its execution id is already in the journal."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO fills (exec_id, intent, data, at) VALUES (?, ?, ?, ?)",
            (fill.exec_id, intent, _dumps(fill), _now()),
        )
        return cursor.rowcount == 1

    # -- reading ---------------------------------------------------------------------------

    def unsettled(self) -> list[Intent]:
        """Every intent whose order was not yet settled (done, executions and commissions in)."""
        rows = self._db.execute(
            "SELECT * FROM intents WHERE seq NOT IN"
            " (SELECT intent FROM events WHERE kind = 'settled') ORDER BY seq"
        ).fetchall()
        return list(self._read(rows))

    def latest(self, key: str) -> Intent | None:
        """The newest readable intent journaled under ``key``."""
        rows = self._db.execute(
            "SELECT * FROM intents WHERE key = ? ORDER BY seq DESC", (key,)
        ).fetchall()
        return next(self._read(rows), None)

    def sent_as(self, order_ref: str) -> int:
        """How many intents, settled or not, were sent with ``order_ref``."""
        [count] = self._db.execute(
            f"SELECT COUNT(*) FROM intents WHERE {_SENT_REF} = ?", (order_ref,)
        ).fetchone()
        return int(count)

    def fills(self) -> list[Fill]:
        """Every journaled execution, oldest first (the readable ones)."""
        found: list[Fill] = []
        for exec_id, data in self._db.execute("SELECT exec_id, data FROM fills ORDER BY rowid"):
            fill = _parse(f"fill {exec_id}", _fill_json, data)
            if fill is not None:
                found.append(fill)
        return found

    def _read(self, rows: list[Any]) -> Iterator[Intent]:
        for row in rows:
            seq, at = row[0], row[-1]
            entry = _parse(f"intent {seq}", _entry_of, row)
            if entry is None:
                continue
            intent = Intent(seq=seq, entry=entry, at=datetime.fromisoformat(at))
            self._fill_in(intent)
            yield intent

    def _fill_in(self, intent: Intent) -> None:
        for kind, data, seq in self._db.execute(
            "SELECT kind, data, seq FROM events WHERE intent = ? ORDER BY seq", (intent.seq,)
        ):
            values = _parse(f"event {seq}", json.loads, data)
            if not isinstance(values, dict):
                continue
            if kind == "ack":
                intent.perm_id = values.get("perm_id")
            elif kind == "status":
                intent.status = values.get("status")
                intent.reason = values.get("reason")
            elif kind == "terms":
                intent.spec = _parse(f"event {seq}", _order_of, values.get("spec"))
            elif kind == "commission":
                found = _parse(f"event {seq}", _commission_of, values)
                if found is not None:
                    intent.commissions.append(found)
            elif kind == "rejected":
                intent.rejected = f"{values.get('code')}: {values.get('message')}"
            elif kind == "settled":
                intent.settled = True
        for exec_id, data in self._db.execute(
            "SELECT exec_id, data FROM fills WHERE intent = ? ORDER BY rowid", (intent.seq,)
        ):
            fill = _parse(f"fill {exec_id}", _fill_json, data)
            if fill is not None:
                intent.fills.append(fill)


def _hold(path: Path) -> IO[str]:
    """Lock ``path``'s companion ``.lock`` file: one running session per journal.

    Two sessions writing one journal could each find a key free and both send it. The lock
    dies with its process, so a killed bot never leaves it behind. (Where ``fcntl`` is missing,
    as on Windows, there is no lock: keep one journal per bot yourself.)
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = lock_path.open("a+")
    except OSError as exc:
        raise ConfigError(
            f"the order journal {str(path)!r} cannot be used: {exc}", variable="journal"
        ) from None
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            f"the order journal {str(path)!r} is in use by another session ({holder}): one "
            "journal belongs to one running bot. Close the other session, or give this one "
            "its own journal file",
            variable="journal",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()}\n")
    handle.flush()
    return handle


def _parse(what: str, read: Callable[..., Any], *args: Any) -> Any:
    """``read(*args)``, or ``None`` with a warning: a torn or foreign record is skipped."""
    try:
        return read(*args)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("order journal: skipping %s, which cannot be read (%s)", what, exc)
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- JSON ----------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return {"$time": value.isoformat()}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_plain(value), separators=(",", ":"))


def _revive(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$time"}:
        return datetime.fromisoformat(value["$time"])
    return value


def _contract_of(data: dict[str, Any]) -> Contract:
    return Contract(**{name: _revive(v) for name, v in data.items()})


def _order_of(data: dict[str, Any]) -> Order:
    return Order(**{name: _revive(v) for name, v in data.items()})


def _entry_of(row: Any) -> JournalEntry:
    _, key, client_id, order_id, parent, oca_group, oca_type, contract, spec, _ = row
    return JournalEntry(
        key=key,
        client_id=int(client_id),
        order_id=int(order_id),
        parent_order_id=parent,
        oca_group=str(oca_group),
        oca_type=int(oca_type),
        contract=_contract_of(json.loads(contract)),
        spec=_order_of(json.loads(spec)),
    )


def _fill_json(data: str) -> Fill:
    return _fill_of(json.loads(data))


def _fill_of(data: dict[str, Any]) -> Fill:
    values = {name: _revive(v) for name, v in data.items()}
    values["contract"] = _contract_of(values["contract"])
    values["side"] = Side(values["side"])
    if values.get("commission") is not None:
        values["commission"] = _commission_of(values["commission"])
    return Fill(**values)


def _commission_of(data: dict[str, Any]) -> Commission:
    return Commission(**data)


def commission_fields(commission: Commission) -> dict[str, Any]:
    return {f.name: getattr(commission, f.name) for f in fields(commission)}


def order_fields(order: Order) -> Any:
    return _plain(order)
