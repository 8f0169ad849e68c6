"""vditui.core.present: one formatter per value, and the report built on it.

The memory tests are the regression for a bug two faces had: libvirt at 2 GiB + 512 KiB read
``2048≠2048`` in the table and the diff panel, and ``2048`` in the report, while reconcile's own
message said 2048.5 MiB.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from vditui.core import present
from vditui.core.models import (
    Comparison,
    ConnState,
    Domain,
    DriftKind,
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
from vditui.core.report import ReportMeta, render

UUID = "6f1c2a52-0c39-4d7e-9c0e-6b2f4f1d2a01"
HALF_MIB_MORE = 2048 * 1024 + 512  # KiB: 2 GiB and half a MiB


def half_mib_comparison() -> Comparison:
    """A real comparison (through reconcile) of one VM whose memory differs by 0.5 MiB."""
    h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "Lab")
    vm = VdiVm(UUID, "desk-01", VdiVmStatus.RUNNING, 2, 2048, "h1")
    dom = Domain(UUID, "desk-01", VirtState.RUNNING, 2, HALF_MIB_MORE)
    view = HostView("h1", "qemu+tcp://10.0.0.1/system", ConnState.CONNECTED, (dom,),
                    read_at=1.0)
    return reconcile(VdiInventory((h,), (vm,)), {"h1": view})


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize(("kib", "text"), [
    (2048 * 1024, "2048"), (HALF_MIB_MORE, "2048.5"), (2048 * 1024 + 1, "2048.001"),
    (2048 * 1024 - 1, "2047.999"), (0, "0"), (1, "0.001"),
])
def test_mib_is_exact(kib: int, text: str) -> None:
    assert present.mib(kib) == text


def test_mib_never_shows_a_mismatch_as_equal_figures() -> None:
    for kib in range(2047 * 1024, 2049 * 1024 + 1):
        assert (present.mib(kib) == "2048") == (kib == 2048 * 1024), kib


def test_mib_number_for_json() -> None:
    assert present.mib_number(2048 * 1024) == 2048
    assert isinstance(present.mib_number(2048 * 1024), int)
    assert present.mib_number(HALF_MIB_MORE) == 2048.5


def test_pair() -> None:
    assert present.pair("4", "4", False) == "4"
    assert present.pair(None, "4", False) == "4"
    assert present.pair(None, None, False) == present.MISSING
    assert present.pair("4", "8", True) == "4≠8"
    assert present.pair(None, "8", True) == f"{present.MISSING}≠8"


def test_reconcile_message_uses_the_same_figure() -> None:
    (drift,) = half_mib_comparison().drifts
    assert drift.kind is DriftKind.MEMORY
    assert drift.virt_value == "2048.5 MiB" and "2048.5 MiB" in drift.message


def test_report_md_shows_both_memory_figures() -> None:
    text = render(half_mib_comparison(), ReportMeta("https://vdi", "admin", 0.0), "md")
    (row,) = [line for line in text.splitlines() if line.startswith("| desk-01 ")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5] == "2048≠2048.5", row  # was "2048"
    assert "| memory MiB |" in text


def test_report_csv_and_json_keep_the_exact_figure() -> None:
    cmp = half_mib_comparison()
    meta = ReportMeta("https://vdi", "admin", 0.0)
    (row,) = csv.DictReader(io.StringIO(render(cmp, meta, "csv")))
    assert (row["vdi_memory_mb"], row["libvirt_memory_mb"]) == ("2048", "2048.5")  # was 2048
    (vm,) = json.loads(render(cmp, meta, "json"))["vms"]
    assert (vm["vdi_memory_mb"], vm["libvirt_memory_mb"]) == (2048, 2048.5)


# --------------------------------------------------------------------------- drift kinds


def test_every_kind_has_a_name_in_words() -> None:
    assert set(present.KIND_NAMES) == set(DriftKind)
    assert all("_" not in name for name in present.KIND_NAMES.values())
    assert present.kind_name(DriftKind.ONLY_IN_VDI) == "only in VDI"
    assert present.kinds_text([DriftKind.VCPU, DriftKind.STATE, DriftKind.VCPU]) == "state, vCPU"


def test_reports_name_kinds_in_words_md_and_by_machine_name_json_csv() -> None:
    cmp = half_mib_comparison()
    meta = ReportMeta("https://vdi", "admin", 0.0)
    md = render(cmp, meta, "md")
    assert ("| warning | memory | desk-01 | hv-1 | 2048 MiB | 2048.5 MiB | - |  | platform says "
            "2048 MiB") in md
    h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.OFFLINE, "p1", "Lab")
    view = HostView("h1", "qemu+tcp://10.0.0.1/system", ConnState.CONNECTED, (), read_at=1.0)
    off = reconcile(VdiInventory((h,), ()), {"h1": view})
    md = render(off, meta, "md")
    assert "| offline but reachable |" in md and "offline_but_reachable" not in md
    assert json.loads(render(off, meta, "json"))["hosts"][0]["drift"] == [
        "offline_but_reachable"]


# --------------------------------------------------------------------------- stale, age


def _host_row(state: ConnState, domains: tuple[Domain, ...] | None,
              read_at: float = 100.0) -> HostRow:
    h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED)
    return HostRow(h, HostView("h1", "qemu+tcp://10.0.0.1/system", state, domains,
                               read_at=read_at))


def test_stale_means_kept_domains_without_a_connection() -> None:
    assert present.is_stale(_host_row(ConnState.RECONNECTING, ()).view)
    assert present.is_stale(_host_row(ConnState.FAILED, ()).view)
    assert not present.is_stale(_host_row(ConnState.CONNECTED, ()).view)
    assert not present.is_stale(_host_row(ConnState.FAILED, None).view)  # never read
    assert not present.is_stale(None)
    assert present.stale_since(_host_row(ConnState.FAILED, ()).view) == 100.0
    assert present.stale_since(_host_row(ConnState.CONNECTED, ()).view) == 0.0
    rows = [_host_row(ConnState.FAILED, ()), _host_row(ConnState.CONNECTED, ())]
    assert present.stale_hosts(rows) == frozenset({"h1"})


def test_age() -> None:
    assert present.age(100.0, 112.9) == "12 s"
    assert present.age(100.0, 50.0) == "0 s"  # a clock behind the stamp: never negative
    assert present.age(0.0, 119.0) == "119 s"
    assert present.age(0.0, 185.0) == "3 min"


# --------------------------------------------------------------------------- transport


@pytest.mark.parametrize(("uri", "name"), [
    ("qemu+tcp://10.0.0.1/system", "tcp"), ("qemu+ssh://root@h/system", "ssh"),
    ("qemu+tls://h/system", "tls"), ("qemu:///system", "local"), ("test:///default", "local"),
    ("not a uri", "?"), ("", ""),
])
def test_transport(uri: str, name: str) -> None:
    assert present.transport(uri) == name


def test_probe_and_report_name_the_transport_alike() -> None:
    from vditui.core.probe import ProbeResult
    from vditui.core.report import host_record

    for uri in ("qemu:///system", "qemu+tcp://10.0.0.1/system"):
        h = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED)
        row = HostRow(h, HostView("h1", uri, ConnState.CONNECTED, ()))
        assert host_record(row)["transport"] == ProbeResult(uri, True, 0.0).transport


def test_present_never_imports_textual_or_rich() -> None:
    code = ("import sys, vditui.core.present, vditui.core.report; "
            "print([m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_differs_since_reads_the_time_and_how_long() -> None:
    import time

    from vditui.core.present import differs_since, duration

    now = time.mktime((2026, 12, 2, 17, 5, 0, 0, 0, -1))
    three_h = time.mktime((2026, 12, 2, 14, 2, 0, 0, 0, -1))
    assert differs_since(three_h, now) == "differs since 14:02 (3 h)"
    days = time.mktime((2026, 11, 28, 9, 30, 0, 0, 0, -1))
    assert differs_since(days, now) == "differs since 2026-11-28 09:30 (4 d)"
    assert [duration(now - s, now) for s in (5, 119, 120, 7199, 7200, 48 * 3600)] == [
        "5 s", "119 s", "2 min", "119 min", "2 h", "2 d"]
    assert duration(now + 10, now) == "0 s"
