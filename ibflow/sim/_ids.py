"""TWS API message ids at server version 178, one enum per direction.

Ids are numbered separately for each direction (incoming 94 is ``pnl``, outgoing 94 is
``reqPnLSingle``), so mixing them up is the classic simulator bug; two enums make it a type
error instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class Req(IntEnum):
    """Client → server request ids."""

    MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    OPEN_ORDERS = 5
    ACCOUNT_UPDATES = 6
    EXECUTIONS = 7
    IDS = 8
    CONTRACT_DATA = 9
    AUTO_OPEN_ORDERS = 15
    ALL_OPEN_ORDERS = 16
    MANAGED_ACCTS = 17
    HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    CURRENT_TIME = 49
    REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    GLOBAL_CANCEL = 58
    MARKET_DATA_TYPE = 59
    POSITIONS = 61
    ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    PNL = 92
    CANCEL_PNL = 93
    PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    TICK_BY_TICK = 97
    CANCEL_TICK_BY_TICK = 98
    COMPLETED_ORDERS = 99


class Msg(IntEnum):
    """Server → client message ids."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    REAL_TIME_BARS = 50
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    TICK_REQ_PARAMS = 81
    HEAD_TIMESTAMP = 88
    HISTORICAL_DATA_UPDATE = 90
    PNL = 94
    PNL_SINGLE = 95
    TICK_BY_TICK = 99
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102


# Where a request carries its request (or order) id: the field index, message id at 0.
REQ_ID_FIELD: dict[Req, int] = {
    Req.MKT_DATA: 2,
    Req.CANCEL_MKT_DATA: 2,
    Req.PLACE_ORDER: 1,
    Req.CANCEL_ORDER: 2,
    Req.EXECUTIONS: 2,
    Req.CONTRACT_DATA: 2,
    Req.HISTORICAL_DATA: 1,
    Req.CANCEL_HISTORICAL_DATA: 2,
    Req.REAL_TIME_BARS: 2,
    Req.CANCEL_REAL_TIME_BARS: 2,
    Req.ACCOUNT_SUMMARY: 2,
    Req.CANCEL_ACCOUNT_SUMMARY: 2,
    Req.ACCOUNT_UPDATES_MULTI: 2,
    Req.CANCEL_ACCOUNT_UPDATES_MULTI: 2,
    Req.HEAD_TIMESTAMP: 1,
    Req.CANCEL_HEAD_TIMESTAMP: 1,
    Req.PNL: 1,
    Req.CANCEL_PNL: 1,
    Req.PNL_SINGLE: 1,
    Req.CANCEL_PNL_SINGLE: 1,
    Req.TICK_BY_TICK: 1,
    Req.CANCEL_TICK_BY_TICK: 1,
}


def req_id_of(req: Req, fields: Sequence[str]) -> int:
    """The request (or order) id ``fields`` carries, for addressing an error to it; else -1."""
    pos = REQ_ID_FIELD.get(req)
    if pos is None or pos >= len(fields):
        return -1
    try:
        return int(fields[pos])
    except ValueError:
        return -1
