"""The built-in instrument universe, and how IB names contracts (OCC and future symbols)."""

from __future__ import annotations

import math
from datetime import date

from ._model import Instrument
from ._order_types import order_types_for

__all__ = [
    "AAPL_OPTION_EXPIRIES",
    "AAPL_OPTION_STRIKES",
    "FX_SESSION",
    "OPTION_CON_ID_BASE",
    "default_instruments",
    "future_local_symbol",
    "occ_symbol",
]


_STOCK_EXCHANGES = (
    "SMART", "AMEX", "NYSE", "CBOE", "PHLX", "ISE", "CHX", "ARCA", "NASDAQ", "DRCTEDGE", "BEX",
    "BATS", "EDGEA", "BYX", "IEX", "EDGX", "PEARL", "MEMX", "PSX", "LTSE", "TPLUS1",
)  # fmt: skip
_OPTION_EXCHANGES = (
    "SMART", "AMEX", "CBOE", "PHLX", "PSE", "ISE", "BOX", "BATS", "NASDAQOM", "CBOE2", "MIAX",
    "GEMINI", "EDGX", "MERCURY", "PEARL", "EMERALD", "MEMX", "IBUSOPT",
)  # fmt: skip
FX_SESSION = ("1715", "1700")  # IDEALPRO trades round the clock Sunday to Friday
_FUTURE_MONTH_CODES = "FGHJKMNQUVXZ"


def occ_symbol(symbol: str, expiry: str, right: str, strike: float) -> str:
    """The OCC option symbol IB uses as localSymbol: root padded to 6, yymmdd, C/P, strike*1000."""
    return f"{symbol:<6}{expiry[2:]}{right}{round(strike * 1000):08d}"


def future_local_symbol(symbol: str, expiry: str) -> str:
    return f"{symbol}{_FUTURE_MONTH_CODES[int(expiry[4:6]) - 1]}{expiry[3]}"


def _stock(
    con_id: int,
    symbol: str,
    primary: str,
    long_name: str,
    sector: tuple[str, str, str],
    price: float,
    volatility: float,
    *,
    etf: bool = False,
) -> Instrument:
    # IB reports NASDAQ-listed names with the "NMS" trading class.
    trading_class = "NMS" if primary == "NASDAQ" else symbol
    return Instrument(
        con_id=con_id,
        symbol=symbol,
        sec_type="STK",
        order_types=order_types_for("STK"),
        exchange="SMART",
        currency="USD",
        primary_exchange=primary,
        local_symbol=symbol,
        trading_class=trading_class,
        market_name=trading_class,
        long_name=long_name,
        valid_exchanges=_STOCK_EXCHANGES,
        industry=sector[0],
        category=sector[1],
        subcategory=sector[2],
        stock_type="ETF" if etf else "COMMON",
        price=price,
        volatility=volatility,
    )


def _forex(
    con_id: int, base: str, quote: str, long_name: str, price: float, volatility: float
) -> Instrument:
    pair = f"{base}.{quote}"
    return Instrument(
        con_id=con_id,
        symbol=base,
        sec_type="CASH",
        order_types=order_types_for("CASH"),
        exchange="IDEALPRO",
        currency=quote,
        local_symbol=pair,
        trading_class=pair,
        market_name=pair,
        long_name=long_name,
        valid_exchanges=("IDEALPRO",),
        min_tick=0.005 if quote == "JPY" else 0.00005,
        rth=FX_SESSION,
        eth=FX_SESSION,
        price=price,
        volatility=volatility,
    )


