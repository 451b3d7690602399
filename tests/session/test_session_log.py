"""Account masking and the JSON log format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

import ibflow
from ibflow._log import get_logger, mask_account, mask_accounts, masking_enabled


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger("ibflow")
    handlers, level = list(root.handlers), root.level
    yield
    ibflow.configure_logging(unmask_accounts=False)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(
    ("account", "masked"),
    [
        ("DU1234567", "DU***567"),
        ("U1234567", "U***567"),
        ("DF9876543", "DF***543"),
        ("F1234567", "F***567"),
    ],
)
def test_mask_account(account: str, masked: str) -> None:
    assert mask_account(account) == masked


def test_mask_accounts_in_text_leaves_other_numbers_alone() -> None:
    text = "order 1234567 for DU1234567 and U7654321 at port 7497"
    assert mask_accounts(text) == "order 1234567 for DU***567 and U***321 at port 7497"


def test_component_loggers_mask_by_default(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("orders")
    assert logger.name == "ibflow.orders"
    with caplog.at_level(logging.INFO, logger="ibflow.orders"):
        logger.info("filled for %s", "DU1234567")
    assert caplog.messages == ["filled for DU***567"]
    assert masking_enabled()


def test_json_format_and_unmasking_on_purpose() -> None:
    stream = io.StringIO()
    ibflow.configure_logging("INFO", json=True, stream=stream)
    get_logger("market").info("quote for %s", "DU1234567", extra={"account": "DU1234567"})
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["logger"] == "ibflow.market"
    assert record["level"] == "info"
    assert record["message"] == "quote for DU***567"
    assert record["account"] == "DU***567"

    ibflow.configure_logging("INFO", json=True, stream=stream, unmask_accounts=True)
    get_logger("market").info("quote for %s", "DU1234567")
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "quote for DU1234567"


def test_configure_logging_replaces_its_own_handler() -> None:
    first = ibflow.configure_logging(stream=io.StringIO())
    second = ibflow.configure_logging(stream=io.StringIO())
    handlers = logging.getLogger("ibflow").handlers
    assert second in handlers
    assert first not in handlers
