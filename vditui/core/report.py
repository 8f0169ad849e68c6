"""The comparison as a report: Markdown, JSON or CSV, the same data in each.

The drifts are those of :func:`vditui.core.selection.select` (what ``check`` lists): each
named with its VM (or host), host, kind, both sides' values, since when, its status and any
acknowledgement with its reason.

Only what the platform and libvirt said goes in: never a password, token or credential (none
reach the comparison in the first place).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vditui.core import present, vdi_facts, vm_kinds
from vditui.core.acks import AckRule
from vditui.core.models import (
    Comparison,
    Drift,
    HostRow,
    VmRow,
    host_status_label,
)
from vditui.core.selection import DriftNow, Selection, everything

FORMATS = ("md", "json", "csv")
Acked = Mapping[tuple[str, str], AckRule]
"""Drift ident -> the rule acknowledging it (`SnapshotReady.acknowledged`)."""
_NONE: Acked = {}


@dataclass(frozen=True)
class ReportMeta:
    platform: str
    user: str
    generated_at: float
    warnings: tuple[str, ...] = ()


def ack_of(rule: AckRule) -> dict[str, Any]:
    """An acknowledgement as the JSON faces give it: ``{"reason": ..., "expires": ...}``."""
    return present.ack_record(rule.reason, rule.expires)


def _ack_texts(drifts: Iterable[Drift], acked: Acked) -> str:
    return "; ".join(dict.fromkeys(present.ack_text(r.reason, r.expires)
                                   for d in drifts if (r := acked.get(d.ident)) is not None))


def vm_record(row: VmRow, host_names: dict[str, str], acked: Acked = _NONE) -> dict[str, Any]:
    vdi, virt = row.vdi, row.virt
    return {
        "name": row.name,
        "key": row.key,
        "host": host_names.get(row.host_id, row.host_id),
        "libvirt_host": host_names.get(row.virt_host_id or "", row.virt_host_id or ""),
        "vdi_state": present.vdi_state(vdi) or "",
        "libvirt_state": present.virt_state(virt) or "",
        "vdi_vcpu": vdi.vcpu if vdi else None,
        "libvirt_vcpu": virt.vcpu if virt else None,
        "vdi_memory_mb": vdi.memory_mb if vdi else None,
        # Exact (2048.5 for 2 GiB + 512 KiB): a memory drift never reads as two equal figures.
        "libvirt_memory_mb": (present.mib_number(virt.memory_kib)
                              if virt and virt.memory_kib is not None else None),
        "checked": row.checked,
        "drift": [d.kind.value for d in row.drifts],
        "drift_text": "; ".join(d.message for d in row.drifts),
        "acknowledged": _ack_texts(row.drifts, acked),
        # Who and what (issue 20): login only, never the platform's ID, phone or mail.
        "kind": vm_kinds.kind_label(vdi),
        "user": vdi_facts.user_name(vdi),
        "connected": vdi.connected if vdi else None,
        "user_facing": vdi_facts.user_facing(row),
    }


def host_record(row: HostRow) -> dict[str, Any]:
    v = row.view
    return {
        "name": row.host.name,
        "id": row.host.id,
        "ip": row.host.ip,
        "pool": row.host.pool_name,
        "vdi_status": host_status_label(row.host.status),
        "uri": v.uri if v else "",
        "transport": present.transport(v.uri) if v else "",
        "connection": v.state.value if v else "not tried",
        "libvirt_version": v.libvirt_version if v else "",
        "error": v.error.kind.value if v and v.error else "",
        "error_detail": v.error.message if v and v.error else "",
        "hint": v.error.hint if v and v.error else "",
        "round_trips": v.round_trips if v else 0,
        "vdi_vms": row.vdi_vms,
        "libvirt_vms": row.virt_vms,
        "drift": [d.kind.value for d in row.drifts],
        "read_at": present.timestamp(v.read_at) if v and v.read_at else None,
        "running_vdi": row.host.running_count,
        "alarms": [vdi_facts.alarm_line(a) for a in row.alarms],
    }


def drift_record(d: Drift, status: str = "", ack: AckRule | None = None,
                 host: str | None = None, since: float | None = None) -> dict[str, Any]:
    """A drift for JSON (``check``, ``report``, ``watch``): kind, severity, the VM or host
    (``subject``) and its key, its host, both sides' values, the sentence; with ``status``,
    ``since`` (RFC 3339) and ``ack`` (then an ``acknowledged`` key: reason and expiry) when
    known."""
    out: dict[str, Any] = {
        "kind": d.kind.value, "severity": d.severity.name.lower(), "subject": d.subject,
        "key": d.key, "host_id": d.host_id, "message": d.message,
        "vdi": d.vdi_value, "libvirt": d.virt_value}
    if host is not None:
        out["host"] = host
    if status:
        out["status"] = status
    if since is not None:
        out["since"] = present.timestamp(since)
    if ack is not None:
        out["acknowledged"] = ack_of(ack)
    return out


def now_record(d: DriftNow) -> dict[str, Any]:
    """A drift of a :class:`Selection` for JSON: :func:`drift_record` with all it knows."""
    return drift_record(d.drift, d.status.value if d.status else "", d.ack, d.host, d.since)


def to_dict(cmp: Comparison, meta: ReportMeta, acked: Acked = _NONE,
            sel: Selection | None = None) -> dict[str, Any]:
    """The report as one JSON document; ``sel``: the drifts now (by default every drift of
    ``cmp`` counts, or is acknowledged by ``acked``)."""
    sel = everything(cmp, acked) if sel is None else sel
    names = cmp.host_names()
    return {
        "platform": meta.platform,
        "user": meta.user,
        "generated_at": present.timestamp(meta.generated_at),
        "exit_code": int(sel.exit_code),
        "warnings": list(meta.warnings),
        "summary": {**sel.summary(), **vdi_facts.people_summary(cmp)},
        "hosts": [host_record(h) for h in cmp.hosts],
        "vms": [vm_record(r, names, acked) for r in cmp.vms],
        "drifts": [now_record(d) for d in sel.counted],
        "acknowledged": [now_record(d) for d in sel.acknowledged],
        "pending": [now_record(d) for d in sel.pending],
        "capacity": {h.host.name: asdict(vdi_facts.capacity(h, cmp.vms)) for h in cmp.hosts},
        "pools": [asdict(p) for p in vdi_facts.pool_usage(cmp)],
        "alarms": [vdi_facts.alarm_line(a) for a in cmp.alarms],
    }


def render(cmp: Comparison, meta: ReportMeta, fmt: str, acked: Acked = _NONE,
           sel: Selection | None = None) -> str:
    """The report in ``fmt`` (md, json or csv); ``acked``: the acknowledged drifts, shown
    with their reason; ``sel``: the drifts now (see :func:`to_dict`)."""
    sel = everything(cmp, acked) if sel is None else sel
    if fmt == "json":
        return json.dumps(to_dict(cmp, meta, acked, sel), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _csv(cmp, acked, sel)
    if fmt == "md":
        return _markdown(cmp, meta, acked, sel)
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


_CSV_FIELDS = ("name", "host", "libvirt_host", "vdi_state", "libvirt_state", "vdi_vcpu",
               "libvirt_vcpu", "vdi_memory_mb", "libvirt_memory_mb", "checked", "drift",
               "drift_status", "drift_since", "drift_text", "acknowledged", "kind", "user",
               "connected", "user_facing")


def _standing(sel: Selection) -> dict[tuple[str, str], tuple[str, float | None]]:
    """Drift ident -> (counts, acknowledged or pending; since when)."""
    out: dict[tuple[str, str], tuple[str, float | None]] = {}
    for word, group in (("counts", sel.counted), ("acknowledged", sel.acknowledged),
                        ("pending", sel.pending)):
        out.update((d.drift.ident, (word, d.since)) for d in group)
    return out


def _csv(cmp: Comparison, acked: Acked, sel: Selection) -> str:
    names = cmp.host_names()
    standing = _standing(sel)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in cmp.vms:
        rec = vm_record(r, names, acked)
        rec["drift"] = " ".join(rec["drift"])
        known = [standing[d.ident] for d in r.drifts if d.ident in standing]
        rec["drift_status"] = " ".join(dict.fromkeys(word for word, _ in known))
        since = [at for _, at in known if at is not None]
        rec["drift_since"] = present.timestamp(min(since)) if since else ""
        w.writerow({k: csv_safe(v) for k, v in rec.items()})
    return buf.getvalue()


def csv_safe(v: Any) -> Any:
    """A CSV cell: None as empty, text that a spreadsheet would run as a formula quoted."""
    # A VM name starting with = + - @ would run as a formula when the CSV is opened in a
    # spreadsheet; prefix it so it stays text.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v
    return "" if v is None else v


def _md_cell(v: Any) -> str:
    s = "" if v is None else str(v)
    return s.replace("|", "\\|").replace("\n", " ")


def _markdown(cmp: Comparison, meta: ReportMeta, acked: Acked, sel: Selection) -> str:
    names = cmp.host_names()
    s = sel.summary()
    out = [f"# vditui report: {meta.platform}", "",
           f"Generated {present.timestamp(meta.generated_at)} as {meta.user}.", ""]
    out += [f"> warning: {w}" for w in meta.warnings]
    extra = "".join(f", {s[k]} {k}" for k in ("acknowledged", "pending") if s[k])
    out += [f"**{s['hosts']} hosts, {s['vms']} VMs, {s['drifts']} drifts "
            f"({s['critical']} critical{extra})**; unreachable hosts: "
            f"{', '.join(s['hosts_unreachable']) or 'none'}.", ""]
    for title, group in (("Drifts", sel.counted), ("Acknowledged drifts", sel.acknowledged),
                         ("Pending drifts (within the grace period)", sel.pending)):
        if group:
            out += [f"## {title}", "", *_drift_table(group), ""]
    out += _md_people(cmp, meta.generated_at)
    out += ["## Hosts", "",
            "| host | pool | VDI status | connection | URI | VMs VDI/libvirt | drift | hint |",
            "|---|---|---|---|---|---|---|---|"]
    for h in cmp.hosts:
        r = host_record(h)
        conn = r["connection"] + (f" ({r['error']})" if r["error"] else "")
        counts = f"{r['vdi_vms']}/{'-' if r['libvirt_vms'] is None else r['libvirt_vms']}"
        drift = present.kinds_text(d.kind for d in h.drifts)
        if h.drifts and (texts := _ack_texts(h.drifts, acked)):
            drift += f" ({texts})"
        out.append("| " + " | ".join(_md_cell(x) for x in (
            r["name"], r["pool"], r["vdi_status"], conn, r["uri"], counts, drift,
            r["hint"])) + " |")
    out += ["", "## VMs", "",
            "| VM | host | VDI state | libvirt state | vCPU | memory MiB | drift |",
            "|---|---|---|---|---|---|---|"]
    for row in cmp.vms:
        r = vm_record(row, names, acked)
        cpu = _pair(r["vdi_vcpu"], r["libvirt_vcpu"])
        mem = _pair(present.vdi_memory(row.vdi), present.virt_memory(row.virt))
        drift = r["drift_text"] or ("" if row.checked else "not checked: host unreachable")
        if r["acknowledged"]:
            drift += f" ({r['acknowledged']})"
        out.append("| " + " | ".join(_md_cell(x) for x in (
            r["name"], r["host"], r["vdi_state"] or "-", r["libvirt_state"] or "-", cpu, mem,
            drift)) + " |")
    out += _md_capacity(cmp)
    return "\n".join(out) + "\n"


def _drift_table(group: Iterable[DriftNow]) -> list[str]:
    """Drifts as a table a ticket can take: one row each, every fact in its own column."""
    out = ["| severity | kind | VM or host | host | platform says | libvirt says | since "
           "| acknowledged | what differs |", "|---|---|---|---|---|---|---|---|---|"]
    for d in group:
        dr = d.drift
        ack = "" if d.ack is None else present.ack_text(d.ack.reason, d.ack.expires)
        out.append("| " + " | ".join(_md_cell(x) for x in (
            dr.severity.name.lower(), present.kind_name(dr.kind), dr.subject, d.host,
            dr.vdi_value or "-", dr.virt_value or "-",
            present.timestamp(d.since) if d.since is not None else "-", ack, dr.message))
            + " |")
    return out


def _pair(a: object, b: object) -> str:
    """Both sides' figures in one cell, both shown when they differ (see present.pair)."""
    sa, sb = (None if a is None else str(a)), (None if b is None else str(b))
    return present.pair(sa, sb, sa != sb)


