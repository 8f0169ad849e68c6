"""The report's three formats, byte for byte, for one small estate made through the real
reconcile: a state drift, a vCPU drift, a VM only on the platform, an acknowledged one, a
pending one and a host that cannot be read. Each names, for every drift, the VM, its host, the
kind, both values, since when and any acknowledgement with its reason.

After a deliberate change of format: ``VDITUI_GOLDEN_UPDATE=1 pytest tests/unit/
test_report_golden.py`` rewrites the files; read the diff before committing it."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path
from types import MappingProxyType

import pytest

from vditui.core.acks import AckRule
from vditui.core.drift import DriftState, DriftStatus
from vditui.core.events import SnapshotReady
from vditui.core.models import (
    ConnState,
    Domain,
    DriftKind,
    HostStatus,
    HostView,
    VdiHost,
    VdiInventory,
    VdiVm,
    VdiVmStatus,
    VirtError,
    VirtErrorKind,
    VirtState,
)
from vditui.core.reconcile import reconcile
from vditui.core.report import FORMATS, ReportMeta, render
from vditui.core.selection import select

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
WALL, MONO = 1_796_000_000.0, 10_000.0  # 2026-11-30T01:33:20Z


def snapshot() -> SnapshotReady:
    h1 = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "Lab")
    h2 = VdiHost("h2", "hv-2", "10.0.0.2", HostStatus.ENABLED, "p1", "Lab")
    vms = (VdiVm("u1", "desk-01", VdiVmStatus.RUNNING, 2, 2048, "h1"),
           VdiVm("u2", "desk-02", VdiVmStatus.RUNNING, 2, 2048, "h1"),
           VdiVm("u3", "desk-03", VdiVmStatus.RUNNING, 2, 2048, "h1"),
           VdiVm("u5", "desk-05", VdiVmStatus.RUNNING, 2, 2048, "h1"),
           VdiVm("u6", "desk-06", VdiVmStatus.RUNNING, 2, 2048, "h2"))
    doms = (Domain("u1", "desk-01", VirtState.SHUTOFF, 2, 2048 * 1024),
            Domain("u2", "desk-02", VirtState.RUNNING, 4, 2048 * 1024),
            Domain("u4", "licence", VirtState.RUNNING, 1, 1024 * 1024),
            Domain("u5", "desk-05", VirtState.PAUSED, 2, 2048 * 1024))
    views = {"h1": HostView("h1", "qemu+tcp://10.0.0.1/system", ConnState.CONNECTED, doms,
                            read_at=WALL - 2),
             "h2": HostView("h2", "qemu+tcp://10.0.0.2/system", ConnState.FAILED,
                            error=VirtError(VirtErrorKind.REFUSED, "qemu+tcp://10.0.0.2/system",
                                            "unable to connect to server at '10.0.0.2:16509'",
                                            hint="is libvirtd listening on tcp?"))}
    cmp = reconcile(VdiInventory((h1, h2), vms), views)
    rule = AckRule(reason="licence server, kept off the platform", vm="licence",
                   expires=date(2027, 3, 1))
    states, acked = {}, {}
    for n, d in enumerate(cmp.drifts):
        pending = d.subject == "desk-05"
        states[d.ident] = DriftState(DriftStatus.PENDING if pending else DriftStatus.CONFIRMED,
                                     MONO - 3600 + 60 * n)
        if d.kind is DriftKind.ONLY_IN_LIBVIRT:
            acked[d.ident] = rule
    return SnapshotReady(WALL, 0, cmp, MappingProxyType(states), MappingProxyType({}),
                         settled=True, monotonic=MONO, acknowledged=MappingProxyType(acked))


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("fmt", FORMATS)
def test_report_matches_its_golden_file(fmt: str) -> None:
    snap = snapshot()
    text = render(snap.comparison, ReportMeta("https://vdi.example:8088", "operator", WALL),
                  fmt, snap.acknowledged, select(snap))
    path = GOLDEN / f"report.{fmt}"
    if os.environ.get("VDITUI_GOLDEN_UPDATE"):
        path.write_text(text)
    assert text == path.read_text()
