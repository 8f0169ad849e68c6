"""The TUI's cells and labels from made-up comparisons (no lab): the VM table's cells, the diff
panel and the host tree's labels use vditui.core.present, so they agree with the report.

The memory cases are the regression for ``2048≠2048``: libvirt at 2 GiB + 512 KiB was floored
to 2048 MiB in the table and the diff panel, next to the platform's 2048.
"""

from __future__ import annotations

import io

from rich.console import Console, RenderableType
from rich.text import Text

from vditui.core.drift import DriftStatus
from vditui.core.models import (
    Comparison,
    ConnState,
    Domain,
    HostRow,
    HostStatus,
    HostView,
    VdiHost,
    VdiInventory,
    VdiVm,
    VdiVmStatus,
    VirtState,
)
from vditui.core.reconcile import reconcile
from vditui.ui.view import COLUMNS, host_label, vm_cells
from vditui.ui.widgets.diff_panel import group_diff, vm_diff

NAMES = {"h1": "hv-1"}
UUID = "6f1c2a52-0c39-4d7e-9c0e-6b2f4f1d2a01"


def half_mib_comparison() -> Comparison:
    """One VM whose memory differs by 0.5 MiB (libvirt: 2 GiB + 512 KiB), through reconcile."""
    h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "Lab")
    vm = VdiVm(UUID, "desk-01", VdiVmStatus.RUNNING, 2, 2048, "h1")
    dom = Domain(UUID, "desk-01", VirtState.RUNNING, 2, 2048 * 1024 + 512)
    view = HostView("h1", "qemu+tcp://10.0.0.1/system", ConnState.CONNECTED, (dom,),
                    read_at=1.0)
    return reconcile(VdiInventory((h,), (vm,)), {"h1": view})


def plain(cell: Text | str) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def text_of(renderable: RenderableType) -> str:
    console = Console(width=120, record=True, no_color=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def cells_by_column(cells: tuple[Text | str, ...]) -> dict[str, str]:
    return {key: plain(c) for (key, _label, _w), c in zip(COLUMNS, cells, strict=True)}


def test_table_memory_cell_shows_two_different_figures() -> None:
    (row,) = half_mib_comparison().vms
    cells = cells_by_column(vm_cells(row, NAMES, {}))
    assert cells["mem"] == "2048≠2048.5"  # was "2048≠2048"
    assert cells["drift"] == "! memory"


def test_diff_panel_memory_line_shows_two_different_figures() -> None:
    (row,) = half_mib_comparison().vms
    text = text_of(vm_diff(row, NAMES, {}))
    (line,) = [ln for ln in text.splitlines() if ln.startswith("memory MiB")]
    assert line.split()[2:] == ["2048", "2048.5", "≠"], line  # was 2048, 2048
    assert "! memory [warning]: platform says 2048 MiB, libvirt has 2048.5 MiB" in text


def test_drift_kinds_read_as_words_in_the_table_and_the_diff_panel() -> None:
    h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "Lab")
    vm = VdiVm(UUID, "desk-01", VdiVmStatus.RUNNING, 2, 2048, "h1")
    view = HostView("h1", "qemu:///system", ConnState.CONNECTED, (), read_at=1.0)
    cmp = reconcile(VdiInventory((h,), (vm,)), {"h1": view})
    (row,) = cmp.vms
    (drift,) = row.drifts
    assert plain(vm_cells(row, NAMES, {})[1]) == "! only in VDI"
    pending = {drift.ident: DriftStatus.PENDING}
    assert cells_by_column(vm_cells(row, NAMES, pending))["drift"] == "… only in VDI"
    assert "… only in VDI [pending]:" in text_of(vm_diff(row, NAMES, pending))
    group = text_of(group_diff("all hosts", list(cmp.hosts), list(cmp.vms), {}, 0.0))
    assert "only in VDI (1)" in group and "only_in_vdi" not in group


def _stale_row() -> HostRow:
    h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "Lab")
    dom = Domain(UUID, "desk-01", VirtState.RUNNING, 2, 2048 * 1024)
    return HostRow(h, HostView("h1", "qemu:///system", ConnState.FAILED, (dom,),
                               read_at=1_000.0), vdi_vms=1, virt_vms=1)


def test_data_age_is_counted_on_the_clock_given() -> None:
    """The age used to come from time.time() whatever the app's clock said."""
    row = _stale_row()
    assert " data 3 min old" in host_label(row, 0, 0.0, wall_now=1_185.0).plain
    assert " data 42 s old" in host_label(row, 0, 0.0, wall_now=1_042.0).plain
    text = text_of(group_diff("hv-1", [row], [], {}, 1_042.0))
    assert "libvirt data is 42 s old (stale)" in text


def test_host_label_names_the_transport_as_the_probe_does() -> None:
    row = _stale_row()
    assert row.view is not None
    connected = HostRow(row.host, HostView("h1", "qemu:///system", ConnState.CONNECTED, ()))
    assert host_label(connected, 0, 0.0).plain.startswith("hv-1 ● local ")  # was "unix"


def test_every_cell_lands_in_its_column() -> None:
    """vm_cells builds its tuple in COLUMNS order by hand (it is hot): one value per column."""
    h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "Lab")
    vm = VdiVm(UUID, "desk-01", VdiVmStatus.RUNNING, 2, 4096, "h1")
    dom = Domain(UUID, "desk-01", VirtState.PAUSED, 4, 4096 * 1024)
    view = HostView("h1", "qemu:///system", ConnState.CONNECTED, (dom,), read_at=1.0)
    (row,) = reconcile(VdiInventory((h,), (vm,)), {"h1": view}).vms
    assert cells_by_column(vm_cells(row, NAMES, {})) == {
        "name": "desk-01", "drift": "! state, vCPU", "host": "hv-1", "vdi": "running ≠",
        "virt": "paused ≠", "vcpu": "2≠4", "mem": "4096"}
