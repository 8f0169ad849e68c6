"""The drift history as read: records for JSON and CSV, and a timeline in words, for
``vditui history`` and the TUI's timeline screen alike (one wording for both)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from vditui.core import present
from vditui.core.history_db import DriftEpisode, Incident
from vditui.core.models import DriftKind
from vditui.core.report import csv_safe

#: The columns of ``vditui history --csv``, and the keys of every ``--json`` record.
FIELDS = ("type", "platform", "subject", "host", "kind", "started", "confirmed", "acknowledged",
          "ack_reason", "ended", "vdi", "libvirt", "message")


def _stamp(at: float | None) -> str | None:
    return None if at is None else present.timestamp(at)


def drift_record(ep: DriftEpisode) -> dict[str, Any]:
    """One drift episode as a record (times in local ISO 8601; None while not happened)."""
    return {"type": "drift", "platform": ep.platform, "subject": ep.subject, "host": ep.host,
            "kind": ep.kind, "started": _stamp(ep.first_seen), "confirmed": _stamp(ep.confirmed),
            "acknowledged": _stamp(ep.acknowledged), "ack_reason": ep.ack_reason,
            "ended": _stamp(ep.resolved), "vdi": ep.vdi_value, "libvirt": ep.virt_value,
            "message": ep.message}


def incident_record(inc: Incident) -> dict[str, Any]:
    """One host or platform incident as a record, in the columns of :data:`FIELDS`."""
    return {"type": inc.scope, "platform": inc.platform,
            "subject": inc.name if inc.scope == "host" else inc.platform,
            "host": inc.name if inc.scope == "host" else "", "kind": "unreachable",
            "started": _stamp(inc.started), "confirmed": None, "acknowledged": None,
            "ack_reason": None, "ended": _stamp(inc.ended), "vdi": "", "libvirt": "",
            "message": inc.cause}


def records(drifts: list[DriftEpisode], incidents: list[Incident]) -> list[dict[str, Any]]:
    """Every episode as a record, by start time."""
    both = [(ep.first_seen, drift_record(ep)) for ep in drifts]
    both += [(inc.started, incident_record(inc)) for inc in incidents]
    return [rec for _, rec in sorted(both, key=lambda p: p[0])]


def to_csv(recs: list[dict[str, Any]]) -> str:
    """Records as CSV (header first), safe to open in a spreadsheet."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    for rec in recs:
        w.writerow({k: csv_safe(rec[k]) for k in FIELDS})
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of a timeline: when, about what (a VM, a host, the platform), what happened."""

    at: float
    subject: str
    text: str
    bad: bool


def kind_words(kind: str) -> str:
    """A drift kind as stored (its machine name) in words, as :func:`present.kind_name`."""
    try:
        return present.kind_name(DriftKind(kind))
    except ValueError:  # a kind a newer vditui wrote
        return kind


def timeline(drifts: list[DriftEpisode], incidents: list[Incident]) -> list[Moment]:
    """Every change the episodes record, in time order."""
    out: list[Moment] = []
    for ep in drifts:
        what = f"{kind_words(ep.kind)} drift"
        out.append(Moment(ep.first_seen, ep.subject, f"{what} first seen: {ep.message}", True))
        if ep.confirmed is not None:
            out.append(Moment(ep.confirmed, ep.subject, f"{what} confirmed", True))
        if ep.acknowledged is not None:
            out.append(Moment(ep.acknowledged, ep.subject,
                              f"{what} acknowledged: {ep.ack_reason or ''}", False))
        if ep.resolved is not None:
            lasted = present.duration(ep.first_seen, ep.resolved)
            out.append(Moment(ep.resolved, ep.subject, f"{what} resolved (lasted {lasted})",
                              False))
    for inc in incidents:
        who = f"host {inc.name}" if inc.scope == "host" else "the platform"
        out.append(Moment(inc.started, inc.name, f"{who} unreachable: {inc.cause}", True))
        if inc.ended is not None:
            down = present.duration(inc.started, inc.ended)
            out.append(Moment(inc.ended, inc.name, f"{who} reachable again (down {down})",
                              False))
    out.sort(key=lambda m: m.at)
    return out
