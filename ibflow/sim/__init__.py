"""``ibflow.sim``: a TWS / IB Gateway simulator that speaks the real socket protocol.

Point any TWS API client at it (ib_async, the official ``ibapi``, clients in other languages):
it answers the handshake at server version 178, the start-up sync, account and position
requests, contract details, market data, history, option chains and computations, market
depth, historical ticks, symbol search, scanners, and orders with matching and fills, and it
enforces IB's limits. It is the backbone of ibflow's own tests and the engine behind
``ibflow demo``; it never imports ibflow's client side.

    async with Simulator(port=0) as sim:
        ib = ib_async.IB()
        await ib.connectAsync(sim.host, sim.port, clientId=1)
"""

from ._model import Instrument, SimAccount, SimBar, SimExecution, SimOrder, SimPosition
from ._scenario import Scenario, ScenarioError
from ._server import ClientInfo, Simulator

__all__ = [
    "ClientInfo",
    "Instrument",
    "Scenario",
    "ScenarioError",
    "SimAccount",
    "SimBar",
    "SimExecution",
    "SimOrder",
    "SimPosition",
    "Simulator",
]
