"""``ibflow doctor``: walk the connection chain and say which link is broken and how to fix it.

"It does not connect" has a dozen causes (TWS not running, API disabled, untrusted IP, a relay
whose gateway is down, a taken client id, a pending login, no market-data permission), and
each one needs a different fix. The doctor runs a real session through each stage, marks every
step ok / warn / failed with the fix, and exits non-zero when something failed. Every probe
speaks the full API handshake and leaves with a clean disconnect, never a bare
connect-and-drop, which some TWS builds handle badly.

``ibflow doctor --hub nats://…`` diagnoses a hub instead: it asks the hub (``--name``) or every
hub heard on the NATS server for its statistics and prints them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ibflow import ConnectionState, Notice, Session

from ._config import port_hint, resolve_config
from ._error_codes import lookup
from ._errors import (
    ClientIdInUse,
    ConfigError,
    ConnectError,
    ConnectionClosedEarly,
    ConnectRefused,
    ConnectTimeout,
    HandshakeTimeout,
    IBFlowError,
    SyncTimeout,
)
from ._log import mask_account

if TYPE_CHECKING:
    from .hub._cli import NatsCredentials

__all__ = ["DoctorReport", "Step", "hub_main", "main", "run_checks"]

QUOTE_SYMBOL = "SPY"
_FARM_OK = {2104, 2106, 2158}
_FARM_BROKEN = {2103, 2105, 2157}
_DATA_TYPES = {1: "live", 2: "frozen", 3: "delayed", 4: "delayed frozen"}
_MARKS = {"ok": "ok", "warn": "warn", "failed": "FAIL", "skipped": "skip"}


@dataclass(slots=True)
class Step:
    """One check: its outcome, what was seen, and what to do when it failed."""

    name: str
    title: str
    status: str = "skipped"  # ok | warn | failed | skipped
    detail: str = ""
    fix: str = ""

    def set(self, status: str, detail: str, fix: str = "") -> None:
        self.status, self.detail, self.fix = status, detail, fix


@dataclass(slots=True)
class DoctorReport:
    """Every step, in order; ``ok`` is False when any step failed."""

    host: str
    port: int
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.status != "failed" for step in self.steps)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "host": self.host,
            "port": self.port,
            "steps": [asdict(step) for step in self.steps],
        }


def _new_steps() -> dict[str, Step]:
    steps = [
        Step("config", "settings resolved"),
        Step("port", "port open"),
        Step("handshake", "API handshake answered"),
        Step("client_id", "client id accepted"),
        Step("accounts", "managed accounts"),
        Step("account_data", "account data arriving"),
        Step("farms", "data-farm notices"),
        Step("quote", f"quote for {QUOTE_SYMBOL}"),
    ]
    return {step.name: step for step in steps}


async def run_checks(
    host: str | None,
    port: int | None,
    client_id: int | None,
    *,
    timeout: float = 5.0,
) -> DoctorReport:
    """Run every check against TWS/Gateway and return the report (no printing)."""
    steps = _new_steps()
    try:
        cfg = resolve_config(host, port, client_id)
    except ConfigError as exc:
        steps["config"].set("failed", str(exc), f"fix or unset {exc.variable}")
        return DoctorReport(host or "?", port or 0, list(steps.values()))
    report = DoctorReport(cfg.host, cfg.port, list(steps.values()))
    hint = port_hint(cfg.port)
    steps["config"].set(
        "ok",
        f"{cfg.host}:{cfg.port}{f' ({hint})' if hint else ''}; host from "
        f"{cfg.sources['host']}, port from {cfg.sources['port']}, client id from "
        f"{cfg.sources['client_id']}",
    )

    session = Session(
        cfg.host,
        cfg.port,
        cfg.client_id,
        cfg.account,
        timeout=timeout,
        reconnect=None,
        heartbeat_interval=None,
    )
    notices: list[Notice] = []
    feed = session.notices()
    session._core.stage_listener = _stage_recorder(steps, session)

    async def collect() -> None:
        async for notice in feed:
            notices.append(notice)

    collector = asyncio.create_task(collect())
    try:
        try:
            await session.connect()
        except IBFlowError as exc:
            _record_failure(steps, exc)
            return report
        _check_accounts(steps, session)
        _check_account_data(steps, session)
        # Farm notices follow the handshake at once; give late ones a moment.
        await asyncio.sleep(0.1)
        _check_farms(steps, notices)
        await _check_quote(steps, session, timeout)
        return report
    finally:
        await session.aclose()
        await feed.aclose()
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)


def _stage_recorder(steps: dict[str, Step], session: Session) -> Callable[[str, str], None]:
    def on_stage(stage: str, detail: str) -> None:
        if stage == "tcp":
            steps["port"].set("ok", f"TCP connection to {detail} accepted")
        elif stage == "handshake":
            steps["handshake"].set("ok", f"server version {detail}")
        elif stage == "api":
            steps["client_id"].set("ok", f"client id {session.client_id} accepted")
            steps["accounts"].set("ok", detail or "(none)")

    return on_stage


def _record_failure(steps: dict[str, Step], exc: IBFlowError) -> None:
    message = str(exc)
    if isinstance(exc, ConnectRefused | ConnectTimeout):
        steps["port"].set(
            "failed",
            message,
            "start TWS or IB Gateway and enable the API; paper ports 7497 (TWS) / 4002 "
            "(Gateway), live 7496 (TWS) / 4001 (Gateway)",
        )
    elif isinstance(exc, HandshakeTimeout):
        steps["handshake"].set(
            "failed",
            message,
            "enable 'ActiveX and Socket Clients', add this host to the trusted IPs, and accept "
            "the incoming-connection prompt in TWS",
        )
    elif isinstance(exc, ClientIdInUse):
        steps["client_id"].set(
            "failed", message, "use another --client-id, or leave it unset for a fresh one"
        )
    elif isinstance(exc, ConnectionClosedEarly):
        if steps["handshake"].status != "ok":
            steps["handshake"].set(
                "failed",
                message,
                "the port accepts connections but nothing answers behind it: start or restart "
                "the gateway behind the relay/proxy",
            )
        else:
            steps["client_id"].set(
                "failed", message, "check TWS's API settings and log; at most 32 clients"
            )
    elif isinstance(exc, SyncTimeout):
        if exc.part == "API start":
            steps["client_id"].set(
                "failed",
                message,
                "finish the TWS/Gateway login (2FA) and dismiss any dialog, then retry",
            )
        else:
            steps["account_data"].set(
                "failed", message, f"TWS did not answer '{exc.part}'; restart TWS or retry later"
            )
    elif isinstance(exc, ConfigError):
        steps["accounts"].set("failed", message, f"fix {exc.variable}")
    else:
        steps["port"].set("failed", message, "see the message")


def _check_accounts(steps: dict[str, Step], session: Session) -> None:
    accounts = ", ".join(mask_account(a) for a in session.accounts)
    kind = "paper" if session.is_paper else "LIVE"
    steps["accounts"].set("ok", f"{accounts} ({kind})")


def _check_account_data(steps: dict[str, Step], session: Session) -> None:
    values = session._core.adapter.account_value_count()
    positions = session._core.adapter.position_count()
    detail = f"{values} account values, {positions} positions"
    if values == 0 and len(session.accounts) > 1:
        steps["account_data"].set("ok", detail + " (several accounts: pass --account to load one)")
    elif values == 0:
        steps["account_data"].set("warn", detail, "TWS sent no account values; check the account")
    else:
        steps["account_data"].set("ok", detail)


def _check_farms(steps: dict[str, Step], notices: list[Notice]) -> None:
    seen = {n.code for n in notices}
    ok = sorted(seen & _FARM_OK)
    broken = sorted(seen & _FARM_BROKEN)
    if broken:
        steps["farms"].set(
            "warn",
            "broken: " + ", ".join(f"{c} ({lookup(c).summary})" for c in broken),
            "TWS reconnects farms by itself; if it persists check IB's system status page",
        )
    elif ok:
        steps["farms"].set("ok", ", ".join(f"{c} ({lookup(c).summary})" for c in ok))
    else:
        steps["farms"].set(
            "warn",
            "no data-farm notices (2104/2106/2158) arrived",
            "normal for some gateways; otherwise check TWS's connection to IB",
        )


async def _check_quote(steps: dict[str, Step], session: Session, timeout: float) -> None:
    step = steps["quote"]
    if session.state is not ConnectionState.READY:
        step.set("failed", f"session is {session.state.name}", "rerun the doctor")
        return
    try:
        probe = await session._core.adapter.probe_quote(QUOTE_SYMBOL, timeout)
    except IBFlowError as exc:
        step.set("failed", str(exc), "rerun the doctor")
        return
    if probe.error_code is not None:
        row = lookup(probe.error_code)
        step.set(
            "failed",
            f"IB error {probe.error_code}: {probe.error_message}",
            row.hint or "check market-data permissions for US stocks",
        )
        return
    prices = [
        f"{name} {value:g}"
        for name, value in (("bid", probe.bid), ("ask", probe.ask), ("last", probe.last))
        if value is not None
    ]
    if not prices:
        step.set(
            "warn",
            f"no price within {timeout} s",
            "the market may be closed, or request delayed data",
        )
        return
    kind = _DATA_TYPES.get(probe.data_type or 1, "live")
    step.set("ok", f"{kind}: {', '.join(prices)}")


def _print_plain(report: DoctorReport) -> None:
    print(f"ibflow doctor: {report.host}:{report.port}")
    for step in report.steps:
        print(f"  [{_MARKS[step.status]:>4}] {step.title}: {step.detail}".rstrip(": "))
        if step.fix and step.status in ("failed", "warn"):
            print(f"         fix: {step.fix}")
    print("all checks passed" if report.ok else "some checks failed")


def _print_rich(report: DoctorReport) -> bool:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return False
    styles = {"ok": "green", "warn": "yellow", "failed": "bold red", "skipped": "dim"}
    table = Table(title=f"ibflow doctor: {report.host}:{report.port}", show_lines=False)
    table.add_column("step")
    table.add_column("status")
    table.add_column("detail / fix", overflow="fold")
    for step in report.steps:
        text = step.detail
        if step.fix and step.status in ("failed", "warn"):
            text += f"\nfix: {step.fix}"
        table.add_row(step.title, f"[{styles[step.status]}]{_MARKS[step.status]}[/]", text)
    console = Console()
    console.print(table)
    console.print("[green]all checks passed[/]" if report.ok else "[red]some checks failed[/]")
    return True


def main(host: str | None, port: int | None, client_id: int | None, as_json: bool) -> int:
    """Run the doctor and print the result; returns the process exit code (0 = all passed).

    Runs its own event loop, so call it from synchronous code (the CLI), not from a
    running loop; async callers use :func:`run_checks`.
    """
    report = asyncio.run(run_checks(host, port, client_id))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not _print_rich(report):
        _print_plain(report)
    return 0 if report.ok else 1


# -- a hub ---------------------------------------------------------------------------------------


def hub_main(url: str | None, name: str | None, credentials: NatsCredentials, as_json: bool) -> int:
    """``ibflow doctor --hub``: print a hub's statistics; the exit code (see ``docs/cli.md``).

    0: every hub that answered serves a READY session; 1: the NATS server is unreachable or
    refuses the credentials, or a hub's session is not READY; 2: a bad setting; 3: no hub
    answered; 4: the hub extra is not installed.
    """
    try:
        from .hub._access import resolve_access
        from .hub._stats import fetch_stats
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("nats"):
            raise
        _fail('doctor --hub needs the hub extra: pip install "ibflow[hub]"')
        return 4
    # One-shot: the NATS client's retries are noise next to the one error line below.
    logging.getLogger("ibflow.hub").setLevel(logging.ERROR)
    try:
        access = resolve_access(url, **credentials)
        reports = asyncio.run(fetch_stats(access, name))
    except ConnectError as exc:
        _fail(str(exc))
        return 1
    except IBFlowError as exc:
        _fail(str(exc))
        return 2
    if not reports:
        if name is not None:
            _fail(
                f"no hub named {name!r} answers on {access.shown}: start one with "
                f"`ibflow hub --nats {access.shown} --name {name}`, or check the name"
            )
        else:
            _fail(f"no hub published statistics on {access.shown} within 2.5 s")
        return 3
    if as_json:
        print(json.dumps(reports[0] if name is not None else reports, indent=2))
    else:
        for stats in reports:
            _print_hub(stats)
    ready = all(stats.get("state") == ConnectionState.READY.value for stats in reports)
    return 0 if ready else 1


def _fail(message: str) -> None:
    print(f"ibflow: error: {message}", file=sys.stderr, flush=True)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _print_hub(stats: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    pacing = stats["pacing"]
    tws = stats["tws"]
    state = stats["state"]
    style = "green" if state == ConnectionState.READY.value else "bold red"
    overview = Table(title=f"ibflow hub {stats['hub']}", show_header=False)
    overview.add_column("what")
    overview.add_column("value", overflow="fold")
    accounts = ", ".join(mask_account(a) for a in tws["accounts"])
    for what, value in (
        ("session", f"[{style}]{state}[/]"),
        ("up", f"{_ago(stats['uptime'])} (since {stats['started_at']})"),
        ("NATS", stats["nats"]),
        ("TWS", f"client {tws['client_id']}, {accounts} ({'paper' if tws['paper'] else 'LIVE'})"),
        ("remote sessions", f"{stats['consumers']} connected, {len(stats['remotes'])} known"),
        (
            "market data",
            f"{stats['subscriptions']} instruments at TWS for {stats['leases']} leases; lines "
            f"{stats['lines_used']}/{stats['lines_limit']}"
            # a hub of an earlier ibflow reports no tick-by-tick figures
            + (
                f"; tick-by-tick {stats['tick_by_tick_used']}/{stats['tick_by_tick_limit']}"
                if "tick_by_tick_used" in stats
                else ""
            ),
        ),
        (
            "history pacing",
            f"{pacing['historical_requests']} requests, {pacing['waits']} waited "
            f"{pacing['waited']:.2f} s, {pacing['violations']} violations, "
            f"{pacing['open_requests']} open",
        ),
        ("orders relayed", str(stats["orders_relayed"])),
        ("calls", f"{stats['requests']} ({stats['failed_requests']} answered with an error)"),
    ):
        overview.add_row(what, value)
    console = Console()
    console.print(overview)
    if stats["instruments"]:
        lines = Table(title="instruments at TWS")
        for column in ("symbol", "con_id", "leases", "consumers"):
            lines.add_column(column, overflow="fold")
        for item in stats["instruments"]:
            lines.add_row(
                item["symbol"],
                str(item["con_id"]),
                str(item["leases"]),
                ", ".join(item["consumers"]),
            )
        console.print(lines)
    if stats["remotes"]:
        remotes = Table(title="remote sessions")
        for column in ("name", "connected", "last seen", "calls", "leases"):
            remotes.add_column(column)
        for remote in stats["remotes"]:
            remotes.add_row(
                remote["name"],
                "[green]yes[/]" if remote["connected"] else "[yellow]no[/]",
                f"{_ago(remote['last_seen'])} ago",
                str(remote["requests"]),
                str(remote["leases"]),
            )
        console.print(remotes)
