// A plain @stoqey/ib client against the simulator: what a Node user would do first.
const { IBApi, EventName, SecType } = require("@stoqey/ib");
const port = Number(process.argv[2]);
const ib = new IBApi({ host: "127.0.0.1", port, clientId: 9 });
const out = { details: 0, positions: 0, prices: 0, filled: 0, errors: [] };
const aapl = { symbol: "AAPL", secType: SecType.STK, exchange: "SMART", currency: "USD" };
const done = () => { console.log(JSON.stringify(out)); ib.disconnect(); process.exit(0); };
setTimeout(() => { out.errors.push("timeout"); done(); }, 15000);
ib.on(EventName.error, (err, code, reqId) => { if (code < 2100 || code > 2200) out.errors.push([code, String(err && err.message || err)]); });
ib.on(EventName.currentTime, (t) => { out.time = t; });
ib.on(EventName.contractDetails, () => { out.details += 1; });
ib.on(EventName.contractDetailsEnd, () => { ib.reqMktData(2, aapl, "", false, false); });
ib.on(EventName.position, () => { out.positions += 1; });
ib.on(EventName.tickPrice, (reqId, type, price) => { if (price > 0) out.prices += 1; });
ib.on(EventName.orderStatus, (id, status, filled) => { if (status === "Filled") { out.filled = filled; done(); } });
ib.on(EventName.nextValidId, (orderId) => {
  out.serverVersion = ib.serverVersion;
  ib.reqCurrentTime();
  ib.reqPositions();
  ib.reqContractDetails(1, aapl);
  setTimeout(() => ib.placeOrder(orderId, aapl, { action: "BUY", orderType: "MKT", totalQuantity: 3, transmit: true }), 500);
});
ib.connect();
