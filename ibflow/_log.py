"""ibflow's loggers: one per component, account ids masked, optional JSON lines.

Trading logs end up in files, tickets and chat rooms, and IB account ids are personal data, so
ibflow masks them (``DU1234567`` → ``DU***567``) in every record its own loggers emit unless a
program unmasks them on purpose. Components log under ``ibflow.<component>``
(``ibflow.session``, ``ibflow.orders``, ``ibflow.market``…) so a service can tune them
separately, and :func:`configure_logging` gives services one JSON object per line.

ibflow owns the errors ib_async would otherwise print itself: every IB error reaches the user
once, as ibflow's typed exception or log line. So ib_async's records are re-emitted at DEBUG
under ``ibflow.ib_async`` (masked like the rest), and Python's last-resort handler no longer
writes them to stderr. Beyond that, ibflow never configures logging on import; it only adds
filters to its own loggers.
"""

from __future__ import annotations

import json as _json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

__all__ = [
    "COMPONENTS",
    "JsonFormatter",
    "configure_logging",
    "get_logger",
    "mask_account",
    "mask_accounts",
    "masking_enabled",
]

COMPONENTS = ("session", "orders", "market", "history", "doctor", "ib_async")
"""The components that log under ``ibflow.<component>``."""

# IB account ids: individual (U), advisor/master (F), IBroker (I), their paper twins (D…).
_ACCOUNT_RE = re.compile(r"\b(D?[UFI])(\d{4,10})\b")

_state = {"masking": True}
_installed: set[str] = set()
_handler_ref: list[logging.Handler] = []

# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_account(account: str) -> str:
    """Mask one account id: keep its letter prefix and last three digits.

    >>> mask_account("DU1234567")
    'DU***567'
    """
    match = _ACCOUNT_RE.fullmatch(account)
    if match is None:
        prefix = "".join(ch for ch in account[:2] if ch.isalpha())
        return f"{prefix}***" if account else account
    prefix, digits = match.groups()
    return f"{prefix}***{digits[-3:]}"


def mask_accounts(text: str) -> str:
    """Mask every account id found in ``text``."""
    return _ACCOUNT_RE.sub(lambda m: f"{m.group(1)}***{m.group(2)[-3:]}", text)


def masking_enabled() -> bool:
    """Whether ibflow's loggers currently mask account ids (the default)."""
    return _state["masking"]


class _MaskFilter(logging.Filter):
    """Rewrite a record's message with account ids masked (a no-op once unmasked)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _state["masking"]:
            message = record.getMessage()
            masked = mask_accounts(message)
            if masked != message:
                record.msg = masked
                record.args = None
        return True


_MASK_FILTER = _MaskFilter()


class _FromIBAsync(logging.Handler):
    """Re-emit an ib_async record at DEBUG under ``ibflow.ib_async``.

    ib_async logs IB's errors (``Error 200, reqId 3: …``) and its own view of events
    (``Canceled order: Trade(…)``) that ibflow already reports as typed errors and log lines;
    shown as they are, one problem would appear two or three times.
    """

    def emit(self, record: logging.LogRecord) -> None:
        target = get_logger("ib_async")
        if not target.isEnabledFor(logging.DEBUG):
            return
        copy = logging.makeLogRecord(vars(record))
        copy.name = target.name
        copy.levelno, copy.levelname = logging.DEBUG, "DEBUG"
        copy.ib_async_logger = record.name
        target.handle(copy)


def _route_ib_async() -> None:
    source = logging.getLogger("ib_async")
    if not any(isinstance(h, _FromIBAsync) for h in source.handlers):
        source.addHandler(_FromIBAsync())


def get_logger(component: str) -> logging.Logger:
    """The logger for an ibflow component (``"session"`` → ``ibflow.session``), masked."""
    name = component if component.startswith("ibflow") else f"ibflow.{component}"
    logger = logging.getLogger(name)
    if name not in _installed:
        logger.addFilter(_MASK_FILTER)
        _installed.add(name)
    return logger


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            if isinstance(value, str) and _state["masking"]:
                value = mask_accounts(value)
            payload[key] = (
                value if isinstance(value, str | int | float | bool | None) else repr(value)
            )
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return _json.dumps(payload, ensure_ascii=False)


def configure_logging(
    level: int | str = "INFO",
    *,
    json: bool = False,
    unmask_accounts: bool = False,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send ibflow's logs to a stream, as text or JSON lines.

    Calling it again replaces the handler it installed before. Libraries should not call
    this; applications and services may. ib_async's own records appear here at DEBUG, under
    ``ibflow.ib_async``; at any higher level they are not shown.

    Args:
        level: level for the ``ibflow`` logger tree.
        json: one JSON object per line instead of text.
        unmask_accounts: log account ids in full (off by default: they are personal data).
        stream: where to write; ``sys.stderr`` when omitted.

    Returns:
        The installed handler.
    """
    _state["masking"] = not unmask_accounts
    root = logging.getLogger("ibflow")
    for old in _handler_ref:
        root.removeHandler(old)
    _handler_ref.clear()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # The handler masks too, so records from child loggers created elsewhere are covered.
    handler.addFilter(_MASK_FILTER)
    root.addHandler(handler)
    root.setLevel(level)
    _handler_ref.append(handler)
    return handler


_route_ib_async()
