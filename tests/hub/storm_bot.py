"""A trading bot in its own process, for kill -9 tests:
``python storm_bot.py URL HUB NAME N LEDGER``.

It opens its fills stream, places ``N`` market orders of 1 share with the keys ``storm-0`` …
(retrying a key after a lost link, as a real bot would), and books each fill once in its
ledger, a file of execution ids: the stream delivers a fill again after a restart when the bot
died between taking it and its acknowledgement reaching the server, so a bot keys what it books
by execution id. It prints one line per event: ``ready``, ``placed <i> <order id>
<duplicate>``, ``fill <exec id> <order id>`` (booked), ``again <exec id>`` (delivered again,
already booked), ``placed-all``. It keeps reading fills until its stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import ibflow
from ibflow.hub import RemoteSession


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def place_all(session: RemoteSession, count: int) -> None:
    for i in range(count):
        while True:
            try:
                trade = await session.place(
                    ibflow.Stock("AAPL"), ibflow.MarketOrder("BUY", 1), key=f"storm-{i}", timeout=3
                )
                break
            except (ibflow.ConnectionLost, ibflow.RequestTimeout):
                await asyncio.sleep(0.2)  # the hub is away (failing over): same key again
        say(f"placed {i} {trade.order_id} {int(trade.duplicate)}")
    say("placed-all")


async def main(url: str, hub: str, name: str, count: int, ledger: Path, booked: set[str]) -> None:
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    async with (
        RemoteSession(url, hub=hub, name=name, timeout=5) as session,
        session.fills_stream() as fills,
    ):
        say("ready")

        async def read_fills() -> None:
            with ledger.open("a") as book:
                async for fill in fills:
                    if fill.exec_id in booked:
                        say(f"again {fill.exec_id}")
                        continue
                    book.write(fill.exec_id + "\n")
                    book.flush()  # in the OS's hands: it survives kill -9
                    booked.add(fill.exec_id)
                    say(f"fill {fill.exec_id} {fill.order_id}")

        reader = asyncio.ensure_future(read_fills())
        placer = asyncio.ensure_future(place_all(session, count))
        await stdin_closed
        for task in (reader, placer):
            task.cancel()
        await asyncio.gather(reader, placer, return_exceptions=True)


if __name__ == "__main__":
    book = Path(sys.argv[5])
    before = set(book.read_text().split()) if book.exists() else set()
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), book, before))
