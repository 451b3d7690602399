"""The error tree: builtin bases, structured fields, messages."""

from __future__ import annotations

import pytest

import ibflow

TIMEOUTS = [
    ibflow.ConnectTimeout("x"),
    ibflow.HandshakeTimeout("x"),
    ibflow.SyncTimeout("x", part="positions"),
    ibflow.RequestTimeout("x"),
]


@pytest.mark.parametrize("error", TIMEOUTS, ids=lambda e: type(e).__name__)
def test_every_timeout_is_a_timeout_error(error: ibflow.IBFlowError) -> None:
    with pytest.raises(TimeoutError):
        raise error


@pytest.mark.parametrize(
    "cls",
    [
        ibflow.ConnectRefused,
        ibflow.ConnectTimeout,
        ibflow.HandshakeTimeout,
        ibflow.ConnectionClosedEarly,
        ibflow.ClientIdInUse,
        ibflow.SyncTimeout,
    ],
)
def test_connect_errors_share_a_base(cls: type[ibflow.IBFlowError]) -> None:
    assert issubclass(cls, ibflow.ConnectError)
    assert issubclass(cls, ConnectionError)
    assert issubclass(cls, ibflow.IBFlowError)


def test_the_rest_of_the_tree() -> None:
    assert issubclass(ibflow.ConnectionLost, ConnectionError)
    assert not issubclass(ibflow.ConnectionLost, ibflow.ConnectError)
    for cls in (
        ibflow.ContractNotFound,
        ibflow.AmbiguousContract,
        ibflow.OrderRejected,
        ibflow.MarketDataError,
        ibflow.PacingViolation,
    ):
        assert issubclass(cls, ibflow.RequestError)
    assert issubclass(ibflow.InvalidRequest, ValueError)
    assert issubclass(ibflow.ConfigError, ibflow.InvalidRequest)
    assert issubclass(ibflow.SafetyError, ibflow.IBFlowError)
    assert issubclass(ibflow.ConnectRefused, ConnectionRefusedError)


def test_request_error_fields_and_message() -> None:
    err = ibflow.ContractNotFound(200, "No security definition", 12, hint="pass a con_id")
    assert (err.code, err.message, err.req_id, err.hint) == (
        200,
        "No security definition",
        12,
        "pass a con_id",
    )
    assert str(err) == "IB error 200 for request 12: No security definition (pass a con_id)"
    assert str(ibflow.RequestError(100, "Max rate")) == "IB error 100: Max rate"


def test_structured_connect_fields() -> None:
    err = ibflow.ClientIdInUse("taken", client_id=7, host="h", port=1)
    assert (err.client_id, err.host, err.port, str(err)) == (7, "h", 1, "taken")
    assert ibflow.SyncTimeout("s", part="executions").part == "executions"
