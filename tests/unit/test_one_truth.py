"""Every face tells the same drifts: on random estates, ``check --json``'s list, its counts
and its exit code, ``report --format json`` and the metrics' drift gauges agree, because all
of them read one selection (:mod:`vditui.core.selection`)."""

from __future__ import annotations

import json

from hypothesis import given, settings

from tests.unit.estates import estates
from vditui.commands.check import check_document
from vditui.core.events import SnapshotReady
from vditui.core.exitcodes import ExitCode
from vditui.core.metrics import MetricsState
from vditui.core.models import DriftKind
from vditui.core.report import ReportMeta, render
from vditui.core.selection import select


def gauges(snap: SnapshotReady) -> dict[str, dict[tuple[str, ...], float]]:
    state = MetricsState(60.0)
    state.on_event(snap)
    return {f.name: dict(f.samples) for f in state.families()}


def idents(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["key"], r["kind"]) for r in records]


@settings(max_examples=150, deadline=None)
@given(estates())
def test_check_report_and_metrics_tell_the_same_drifts(snap: SnapshotReady) -> None:
    doc = check_document(snap, "http://vdi", [])
    s = doc["summary"]
    # check: the list is what it counts, and the exit code follows from both.
    assert len(doc["drifts"]) == s["drifts"] == sum(s["by_kind"].values())
    assert len(doc["acknowledged"]) == s["acknowledged"]
    assert len(doc["pending"]) == s["pending"]
    assert s["critical"] == sum(d["severity"] == "critical" for d in doc["drifts"])
    expected = (ExitCode.FAILED if s["hosts_unreachable"] else
                ExitCode.DIFFERS if doc["drifts"] else ExitCode.OK)
    assert doc["exit_code"] == expected
    # A host that cannot be read is in the list (or acknowledged) whenever it has a drift.
    listed = {d["subject"] for d in doc["drifts"] + doc["acknowledged"]
              if d["kind"] == "unreachable"}
    failed = {h.host.name for h in snap.comparison.hosts
              if any(d.kind is DriftKind.HOST_UNREACHABLE for d in h.drifts)}
    assert failed <= listed
    # report: the same drifts, counts and verdict.
    report = json.loads(render(snap.comparison, ReportMeta("http://vdi", "u", 0.0), "json",
                               snap.acknowledged, select(snap)))
    assert report["summary"] == s and report["exit_code"] == doc["exit_code"]
    for group in ("drifts", "acknowledged", "pending"):
        assert idents(report[group]) == idents(doc[group]), group
    # metrics: the drift gauges add up to the same counts, kind by kind.
    m = gauges(snap)
    by_kind = {k[0]: v for k, v in m["vditui_drifts"].items() if v}
    assert by_kind == s["by_kind"]
    assert sum(m["vditui_host_drifts"].values()) == s["drifts"]
    assert sum(m["vditui_drifts_acknowledged"].values()) == s["acknowledged"]
    assert sum(m["vditui_drifts_pending"].values()) == s["pending"]
    assert {(k[0], k[2]) for k in m["vditui_drift_first_seen_timestamp_seconds"]} == set(
        idents(doc["drifts"]))
    assert m["vditui_hosts_unreachable"][()] == len(s["hosts_unreachable"])
