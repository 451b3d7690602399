"""Every notebook in ``notebooks/`` runs top to bottom against the embedded simulator.

Notebooks use Jupyter's top-level ``await`` (no nest_asyncio, no loop patching). The runner
executes each code cell with IPython's own ``run_cell_async`` inside one running loop, as
Jupyter's kernel does, sharing one namespace across cells. What the cells display (rich
outputs, the last expression's value, updates of a display) is captured, and matplotlib runs
on the non-interactive Agg backend: at the end of each cell the open pyplot figures are
rendered to PNG and closed, which is what Jupyter's inline backend does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
RAW = {path: json.loads(path.read_text()) for path in NOTEBOOKS}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Output:
    """One thing a cell showed: its MIME bundle, and whether it replaced an earlier display."""

    cell: int
    data: dict[str, Any]
    display_id: str | None = None
    update: bool = False


@dataclass
class Run:
    outputs: list[Output] = field(default_factory=list)
    cell: int = 0

    def images(self) -> list[Output]:
        return [o for o in self.outputs if "image/png" in o.data]

    def png(self, output: Output) -> bytes:
        data = output.data["image/png"]
        return data if isinstance(data, bytes) else base64.b64decode(data)


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One IPython shell for the module, its profile in a temporary directory, on Agg."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        patch.setenv("MPLBACKEND", "Agg")
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        yield InteractiveShell.instance(config=config)


def _capture(shell: Any, run: Run) -> None:
    """Route the shell's displays into ``run`` and render figures as the inline backend does."""
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.pylabtools import select_figure_formats

    class Capture(DisplayPublisher):  # type: ignore[misc]
        def publish(  # type: ignore[override]
            self,
            data: dict[str, Any],
            metadata: object = None,
            source: object = None,
            *,
            transient: dict[str, Any] | None = None,
            update: bool = False,
            **_: object,
        ) -> None:
            display_id = (transient or {}).get("display_id")
            run.outputs.append(Output(run.cell, data, display_id, update))

        def clear_output(self, wait: bool = False) -> None:
            run.outputs = [o for o in run.outputs if o.cell != run.cell]

    shell.display_pub = Capture(shell=shell)
    select_figure_formats(shell, {"png"})


def _flush_figures(shell: Any) -> None:
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for number in plt.get_fignums():
        shell.display_pub.publish(shell.display_formatter.format(plt.figure(number))[0])
    plt.close("all")


async def _execute(shell: Any, path: Path) -> Run:
    run = Run()
    shell.reset(new_session=False)
    _capture(shell, run)
    for index, cell in enumerate(RAW[path]["cells"]):
        if cell["cell_type"] != "code":
            continue
        run.cell = index
        source = "".join(cell["source"])
        result = await shell.run_cell_async(
            source,
            store_history=False,
            transformed_cell=shell.transform_cell(source),
            preprocessing_exc_tuple=None,
        )
        if not result.success:
            error = result.error_before_exec or result.error_in_exec
            raise AssertionError(f"{path.name} cell {index} failed: {error!r}") from error
        if result.result is not None:  # the cell's value, shown as Out[n]
            run.outputs.append(Output(index, shell.display_formatter.format(result.result)[0]))
        _flush_figures(shell)
    return run


def _index(path: Path, cell_id: str) -> int:
    return [cell["id"] for cell in RAW[path]["cells"]].index(cell_id)


def test_there_are_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_history_analysis.ipynb",
        "03_orders_and_streams.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_clean(path: Path) -> None:
    raw = RAW[path]
    assert (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5)
    nbformat.validate(nbformat.reads(path.read_text(), as_version=nbformat.NO_CONVERT))
    ids = [cell.get("id") for cell in raw["cells"]]
    assert all(ids), "every cell has an id"
    assert len(set(ids)) == len(ids)
    code = [cell for cell in raw["cells"] if cell["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [], f"cell {cell['id']} is stored with outputs"
        assert cell["execution_count"] is None
    sources = "".join("".join(cell["source"]) for cell in code)
    for patch in ("nest_asyncio", "startLoop", "run_until_complete", "asyncio.run("):
        assert patch not in sources


async def test_quickstart_streams_trades_and_reads_history(shell: Any) -> None:
    run = await _execute(shell, NOTEBOOKS[0])
    text = "\n".join(o.data.get("text/plain", "") for o in run.outputs)
    assert "<ConnectionState.READY: 'ready'>" in text
    ns = shell.user_ns
    assert len(ns["quotes_seen"]) == 5
    assert ns["quotes_seen"][-1].bid < ns["quotes_seen"][-1].ask
    assert ns["trade"].status.value == "Filled"
    kinds = [event.kind.value for event in ns["trade"].history]
    assert kinds.index("modified") < kinds.index("fill")
    assert len(ns["bars"]) > 10
    [frame] = [o for o in run.outputs if o.cell == _index(NOTEBOOKS[0], "history")]
    assert "text/html" in frame.data  # the history frame, shown as a table


async def test_history_analysis_charts_a_multi_day_download(shell: Any) -> None:
    run = await _execute(shell, NOTEBOOKS[1])
    ns = shell.user_ns
    frame = ns["df"]
    assert frame.index.normalize().nunique() >= 5  # several trading days
    assert ns["progress_seen"][-1].done == ns["progress_seen"][-1].total > 1  # several requests
    assert len(ns["daily"]) >= 5
    [chart] = run.images()
    assert run.png(chart).startswith(PNG_MAGIC)


async def test_orders_and_streams_updates_a_live_chart(shell: Any) -> None:
    run = await _execute(shell, NOTEBOOKS[2])
    ns = shell.user_ns
    statuses = [leg.status.value for leg in ns["trade"].trades]
    assert statuses == ["Filled", "Cancelled", "Cancelled"]
    kinds = {(event.order_id, event.kind.value) for event in ns["events_seen"]}
    assert (ns["trade"].parent.order_id, "fill") in kinds
    assert ns["live_count"] >= 5
    charts = run.images()
    updates = [o for o in charts if o.update]
    assert len(charts) >= 4
    assert {o.display_id for o in charts} == {charts[0].display_id} != {None}
    assert len(updates) == len(charts) - 1  # one chart, drawn once and then updated in place
