"""The diff panel's lines about people and the platform (issue 20), from made-up comparisons:
who is on the VM, what kind of VM the platform says it is, a host's alarms and capacity."""

from __future__ import annotations

from tests.ui.test_cells import NAMES, text_of
from vditui.core.models import (
    ConnState,
    Domain,
    HostStatus,
    HostView,
    PlatformAlarm,
    VdiHost,
    VdiInventory,
    VdiVm,
    VdiVmStatus,
    VirtState,
)
from vditui.core.reconcile import reconcile
from vditui.ui.widgets.diff_panel import group_diff, vm_diff

NOW = 1_800_000_000.0
HOST = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "Lab", cpus=32,
               memory_gb=125.5, domain_limit=200)
VIEW = HostView("h1", "qemu+tcp://10.0.0.1/system", ConnState.CONNECTED, (
    Domain("u1", "desk-01", VirtState.SHUTOFF, 2, 4 * 1024 * 1024),
    Domain("t1", "tpl", VirtState.SHUTOFF, 2, 4 * 1024 * 1024)), node_cpus=32)
VMS = (VdiVm("u1", "desk-01", VdiVmStatus.RUNNING, 2, 4096, "h1", user_login="zhang.wei",
             connected=True, connect_time=NOW - 7200),
       VdiVm("t1", "tpl", VdiVmStatus.OFF, 2, 4096, "h1", template=True))
ALARM = PlatformAlarm("1", "critical", "host", "CPU above 90%", "10.0.0.1")


def test_the_vm_says_who_is_connected_and_what_it_is() -> None:
    cmp = reconcile(VdiInventory((HOST,), VMS, alarms=(ALARM,)), {"h1": VIEW})
    rows = {r.name: r for r in cmp.vms}
    alarm = PlatformAlarm("2", "major", "domain", "desk-01: agent not answering")
    text = text_of(vm_diff(rows["desk-01"], NAMES, {}, now=NOW, alarms=(alarm,)))
    assert "user zhang.wei connected 2 h ago" in text
    assert "platform alarm (major, domain): desk-01: agent not answering" in text
    tpl = text_of(vm_diff(rows["tpl"], NAMES, {}, now=NOW))
    assert "platform: template" in tpl and "no difference" in tpl and "user" not in tpl


def test_a_host_shows_its_alarms_and_its_capacity() -> None:
    cmp = reconcile(VdiInventory((HOST,), VMS, alarms=(ALARM,)), {"h1": VIEW})
    text = text_of(group_diff("hv-1", list(cmp.hosts), list(cmp.vms), {}, NOW))
    assert "platform alarm (critical, host): CPU above 90%" in text
    assert "CPU 0/32 vCPU, memory 0/125.5 GB, 0/200 VMs" in text
