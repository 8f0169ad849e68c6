"""The VM table's rebuild (worker side, mode ``table``; no lab): the time from ``show()`` with
a new filter until the next frame, for N rows, with vditui's table and, side by side in the same
process, with DataTable's own ``_update_dimensions`` (which measures every new cell to size
auto-width columns; all of vditui's columns have fixed widths).

The rows are made up (a drift on every 7th), so the figure is the widget's alone.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from benchmarks.common import ms
from vditui.core.models import Domain, Drift, DriftKind, Severity, VdiVm, VirtState, VmRow
from vditui.ui.view import Filter
from vditui.ui.widgets.vm_table import VmTable


def make_rows(n: int) -> list[VmRow]:
    out = []
    for i in range(n):
        u = str(uuid.UUID(int=i + 1))
        vm = VdiVm(u, f"vm-{i:05d}", 1, 2, 2048, f"h{i % 50}")
        off = i % 7 == 0
        dom = Domain(u, vm.name, VirtState.SHUTOFF if off else VirtState.RUNNING, 2, 2048 * 1024)
        drifts = (Drift(DriftKind.STATE, Severity.CRITICAL, u, vm.name, vm.host_id,
                        "platform says running, libvirt has it shut off", "running",
                        "shutoff"),) if off else ()
        out.append(VmRow(u, vm.name, vm, dom, vm.host_id, drifts))
    return out


class _MeasuringTable(VmTable):
    """The same table with DataTable's per-cell measuring put back: the baseline."""

    def _update_dimensions(self, new_rows: Any) -> None:
        DataTable._update_dimensions(self, new_rows)


class _TableApp(App[None]):
    def __init__(self, cls: type[VmTable]) -> None:
        super().__init__()
        self.cls = cls

    def compose(self) -> ComposeResult:
        yield self.cls(id="vms")


async def _toggle(cls: type[VmTable], rows: list[VmRow], reps: int) -> list[float]:
    """Drift only on, then off again, ``reps`` times: each time from show() to the next frame
    after the table settled (Textual's idle pass included)."""
    names = {f"h{i}": f"host-{i}" for i in range(50)}
    app = _TableApp(cls)
    times: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(VmTable)
        table.show(rows, Filter(), {}, names, {})
        await pilot.pause()
        for _ in range(reps):
            for flt in (Filter(drift_only=True), Filter()):
                t0 = time.perf_counter()
                table.show(rows, flt, {}, names, {})
                await pilot.pause()
                times.append(time.perf_counter() - t0)
    return times


def run_table(cfg: dict[str, Any]) -> dict[str, Any]:
    rows = make_rows(cfg["rows"])
    out: dict[str, Any] = {"rows": cfg["rows"], "reps": cfg["reps"]}
    for label, cls in (("vditui", VmTable), ("measuring", _MeasuringTable)):
        times = asyncio.run(_toggle(cls, rows, cfg["reps"]))
        out[label] = {"ms_median": ms(statistics.median(times)), "ms_max": ms(max(times))}
    out["ratio"] = round(out["measuring"]["ms_median"] / out["vditui"]["ms_median"], 1)
    return out