def _md_people(cmp: Comparison, now: float) -> list[str]:
    """Who is affected first, then the platform's alarms and desktop pools."""
    out: list[str] = []
    facing = [r for r in cmp.vms if vdi_facts.user_facing(r)]
    if facing:
        out += [f"**{len(facing)} user-facing drift{'s' if len(facing) != 1 else ''}** "
                "(a user is connected now):", ""]
        out += [f"- {_md_cell(r.name)}: {_md_cell(vdi_facts.user_line(r.vdi, now))}; "
                f"{_md_cell('; '.join(d.message for d in r.drifts))}" for r in facing]
        out.append("")
    if cmp.alarms:
        out += ["## Platform alarms", ""]
        out += [f"- {_md_cell(vdi_facts.alarm_line(a))}" for a in cmp.alarms]
        out.append("")
    if cmp.pools:
        out += ["## Desktop pools", ""]
        out += [f"- {_md_cell(vdi_facts.pool_line(p))}" for p in vdi_facts.pool_usage(cmp)]
        out.append("")
    return out


def _md_capacity(cmp: Comparison) -> list[str]:
    out = ["", "## Host capacity", "", "| host | capacity (running VMs / platform; node) |",
           "|---|---|"]
    for h in cmp.hosts:
        line = vdi_facts.capacity_line(vdi_facts.capacity(h, cmp.vms))
        out.append(f"| {_md_cell(h.host.name)} | {_md_cell(line)} |")
    return out
