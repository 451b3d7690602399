"""Option requests: chains, calculations, and the option computations after an option's quote.

Every answer comes from the option model of :mod:`.._options`, priced on the underlying's live
mid, so the greeks a client reads agree with the quotes it gets.
"""

from __future__ import annotations

from .._codec import Fields
from .._core import Connection
from .._ids import Msg
from .._model import ContractQuery, Instrument, SimError
from .._options import (
    ASK_COMPUTATION,
    BID_COMPUTATION,
    CUSTOM_COMPUTATION,
    LAST_COMPUTATION,
    MAX_VOL,
    MODEL_COMPUTATION,
    black_scholes,
    implied_vol,
    model_vol,
    option_chain,
    option_computation,
    sec_def_opt_params,
    years_left,
)


def _underlying(c: Connection, inst: Instrument) -> Instrument:
    under = c.sim.universe.by_con_id(inst.under_con_id)
    if under is None:
        raise SimError(200, "No security definition has been found for the request")
    return under


def _mid(c: Connection, inst: Instrument) -> float:
    q = c.sim.market.quote(inst.con_id)
    return (q.bid + q.ask) / 2 if q.bid > 0 and q.ask > 0 else q.last


def send_option_ticks(c: Connection, req_id: int, inst: Instrument) -> None:
    """The bid, ask, last and model computations that follow an option's quote ticks."""
    under = c.sim.universe.by_con_id(inst.under_con_id)
    if under is None:
        return
    q = c.sim.market.quote(inst.con_id)
    spot = _mid(c, under)
    now = c.sim.clock()
    years = years_left(inst, now)
    delayed = 1 if c.market_data_type in (3, 4) else 0
    for kind, price in ((BID_COMPUTATION, q.bid), (ASK_COMPUTATION, q.ask)):
        _send_at_price(c, req_id, kind[delayed], inst, price, spot, years)
    if q.last > 0:
        _send_at_price(c, req_id, LAST_COMPUTATION[delayed], inst, q.last, spot, years)
    vol = model_vol(under, inst.strike, spot)
    model = black_scholes(spot, inst.strike, years, vol, inst.right)
    c.send(
        option_computation(
            req_id,
            MODEL_COMPUTATION[delayed],
            implied_vol=vol,
            greeks=model,
            price=model.price,
            under_price=spot,
        )
    )


def _send_at_price(
    c: Connection,
    req_id: int,
    tick_type: int,
    inst: Instrument,
    price: float,
    spot: float,
    years: float,
) -> None:
    vol = implied_vol(price, spot, inst.strike, years, inst.right) if price > 0 else None
    greeks = black_scholes(spot, inst.strike, years, vol, inst.right) if vol else None
    c.send(
        option_computation(
            req_id,
            tick_type,
            implied_vol=vol,
            greeks=greeks,
            price=price if price > 0 else None,
            under_price=spot,
        )
    )


def h_sec_def_opt_params(c: Connection, f: Fields) -> None:
    req_id = f.int()
    symbol = f.str().strip().upper()
    fut_fop_exchange = f.str()
    sec_type = f.str().strip().upper()
    con_id = f.int()
    if con_id:
        found = c.sim.universe.match(ContractQuery(con_id=con_id, symbol=symbol, sec_type=sec_type))
    else:
        found = [
            i
            for i in c.sim.universe.match(ContractQuery(symbol=symbol, sec_type=sec_type))
            if i.sec_type not in ("OPT", "FOP")
        ]
    if len(found) != 1:
        raise SimError(200, "No security definition has been found for the request")
    under = found[0]
    rows = option_chain(c.sim.universe, under, exchange=fut_fop_exchange, now=c.sim.clock())
    for row in rows:
        c.send(
            sec_def_opt_params(
                req_id,
                row.exchange,
                under.con_id,
                row.trading_class,
                row.multiplier,
                list(row.expirations),
                list(row.strikes),
            )
        )
    c.send([Msg.SECURITY_DEFINITION_OPTION_PARAMETER_END, req_id])


def _read_calculation(c: Connection, f: Fields) -> tuple[int, Instrument, float, float]:
    """The common part of the two calculate requests: id, option, a value, underlying price."""
    f.skip()  # version
    req_id = f.int()
    query = f.contract()
    value = f.float()
    under_price = f.float()
    inst = c.sim.universe.resolve(query)
    if inst.sec_type != "OPT":
        raise SimError(
            321, "Error validating request.-'bG' : cause - option calculations need an option"
        )
    if value is None or value <= 0:
        raise SimError(
            321, "Error validating request.-'bG' : cause - the price or volatility must be > 0"
        )
    spot = under_price if under_price else _mid(c, _underlying(c, inst))
    return req_id, inst, value, spot


def h_calc_implied_volat(c: Connection, f: Fields) -> None:
    req_id, inst, price, spot = _read_calculation(c, f)
    years = years_left(inst, c.sim.clock())
    vol = implied_vol(price, spot, inst.strike, years, inst.right)
    greeks = black_scholes(spot, inst.strike, years, vol, inst.right) if vol else None
    c.send(
        option_computation(
            req_id,
            CUSTOM_COMPUTATION,
            implied_vol=vol,
            greeks=greeks,
            price=price,
            under_price=spot,
        )
    )


def h_calc_option_price(c: Connection, f: Fields) -> None:
    req_id, inst, vol, spot = _read_calculation(c, f)
    if vol > MAX_VOL:
        raise SimError(
            321, f"Error validating request.-'bG' : cause - volatility {vol} is out of range"
        )
    greeks = black_scholes(spot, inst.strike, years_left(inst, c.sim.clock()), vol, inst.right)
    c.send(
        option_computation(
            req_id,
            CUSTOM_COMPUTATION,
            implied_vol=vol,
            greeks=greeks,
            price=greeks.price,
            under_price=spot,
        )
    )


def h_cancel_calculation(c: Connection, f: Fields) -> None:
    # A calculation is answered at once, so there is nothing left running to stop.
    f.skip()
    f.int()
