"""The comparison as a report: Markdown, JSON or CSV, the same data in each.

Only what the platform and libvirt said goes in: never a password, token or credential (none
reach the comparison in the first place).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vditui.core import present
from vditui.core.acks import AckRule
from vditui.core.models import (
    Comparison,
    ConnState,
    Drift,
    HostRow,
    Severity,
    VmRow,
    host_status_label,
)

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
        "read_at": v.read_at if v else 0.0,
    }


def drift_record(d: Drift, status: str = "", ack: AckRule | None = None) -> dict[str, Any]:
    """A drift for JSON; ``ack``: the rule acknowledging it (then an ``acknowledged`` key)."""
    out: dict[str, Any] = {
        "kind": d.kind.value, "severity": d.severity.name.lower(), "subject": d.subject,
        "key": d.key, "host_id": d.host_id, "message": d.message,
        "vdi": d.vdi_value, "libvirt": d.virt_value}
    if status:
        out["status"] = status
    if ack is not None:
        out["acknowledged"] = ack_of(ack)
    return out


def summary(cmp: Comparison, acked: Acked = _NONE) -> dict[str, Any]:
    unreachable = [h.host.name for h in cmp.hosts
                   if h.view is None or h.view.state is not ConnState.CONNECTED]
    return {
        "hosts": len(cmp.hosts),
        "hosts_unreachable": unreachable,
        "vms": len(cmp.vms),
        "vms_unchecked": sum(1 for r in cmp.vms if not r.checked),
        "drifts": len(cmp.drifts),
        "critical": sum(1 for d in cmp.drifts if d.severity is Severity.CRITICAL),
        "acknowledged": sum(1 for d in cmp.drifts if d.ident in acked),
        "by_kind": _count(d.kind.value for d in cmp.drifts),
    }


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return dict(sorted(out.items()))


def to_dict(cmp: Comparison, meta: ReportMeta, acked: Acked = _NONE) -> dict[str, Any]:
    names = cmp.host_names()
    return {
        "platform": meta.platform,
        "user": meta.user,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(meta.generated_at)),
        "warnings": list(meta.warnings),
        "summary": summary(cmp, acked),
        "hosts": [host_record(h) for h in cmp.hosts],
        "vms": [vm_record(r, names, acked) for r in cmp.vms],
        "drifts": [drift_record(d, ack=acked.get(d.ident)) for d in cmp.drifts],
    }


def render(cmp: Comparison, meta: ReportMeta, fmt: str, acked: Acked = _NONE) -> str:
    """The report in ``fmt`` (md, json or csv); ``acked``: the acknowledged drifts, shown
    with their reason."""
    if fmt == "json":
        return json.dumps(to_dict(cmp, meta, acked), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _csv(cmp, acked)
    if fmt == "md":
        return _markdown(cmp, meta, acked)
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


_CSV_FIELDS = ("name", "host", "libvirt_host", "vdi_state", "libvirt_state", "vdi_vcpu",
               "libvirt_vcpu", "vdi_memory_mb", "libvirt_memory_mb", "checked", "drift",
               "drift_text", "acknowledged")


def _csv(cmp: Comparison, acked: Acked) -> str:
    names = cmp.host_names()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in cmp.vms:
        rec = vm_record(r, names, acked)
        rec["drift"] = " ".join(rec["drift"])
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


def _markdown(cmp: Comparison, meta: ReportMeta, acked: Acked) -> str:
    names = cmp.host_names()
    s = summary(cmp, acked)
    out = [f"# vditui report: {meta.platform}", "",
           f"Generated {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(meta.generated_at))} "
           f"as {meta.user}.", ""]
    out += [f"> warning: {w}" for w in meta.warnings]
    acks = f", {s['acknowledged']} acknowledged" if s["acknowledged"] else ""
    out += [f"**{s['hosts']} hosts, {s['vms']} VMs, {s['drifts']} drifts "
            f"({s['critical']} critical{acks})**; unreachable hosts: "
            f"{', '.join(s['hosts_unreachable']) or 'none'}.", "", "## Hosts", "",
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
    if cmp.drifts:
        out += ["", "## Drifts", ""]
        out += [f"- **{d.severity.name.lower()}** {present.kind_name(d.kind)}: "
                f"{_md_cell(d.message)}" + (
                    f" ({present.ack_text(a.reason, a.expires)})"
                    if (a := acked.get(d.ident)) is not None else "")
                for d in cmp.drifts]
    return "\n".join(out) + "\n"


def _pair(a: object, b: object) -> str:
    """Both sides' figures in one cell, both shown when they differ (see present.pair)."""
    sa, sb = (None if a is None else str(a)), (None if b is None else str(b))
    return present.pair(sa, sb, sa != sb)
