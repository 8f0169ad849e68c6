"""Actions say what they can change, and are judged by it: a sync of a VM only in the platform
can at most make the platform stop calling it running (the plan says so, and the follow-up is
done once the platform says off); ``--drift`` never picks a row no chosen action can change."""

from __future__ import annotations

from types import MappingProxyType

from tests.unit.test_act import HOSTS, rows
from vditui.commands.act import plan_lines, select
from vditui.core.act_rules import ONLY_IN_PLATFORM, agrees, can_change, done, reach
from vditui.core.actions import Action, ActionPlan, ActionTarget
from vditui.core.drift import DriftState, DriftStatus
from vditui.core.events import SnapshotReady
from vditui.core.models import Comparison, HostRow, VdiVm


def test_a_sync_of_a_vm_only_in_the_platform_says_what_it_can_do_and_ends_when_off() -> None:
    r = rows((1, None, "h1"), (0, None, "h1"), (1, "shutoff", "h1"))
    running, off, state = r["vm0"], r["vm1"], r["vm2"]
    assert "at most make the platform stop calling it running" in (reach(Action.SYNC, running)
                                                                    or "")
    assert reach(Action.SYNC, state) is None and reach(Action.START, running) is None
    # Not done while the platform says running; done once it says off, though the drift
    # (only in the platform) stays: no sync can end it, so none is waited for.
    assert done(Action.SYNC, running) is None
    assert not agrees(off)
    assert done(Action.SYNC, off) == f"the platform says off now; {ONLY_IN_PLATFORM}"
    assert done(Action.SHUTDOWN, off) is None  # only a sync is judged so
    target = ActionTarget(running.key, running.name, running.vdi.id if running.vdi else None,
                          "h1", "hv-a")
    plan = ActionPlan(Action.SYNC, False, (target,), (), ((target, reach(Action.SYNC, running)
                                                           or ""),))
    text = "\n".join(plan_lines(plan, dry_run=True))
    assert "what it can do (1):" in text and "vm0: only in the platform" in text


def snapshot(cmp_rows: dict) -> SnapshotReady:
    vms = tuple(cmp_rows.values())
    drifts = tuple(d for v in vms for d in v.drifts)
    cmp = Comparison(vms, tuple(HostRow(h, None) for h in HOSTS), drifts)
    states = {d.ident: DriftState(DriftStatus.CONFIRMED, 0.0) for d in drifts}
    return SnapshotReady(0.0, 0, cmp, MappingProxyType(states), MappingProxyType({}))


def test_drift_selection_picks_only_rows_the_chosen_action_can_change() -> None:
    r = rows((1, "shutoff", "h1"), (1, "running", "h1"), (1, "running", "h1"))
    # vm1: a vCPU-only drift; vm2: memory-only; vm0: a state drift.
    vcpu = r["vm1"]
    r["vm1"] = type(vcpu)(vcpu.key, vcpu.name, VdiVm(vcpu.vdi.id, "vm1", 1, 4, 1024, "h1"),
                          vcpu.virt, vcpu.virt_host_id, vcpu.drifts, vcpu.checked)
    snap = snapshot(r)
    assert not any(can_change(a, r["vm2"]) for a in Action)  # no drift at all
    for action in Action:
        picked = [x.name for x in select(snap, [], None, "confirmed", action)]
        assert all(can_change(action, r[name]) for name in picked), (action, picked)
    assert [x.name for x in select(snap, [], None, "confirmed", Action.SYNC)] == ["vm0"]
    assert [x.name for x in select(snap, [], None, "confirmed", Action.START)] == ["vm0"]
    # shutdown applies when a side says running: vm0 says running on the platform.
    assert [x.name for x in select(snap, ["vm*"], None, None, Action.REBOOT)] == ["vm0"]
