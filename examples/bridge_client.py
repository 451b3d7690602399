"""Use the ibflow bridge over plain HTTP: read the positions, then place one order, safely.

Start the bridge on the embedded simulator in one terminal, then run this in another:

    ibflow bridge --sim
    python examples/bridge_client.py [BASE_URL]    # default http://127.0.0.1:8000

Any HTTP client works the same way; this one uses httpx. The order carries an Idempotency-Key:
sending it again, as a client does after a timeout, returns the first answer and never places a
second order.
"""

from __future__ import annotations

import os
import sys
import uuid

import httpx


def main(base_url: str) -> int:
    # Every route lives under /api/v1 (the old paths answer 308 to there).
    with httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", timeout=30) as client:
        health = client.get("/health").json()
        print(f"bridge at {base_url}: {health['state']}, accounts {health['accounts']}")

        for position in client.get("/positions").raise_for_status().json():
            name = position["contract"]["display_name"]
            print(f"  {name:24} {position['quantity']:>8g} @ {position['avg_cost']:.2f}")

        order = {
            "contract": {"symbol": "AAPL"},
            "order": {"action": "BUY", "quantity": 10, "type": "MKT"},
        }
        key = str(uuid.uuid4())  # one per order; reuse it only to retry this same order
        placed = client.post(
            "/orders", json=order, headers={"Idempotency-Key": key}, params={"wait": 10}
        )
        if placed.is_error:
            error = placed.json()
            print(f"refused: {error['error']} (IB code {error['code']}): {error['message']}")
            return 1
        trade = placed.json()
        print(
            f"order {trade['order_id']}: {trade['status']}, {trade['filled']:g} filled "
            f"@ {trade['avg_fill_price']}"
        )

        # A retry with the same key (after a timeout, say) answers without placing again.
        retry = client.post("/orders", json=order, headers={"Idempotency-Key": key})
        print(
            f"retried with the same key: order {retry.json()['order_id']}, "
            f"replayed={retry.headers['Idempotent-Replayed']}"
        )
    return 0


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("IBFLOW_BRIDGE_URL")
    sys.exit(main(url or "http://127.0.0.1:8000"))