# Option starting prices come from Black-Scholes as of this fixed date, so they are plausible
# relative to the underlying and never depend on when the simulator runs.
_PRICING_DATE = date(2026, 11, 20)
AAPL_OPTION_EXPIRIES = ("20270115", "20270219", "20270319")
AAPL_OPTION_STRIKES = (210.0, 220.0, 230.0, 240.0, 250.0)
OPTION_CON_ID_BASE = 800_000_000


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _option_start(
    spot: float, strike: float, expiry: str, right: str, vol: float
) -> tuple[float, float]:
    """(price, volatility of the option's own price path) from Black-Scholes with zero rates."""
    years = (date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:])) - _PRICING_DATE).days / 365
    d1 = (math.log(spot / strike) + 0.5 * vol * vol * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    if right == "C":
        price = spot * _norm_cdf(d1) - strike * _norm_cdf(d2)
        delta = _norm_cdf(d1)
    else:
        price = strike * _norm_cdf(-d2) - spot * _norm_cdf(-d1)
        delta = _norm_cdf(d1) - 1.0
    price = max(round(price, 2), 0.05)
    # An option's price moves |delta| * S / C times as much as its underlying, in relative terms.
    leverage = abs(delta) * spot / price
    return price, round(min(max(leverage * vol, 0.3), 2.0), 2)


def _aapl_options(under: Instrument) -> list[Instrument]:
    out: list[Instrument] = []
    for expiry in AAPL_OPTION_EXPIRIES:
        for strike in AAPL_OPTION_STRIKES:
            for right in ("C", "P"):
                price, vol = _option_start(under.price, strike, expiry, right, under.volatility)
                out.append(
                    Instrument(
                        con_id=OPTION_CON_ID_BASE + len(out),
                        symbol="AAPL",
                        sec_type="OPT",
                        order_types=order_types_for("OPT"),
                        exchange="SMART",
                        currency="USD",
                        local_symbol=occ_symbol("AAPL", expiry, right, strike),
                        trading_class="AAPL",
                        market_name="AAPL",
                        last_trade_date=expiry,
                        strike=strike,
                        right=right,
                        multiplier="100",
                        long_name=under.long_name,
                        valid_exchanges=_OPTION_EXCHANGES,
                        eth=("0930", "1600"),
                        under_con_id=under.con_id,
                        under_symbol="AAPL",
                        under_sec_type="STK",
                        industry=under.industry,
                        category=under.category,
                        subcategory=under.subcategory,
                        price=price,
                        volatility=vol,
                    )
                )
    return out


def default_instruments() -> list[Instrument]:
    """The built-in universe: 14 US stocks/ETFs, 4 forex pairs, ES, SPX and 30 AAPL options.

    Real IB conIds where known; the future and the options carry invented but fixed ones
    (options are ``OPTION_CON_ID_BASE + i`` in expiry, strike, call-then-put order).
    """
    tech = ("Technology", "Computers", "Computers")
    aapl = _stock(265598, "AAPL", "NASDAQ", "APPLE INC", tech, 230.00, 0.28)
    stocks = [
        aapl,
        _stock(272093, "MSFT", "NASDAQ", "MICROSOFT CORP",
               ("Technology", "Software", "Software"), 420.00, 0.25),
        _stock(3691937, "AMZN", "NASDAQ", "AMAZON.COM INC",
               ("Communications", "Internet", "E-Commerce/Products"), 190.00, 0.32),
        _stock(208813719, "GOOGL", "NASDAQ", "ALPHABET INC-CL A",
               ("Communications", "Internet", "Web Portals/ISP"), 170.00, 0.30),
        _stock(76792991, "TSLA", "NASDAQ", "TESLA INC",
               ("Consumer, Cyclical", "Auto Manufacturers", "Auto-Cars/Light Trucks"),
               250.00, 0.55),
        _stock(4815747, "NVDA", "NASDAQ", "NVIDIA CORP",
               ("Technology", "Semiconductors", "Electronic Compo-Semicon"), 130.00, 0.50),
        _stock(107113386, "META", "NASDAQ", "META PLATFORMS INC-CLASS A",
               ("Communications", "Internet", "Internet Content-Entmnt"), 560.00, 0.38),
        _stock(1520593, "JPM", "NYSE", "JPMORGAN CHASE & CO",
               ("Financial", "Banks", "Money Center Banks"), 220.00, 0.24),
        _stock(13977, "XOM", "NYSE", "EXXON MOBIL CORP",
               ("Energy", "Oil&Gas", "Oil Comp-Integrated"), 115.00, 0.26),
        _stock(8894, "KO", "NYSE", "COCA-COLA CO/THE",
               ("Consumer, Non-cyclical", "Beverages", "Beverages-Non-alcoholic"), 68.00, 0.15),
        _stock(756733, "SPY", "ARCA", "SPDR S&P 500 ETF TRUST",
               ("Funds", "Equity Fund", "Large Cap"), 570.00, 0.16, etf=True),
        _stock(320227571, "QQQ", "NASDAQ", "INVESCO QQQ TRUST SERIES 1",
               ("Funds", "Equity Fund", "Large Cap"), 490.00, 0.20, etf=True),
        _stock(9579970, "IWM", "ARCA", "ISHARES RUSSELL 2000 ETF",
               ("Funds", "Equity Fund", "Small Cap"), 220.00, 0.22, etf=True),
        _stock(15547841, "TLT", "NASDAQ", "ISHARES 20+ YEAR TREASURY BD",
               ("Funds", "Debt Fund", "Government"), 92.00, 0.15, etf=True),
    ]  # fmt: skip
    forex = [
        _forex(12087792, "EUR", "USD", "European Monetary Union Euro", 1.0850, 0.07),
        _forex(12087797, "GBP", "USD", "British pound", 1.2700, 0.08),
        _forex(15016059, "USD", "JPY", "US dollar", 150.00, 0.10),
        _forex(14433401, "AUD", "USD", "Australian dollar", 0.6600, 0.10),
    ]
    es = Instrument(
        con_id=700_000_001,
        symbol="ES",
        sec_type="FUT",
        order_types=order_types_for("FUT"),
        exchange="CME",
        currency="USD",
        local_symbol=future_local_symbol("ES", "20270319"),
        trading_class="ES",
        market_name="ES",
        last_trade_date="20270319",
        multiplier="50",
        min_tick=0.25,
        long_name="E-mini S&P 500",
        valid_exchanges=("CME", "QBALGO"),
        time_zone="US/Central",
        rth=("0830", "1500"),
        eth=("1700", "1600"),  # Globex: Sunday to Friday, a one-hour break each day
        under_con_id=11004968,
        under_symbol="ES",
        under_sec_type="IND",
        price=5800.00,
        volatility=0.18,
    )
    spx = Instrument(
        con_id=416904,
        symbol="SPX",
        sec_type="IND",
        exchange="CBOE",
        currency="USD",
        local_symbol="SPX",
        market_name="SPX",
        long_name="S&P 500 Stock Index",
        valid_exchanges=("CBOE",),
        order_types=(),
        time_zone="US/Central",
        rth=("0830", "1500"),
        eth=("0830", "1515"),
        price=5730.00,
        volatility=0.17,
    )
    return [*stocks, *forex, es, spx, *_aapl_options(aapl)]
