"""The requests of the API at server version 178 that the simulator does not simulate.

Each is answered at once with error 322 addressed to its request id (-1 when it carries none),
naming the request, and logged at warning level: a client never waits for an answer that will
not come. When a request becomes simulated, its entry leaves :data:`UNSUPPORTED` (a simulated
handler also takes precedence over an entry left behind).
"""

from __future__ import annotations

from .._codec import Fields
from .._core import Connection, Handler
from .._ids import Req, req_id_of

__all__ = ["UNSUPPORTED", "refuse"]

# The request each message id is, as the API names it.
UNSUPPORTED: dict[Req, str] = {
    Req.NEWS_BULLETINS: "reqNewsBulletins",
    Req.CANCEL_NEWS_BULLETINS: "cancelNewsBulletins",
    Req.FA: "requestFA",
    Req.REPLACE_FA: "replaceFA",
    Req.EXERCISE_OPTIONS: "exerciseOptions",
    Req.FUNDAMENTAL_DATA: "reqFundamentalData",
    Req.CANCEL_FUNDAMENTAL_DATA: "cancelFundamentalData",
    Req.VERIFY_REQUEST: "verifyRequest",
    Req.VERIFY_MESSAGE: "verifyMessage",
    Req.QUERY_DISPLAY_GROUPS: "queryDisplayGroups",
    Req.SUBSCRIBE_TO_GROUP_EVENTS: "subscribeToGroupEvents",
    Req.UPDATE_DISPLAY_GROUP: "updateDisplayGroup",
    Req.UNSUBSCRIBE_FROM_GROUP_EVENTS: "unsubscribeFromGroupEvents",
    Req.VERIFY_AND_AUTH_REQUEST: "verifyAndAuthRequest",
    Req.VERIFY_AND_AUTH_MESSAGE: "verifyAndAuthMessage",
    Req.POSITIONS_MULTI: "reqPositionsMulti",
    Req.CANCEL_POSITIONS_MULTI: "cancelPositionsMulti",
    Req.SOFT_DOLLAR_TIERS: "reqSoftDollarTiers",
    Req.FAMILY_CODES: "reqFamilyCodes",
    Req.SMART_COMPONENTS: "reqSmartComponents",
    Req.NEWS_ARTICLE: "reqNewsArticle",
    Req.NEWS_PROVIDERS: "reqNewsProviders",
    Req.HISTORICAL_NEWS: "reqHistoricalNews",
    Req.HISTOGRAM_DATA: "reqHistogramData",
    Req.CANCEL_HISTOGRAM_DATA: "cancelHistogramData",
    Req.WSH_META_DATA: "reqWshMetaData",
    Req.CANCEL_WSH_META_DATA: "cancelWshMetaData",
    Req.WSH_EVENT_DATA: "reqWshEventData",
    Req.CANCEL_WSH_EVENT_DATA: "cancelWshEventData",
    Req.USER_INFO: "reqUserInfo",
}


def refuse(req: Req, name: str) -> Handler:
    """The handler that answers ``req`` with ``Connection.not_supported``."""

    def handler(c: Connection, f: Fields) -> None:
        c.not_supported(req_id_of(req, f.raw), name)

    return handler
