"""``ibflow doctor``: walk the connection chain and say which link is broken and how to fix it.

"It does not connect" has a dozen causes (TWS not running, API disabled, untrusted IP, a relay
whose gateway is down, a taken client id, a pending login, no market-data permission), and
each one needs a different fix. The doctor runs a real session through each stage, marks every
step ok / warn / failed with the fix, and exits non-zero when something failed. Every probe
speaks the full API handshake and leaves with a clean disconnect, never a bare
connect-and-drop, which some TWS builds handle badly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ibflow import ConnectionState, Notice, Session

from ._config import port_hint, resolve_config
from ._error_codes import lookup
from ._errors import (
    ClientIdInUse,
    ConfigError,
    ConnectionClosedEarly,
    ConnectRefused,
    ConnectTimeout,
    HandshakeTimeout,
    IBFlowError,
    SyncTimeout,
)
from ._log import mask_account

__all__ = ["DoctorReport", "Step", "main", "run_checks"]

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
