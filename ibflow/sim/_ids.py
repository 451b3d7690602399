"""TWS API message ids at server version 178, one enum per direction.

Ids are numbered separately for each direction (incoming 94 is ``pnl``, outgoing 94 is
``reqPnLSingle``), so mixing them up is the classic simulator bug; two enums make it a type
error instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class Req(IntEnum):
    """Client → server request ids: every request of the API at server version 178.

    Names follow the official API's constants without their ``REQ_`` prefix.
    """

    MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    OPEN_ORDERS = 5
    ACCOUNT_UPDATES = 6
    EXECUTIONS = 7
    IDS = 8
    CONTRACT_DATA = 9
    MKT_DEPTH = 10
    CANCEL_MKT_DEPTH = 11
    NEWS_BULLETINS = 12
    CANCEL_NEWS_BULLETINS = 13
    SET_SERVER_LOGLEVEL = 14
    AUTO_OPEN_ORDERS = 15
    ALL_OPEN_ORDERS = 16
    MANAGED_ACCTS = 17
    FA = 18
    REPLACE_FA = 19
    HISTORICAL_DATA = 20
    EXERCISE_OPTIONS = 21
    SCANNER_SUBSCRIPTION = 22
    CANCEL_SCANNER_SUBSCRIPTION = 23
    SCANNER_PARAMETERS = 24
    CANCEL_HISTORICAL_DATA = 25
    CURRENT_TIME = 49
    REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    FUNDAMENTAL_DATA = 52
    CANCEL_FUNDAMENTAL_DATA = 53
    CALC_IMPLIED_VOLAT = 54
    CALC_OPTION_PRICE = 55
    CANCEL_CALC_IMPLIED_VOLAT = 56
    CANCEL_CALC_OPTION_PRICE = 57
    GLOBAL_CANCEL = 58
    MARKET_DATA_TYPE = 59
    POSITIONS = 61
    ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    VERIFY_REQUEST = 65
    VERIFY_MESSAGE = 66
    QUERY_DISPLAY_GROUPS = 67
    SUBSCRIBE_TO_GROUP_EVENTS = 68
    UPDATE_DISPLAY_GROUP = 69
    UNSUBSCRIBE_FROM_GROUP_EVENTS = 70
    START_API = 71
    VERIFY_AND_AUTH_REQUEST = 72
    VERIFY_AND_AUTH_MESSAGE = 73
    POSITIONS_MULTI = 74
    CANCEL_POSITIONS_MULTI = 75
    ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    SEC_DEF_OPT_PARAMS = 78
    SOFT_DOLLAR_TIERS = 79
    FAMILY_CODES = 80
    MATCHING_SYMBOLS = 81
    MKT_DEPTH_EXCHANGES = 82
    SMART_COMPONENTS = 83
    NEWS_ARTICLE = 84
    NEWS_PROVIDERS = 85
    HISTORICAL_NEWS = 86
    HEAD_TIMESTAMP = 87
    HISTOGRAM_DATA = 88
    CANCEL_HISTOGRAM_DATA = 89
    CANCEL_HEAD_TIMESTAMP = 90
    MARKET_RULE = 91
    PNL = 92
    CANCEL_PNL = 93
    PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    HISTORICAL_TICKS = 96
    TICK_BY_TICK = 97
    CANCEL_TICK_BY_TICK = 98
    COMPLETED_ORDERS = 99
    WSH_META_DATA = 100
    CANCEL_WSH_META_DATA = 101
    WSH_EVENT_DATA = 102
    CANCEL_WSH_EVENT_DATA = 103
    USER_INFO = 104


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


# Where a request carries its request (or order, ticker) id: the field index, message id at 0.
# Requests missing here carry none (errors about them go to id -1).
REQ_ID_FIELD: dict[Req, int] = {
    Req.MKT_DATA: 2,
    Req.CANCEL_MKT_DATA: 2,
    Req.PLACE_ORDER: 1,
    Req.CANCEL_ORDER: 2,
    Req.EXECUTIONS: 2,
    Req.CONTRACT_DATA: 2,
    Req.MKT_DEPTH: 2,
    Req.CANCEL_MKT_DEPTH: 2,
    Req.REPLACE_FA: 4,
    Req.HISTORICAL_DATA: 1,
    Req.EXERCISE_OPTIONS: 2,
    Req.SCANNER_SUBSCRIPTION: 1,
    Req.CANCEL_SCANNER_SUBSCRIPTION: 2,
    Req.CANCEL_HISTORICAL_DATA: 2,
    Req.REAL_TIME_BARS: 2,
    Req.CANCEL_REAL_TIME_BARS: 2,
    Req.FUNDAMENTAL_DATA: 2,
    Req.CANCEL_FUNDAMENTAL_DATA: 2,
    Req.CALC_IMPLIED_VOLAT: 2,
    Req.CALC_OPTION_PRICE: 2,
    Req.CANCEL_CALC_IMPLIED_VOLAT: 2,
    Req.CANCEL_CALC_OPTION_PRICE: 2,
    Req.ACCOUNT_SUMMARY: 2,
    Req.CANCEL_ACCOUNT_SUMMARY: 2,
    Req.QUERY_DISPLAY_GROUPS: 2,
    Req.SUBSCRIBE_TO_GROUP_EVENTS: 2,
    Req.UPDATE_DISPLAY_GROUP: 2,
    Req.UNSUBSCRIBE_FROM_GROUP_EVENTS: 2,
    Req.POSITIONS_MULTI: 2,
    Req.CANCEL_POSITIONS_MULTI: 2,
    Req.ACCOUNT_UPDATES_MULTI: 2,
    Req.CANCEL_ACCOUNT_UPDATES_MULTI: 2,
    Req.SEC_DEF_OPT_PARAMS: 1,
    Req.SOFT_DOLLAR_TIERS: 1,
    Req.MATCHING_SYMBOLS: 1,
    Req.SMART_COMPONENTS: 1,
    Req.NEWS_ARTICLE: 1,
    Req.HISTORICAL_NEWS: 1,
    Req.HEAD_TIMESTAMP: 1,
    Req.HISTOGRAM_DATA: 1,
    Req.CANCEL_HISTOGRAM_DATA: 1,
    Req.CANCEL_HEAD_TIMESTAMP: 1,
    Req.PNL: 1,
    Req.CANCEL_PNL: 1,
    Req.PNL_SINGLE: 1,
    Req.CANCEL_PNL_SINGLE: 1,
    Req.HISTORICAL_TICKS: 1,
    Req.TICK_BY_TICK: 1,
    Req.CANCEL_TICK_BY_TICK: 1,
    Req.WSH_META_DATA: 1,
    Req.CANCEL_WSH_META_DATA: 1,
    Req.WSH_EVENT_DATA: 1,
    Req.CANCEL_WSH_EVENT_DATA: 1,
    Req.USER_INFO: 1,
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
