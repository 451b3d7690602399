"""Connection and account requests: ids, time, accounts, positions, account values, PnL.

Each ``h_*`` handler takes the connection and a cursor positioned after the message id. The
``send_*``/``push_*`` helpers write the same frames again when a fill or the market moves them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .._codec import Fields
from .._core import Connection, SimCore, Sub, log
from .._ids import Msg
from .._layouts import portfolio_value, position
from .._model import Instrument, SimError


def h_ids(c: Connection, f: Fields) -> None:
    assert c.client_id is not None
    c.send([Msg.NEXT_VALID_ID, 1, c.sim.next_order_id(c.client_id)])


def h_current_time(c: Connection, f: Fields) -> None:
    c.send([Msg.CURRENT_TIME, 1, int(c.sim.clock())])


def h_managed_accts(c: Connection, f: Fields) -> None:
    c.send([Msg.MANAGED_ACCTS, 1, ",".join(c.sim.broker.accounts)])


def h_set_server_log_level(c: Connection, f: Fields) -> None:
    """TWS's own log level (1 system … 5 detail): accepted without an answer, as TWS does."""
    f.skip()
    level = f.int()
    if not 1 <= level <= 5:
        raise SimError(321, f"Error validating request.-'bL' : cause - invalid log level {level}")
    log.info("client %s set the server log level to %d", c.client_id, level)


def h_positions(c: Connection, f: Fields) -> None:
    for pos in c.sim.broker.positions():
        c.send(position(pos))
    c.send([Msg.POSITION_END, 1])
    c.subs[("positions", 0)] = Sub("positions", 0)


def h_cancel_positions(c: Connection, f: Fields) -> None:
    c.subs.pop(("positions", 0), None)


def h_account_updates(c: Connection, f: Fields) -> None:
    f.skip()
    subscribe = f.bool()
    account = f.str() or c.sim.broker.accounts[0]
    c.subs.pop(("account_updates", 0), None)
    if not subscribe:
        return
    c.sim.check_account(account)
    c.subs[("account_updates", 0)] = Sub("account_updates", 0, params={"account": account})
    send_account_values(c, account)
    for item in c.sim.broker.portfolio(account):
        c.send(portfolio_value(item))
    c.send([Msg.ACCT_DOWNLOAD_END, 1, account])


def h_account_updates_multi(c: Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    account = f.str()
    model_code = f.str()
    accounts = c.sim.broker.accounts if account in ("", "All") else [account]
    for acct in accounts:
        c.sim.check_account(acct)
    sub = Sub("account_updates_multi", req_id, params={"accounts": accounts, "model": model_code})
    c.subs[("account_updates_multi", req_id)] = sub
    send_account_multi(c, sub)
    c.send([Msg.ACCOUNT_UPDATE_MULTI_END, 1, req_id])


def h_cancel_account_updates_multi(c: Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("account_updates_multi", f.int()), None)


def h_account_summary(c: Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    group = f.str()
    tags = [t.strip() for t in f.str().split(",") if t.strip()]
    if group not in ("All", ""):
        raise SimError(321, f"Error validating request.-'b6' : cause - Unknown group '{group}'")
    sub = Sub("account_summary", req_id, params={"tags": tags})
    c.subs[("account_summary", req_id)] = sub
    send_account_summary(c, sub)


def h_cancel_account_summary(c: Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("account_summary", f.int()), None)


def h_pnl(c: Connection, f: Fields) -> None:
    req_id = f.int()
    account = f.str()
    c.sim.check_account(account)
    sub = Sub("pnl", req_id, params={"account": account})
    c.subs[("pnl", req_id)] = sub
    send_pnl(c, sub)


def h_cancel_pnl(c: Connection, f: Fields) -> None:
    c.subs.pop(("pnl", f.int()), None)


def h_pnl_single(c: Connection, f: Fields) -> None:
    req_id = f.int()
    account = f.str()
    f.skip()  # model code
    con_id = f.int()
    c.sim.check_account(account)
    if c.sim.universe.by_con_id(con_id) is None:
        raise SimError(200, "No security definition has been found for the request")
    sub = Sub("pnl_single", req_id, params={"account": account, "con_id": con_id})
    c.subs[("pnl_single", req_id)] = sub
    send_pnl(c, sub)


def h_cancel_pnl_single(c: Connection, f: Fields) -> None:
    c.subs.pop(("pnl_single", f.int()), None)


# ---------------------------------------------------------------------------------------------
# Frames, sent on request and again when the account changes


def send_account_values(c: Connection, account: str) -> None:
    sim = c.sim
    for key, value, currency in sim.broker.account_values(account):
        c.send([Msg.ACCT_VALUE, 2, key, value, currency, account])
    stamp = datetime.fromtimestamp(sim.clock(), UTC).strftime("%H:%M")
    c.send([Msg.ACCT_UPDATE_TIME, 1, stamp])


def send_account_multi(c: Connection, sub: Sub, only: str | None = None) -> None:
    for account in sub.params["accounts"]:
        if only is not None and account != only:
            continue
        for key, value, currency in c.sim.broker.account_values(account):
            c.send(
                [
                    Msg.ACCOUNT_UPDATE_MULTI,
                    1,
                    sub.req_id,
                    account,
                    sub.params["model"],
                    key,
                    value,
                    currency,
                ]
            )


def send_account_summary(c: Connection, sub: Sub, *, end: bool = True) -> None:
    broker = c.sim.broker
    for account in broker.accounts:
        for tag, value, currency in broker.account_summary(account, sub.params["tags"]):
            c.send([Msg.ACCOUNT_SUMMARY, 1, sub.req_id, account, tag, value, currency])
    if end:
        c.send([Msg.ACCOUNT_SUMMARY_END, 1, sub.req_id])


def send_pnl(c: Connection, sub: Sub) -> None:
    account = sub.params["account"]
    if sub.kind == "pnl":
        daily, unrealized, realized = c.sim.broker.pnl(account)
        c.send([Msg.PNL, sub.req_id, daily, unrealized, realized])
        return
    single = c.sim.broker.pnl_single(account, sub.params["con_id"])
    if single is None:
        # No position: TWS reports zero position and unset PnL values.
        c.send([Msg.PNL_SINGLE, sub.req_id, 0, None, None, None, None])
        return
    pos, daily, unrealized, realized, value = single
    c.send([Msg.PNL_SINGLE, sub.req_id, pos, daily, unrealized, realized, value])


def push_position(sim: SimCore, account: str, inst: Instrument) -> None:
    """A fill moved a position: tell the position and account-update subscribers."""
    pos = next(
        (p for p in sim.broker.positions(account) if p.instrument.con_id == inst.con_id),
        None,
    )
    for conn in sim.connections():
        if ("positions", 0) in conn.subs and pos is not None:
            conn.send(position(pos))
        sub = conn.subs.get(("account_updates", 0))
        if sub is not None and sub.params["account"] == account:
            for item in sim.broker.portfolio(account):
                if item.instrument.con_id == inst.con_id:
                    conn.send(portfolio_value(item))


def push_account(sim: SimCore, account: str) -> None:
    """Cash, margin or PnL of ``account`` changed: resend what its subscribers follow."""
    for conn in sim.connections():
        for sub in list(conn.subs.values()):
            if sub.kind == "account_updates" and sub.params["account"] == account:
                send_account_values(conn, account)
            elif sub.kind == "account_updates_multi" and account in sub.params["accounts"]:
                send_account_multi(conn, sub, only=account)
            elif sub.kind == "account_summary":
                send_account_summary(conn, sub, end=False)
