"""Historical bars, paced long downloads and the local cache.

The most reported history pains: ib_async returns ``[]``
on a timeout and on an IB error alike, a long pull trips error 162 or is simply never answered,
and nothing remembers what was already fetched. Here:

* ``history()`` validates everything before sending (bar size, duration, IB's step table,
  what-to-show, aware end), sends one request through the session's pacer, and either returns
  the bars or raises a typed error — a timeout raises :class:`~ibflow.RequestTimeout` after the
  IB cancel went out. An identical request within 15 s is answered from memory (IB would refuse
  it), and concurrent identical requests share one answer.
* ``download()`` cuts a range into IB-legal requests on the instrument's bar grid, serves what
  the on-disk cache holds, fetches the gaps with a few requests in flight under the pacer,
  retries after pacing errors with backoff, and returns the bars sorted and unique.
* ``head_timestamp()`` asks for the earliest bar IB has.

The pacing rules live in ``ibflow._pacer`` (one pacer per session, shared with the other
features that send paced requests), the parsing and planning in ``ibflow._periods``, the store in
``_cache``, and the ib_async calls in ``ibflow._ib._history``.
"""

from ._api import History
from ._cache import HistoryCache

__all__ = ["History", "HistoryCache"]
