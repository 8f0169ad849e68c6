"""The pure parts of acting: which actions apply, every refusal's reason, agreement, exit codes,
the requests a plan makes (one batch, never one per VM), the batch answer's parsing, and the
audit trail's file handling and reading."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vditui.core import audit
from vditui.core.act_rules import agrees, applies, exit_code, judge, sides
from vditui.core.actions import Action, ActionPhase, ActionPlan, ActionTarget
from vditui.core.models import ConnState as CS
from vditui.core.models import (
    Domain,
    DriftKind,
    HostView,
    VdiHost,
    VdiInventory,
    VdiVm,
    VirtState,
    VmRow,
)
from vditui.core.reconcile import reconcile
from vditui.core.vdi_actions import BATCH_PATHS, parse_batch, requests_for
from vditui.core.vdi_parse import ShapeProblem

HOSTS = (VdiHost("h1", "hv-a", "10.0.0.1", 1), VdiHost("h2", "hv-b", "10.0.0.2", 1))


def rows(*pairs: tuple[int | None, str | None, str]) -> dict[str, VmRow]:
    """Rows by VM name from (platform status, libvirt state, libvirt host id) triples; a None
    status leaves the VM out of the platform, a None state out of libvirt."""
    vms: list[VdiVm] = []
    doms: dict[str, list[Domain]] = {"h1": [], "h2": []}
    for i, (status, state, host) in enumerate(pairs):
        uuid = f"00000000-0000-0000-0000-{i:012d}"
        if status is not None:
            vms.append(VdiVm(uuid, f"vm{i}", status, 2, 1024, "h1"))
        if state is not None:
            doms[host].append(Domain(uuid, f"vm{i}", VirtState(state), 2, 1024 * 1024))
    views = {h: HostView(h, f"test:///{h}", CS.CONNECTED, tuple(d), read_at=1.0)
             for h, d in doms.items()}
    cmp = reconcile(VdiInventory(HOSTS, tuple(vms)), views)
    return {r.name: r for r in cmp.vms}


def test_applies_follows_what_each_side_says() -> None:
    r = rows((0, "running", "h1"), (1, "shutoff", "h1"), (1, "running", "h1"),
             (None, "running", "h1"))
    assert [a for a in Action if applies(a, r["vm0"])] == list(Action)  # off and running
    assert applies(Action.START, r["vm1"]) and applies(Action.SHUTDOWN, r["vm1"])
    assert not applies(Action.START, r["vm2"]) and applies(Action.REBOOT, r["vm2"])
    assert not any(applies(a, r["vm3"]) for a in Action)  # only in libvirt: no id to name


def test_every_refusal_says_why() -> None:
    r = rows((0, "running", "h1"), (5, "shutoff", "h1"), (6, "running", "h1"),
             (None, "running", "h2"), (1, "running", "h1"), (1, "paused", "h1"))
    assert judge(Action.SYNC, r["vm0"], "hv-a") is None
    assert "busy" in (judge(Action.SYNC, r["vm1"], "hv-a") or "")
    assert "upgrading" in (judge(Action.START, r["vm2"], "hv-a") or "")
    only = judge(Action.SYNC, r["vm3"], "hv-b") or ""
    assert "only in libvirt" in only and "import it into the platform" in only and "hv-b" in only
    assert judge(Action.SHUTDOWN, r["vm4"], "hv-a") == \
        "drift gone: platform says running, libvirt running"
    assert "start does not apply" in (judge(Action.START, r["vm5"], "hv-a") or "")
    assert judge(Action.START, None, "") is not None


def test_placement_names_both_hosts_and_agreement_needs_no_operation_in_progress() -> None:
    r = rows((1, "running", "h2"), (5, "running", "h1"), (1, "running", "h1"))
    moved = r["vm0"]
    assert any(d.kind is DriftKind.PLACEMENT for d in moved.drifts)
    assert sides(moved, {"h1": "hv-a", "h2": "hv-b"}) == \
        "platform says running on hv-a, libvirt running on hv-b"
    assert not agrees(moved) and not agrees(r["vm1"]) and agrees(r["vm2"])


def test_exit_codes() -> None:
    ok = (ActionPhase.RESOLVED, "x: resolved")
    gone = (ActionPhase.REFUSED, "x: drift gone: platform says off, libvirt shutoff")
    assert exit_code({"a": ok}, False) == 0
    assert exit_code({"a": ok, "b": (ActionPhase.REFUSED, "drift gone: ...")}, False) == 0
    assert exit_code({"a": ok, "b": (ActionPhase.UNRESOLVED, "x")}, False) == 1
    assert exit_code({"a": (ActionPhase.REFUSED, "x: busy")}, False) == 1
    assert exit_code({"a": ok}, True) == 2
    assert exit_code({"a": ok, "b": gone}, False) == 0  # as the re-check words it


def targets(n: int) -> tuple[ActionTarget, ...]:
    return tuple(ActionTarget(f"k{i}", f"vm{i}", f"id{i}", f"h{i % 3}", f"hv{i % 3}")
                 for i in range(n))


def test_a_batch_action_is_one_request_whatever_the_count() -> None:
    plan = ActionPlan(Action.SHUTDOWN, True, targets(250))
    (req,) = requests_for(plan)
    assert (req.method, req.path) == ("POST", BATCH_PATHS[Action.SHUTDOWN])
    assert req.body == {"idList": [f"id{i}" for i in range(250)], "isForce": 1}
    assert plan.hosts() == ("hv0", "hv1", "hv2")
    (start,) = requests_for(ActionPlan(Action.START, False, targets(2)))
    assert start.body == {"idList": ["id0", "id1"]}  # no isForce when not forcing
    syncs = requests_for(ActionPlan(Action.SYNC, False, targets(3)))
    assert [r.path for r in syncs] == [f"/ocloud/v1/domain/id{i}/sync-status" for i in range(3)]
    assert all(r.body == {"syncType": 1} for r in syncs)
    hosts = requests_for(ActionPlan(Action.SYNC_HOST, False, targets(7)))
    assert [(r.path, len(r.vm_ids)) for r in hosts] == [
        ("/ocloud/v1/host/h0/sync-status", 3), ("/ocloud/v1/host/h1/sync-status", 2),
        ("/ocloud/v1/host/h2/sync-status", 2)]
    assert requests_for(ActionPlan(Action.START, False, ())) == []


def test_force_is_only_where_the_api_has_it() -> None:
    assert [a for a in Action if a.forceable] == [Action.SHUTDOWN, Action.REBOOT]


def test_batch_answer_parsing() -> None:
    doc = {"status": 0, "msg": "ok", "data": {
        "errorList": [{"domainId": "id1", "domainName": "vm1", "errorMsg": "busy"}],
        "eventIdList": ["e0", 7]}}
    answer = parse_batch(doc)
    assert [(e.vm_id, e.vm_name, e.message) for e in answer.errors] == [("id1", "vm1", "busy")]
    assert answer.event_ids == ("e0", "7")
    assert parse_batch({"status": 0, "msg": "ok"}).errors == ()
    with pytest.raises(ShapeProblem, match=r"data.errorList\[0\]"):
        parse_batch({"data": {"errorList": ["nope"]}})
    with pytest.raises(ShapeProblem, match=r"data\.eventIdList"):
        parse_batch({"data": {"eventIdList": {}}})


def test_audit_file_is_private_even_when_widened(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    audit.append(path, audit.to_line({"time": audit.now_iso(), "action_id": "a", "n": 1}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    audit.append(path, audit.to_line({"time": audit.now_iso(), "action_id": "a",
                                      "event": "outcome"}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert [json.loads(x)["action_id"] for x in lines] == ["a", "a"]
    (one,) = audit.actions(audit.read(path).records)
    assert one["request"]["n"] == 1 and one["outcome"]["event"] == "outcome"


def test_audit_read_skips_bad_lines_and_filters_by_time(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"time": "2026-01-01T00:00:00.000Z", "action_id": "old"}\n'
                    "not json\n[1]\n"
                    '{"time": "2026-06-01T00:00:00.000Z", "action_id": "new"}\n')
    trail = audit.read(path, datetime(2026, 3, 1, tzinfo=UTC))
    assert [r["action_id"] for r in trail.records] == ["new"]
    assert trail.bad_lines == (2, 3)
    assert audit.read(tmp_path / "missing.jsonl").records == ()
