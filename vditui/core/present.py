"""How values read, for every face: the TUI's cells and labels, the report, ``check``.

One formatter per value shown, so two faces can never disagree about the same fact (they did:
a 0.5 MiB memory mismatch read ``2048≠2048`` in the table and ``2048`` in the report, while
reconcile's message said 2048.5). Plain strings only: styling is the UI's business, and the core
never imports Textual or Rich.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from vditui.core.actions import Action
from vditui.core.models import (
    ConnState,
    Domain,
    DriftKind,
    HostRow,
    HostView,
    VdiVm,
    vdi_status_label,
)
from vditui.core.uris import UriError, parse

#: A value one side does not have.
MISSING = "—"
#: Beside a drift inside its grace period (not yet believed) and a confirmed one.
PENDING_MARK = "…"
CONFIRMED_MARK = "!"
#: Beside an acknowledged drift (known and meant: shown, not counted).
ACK_MARK = "~"

#: Drift kinds as an operator reads them; JSON and CSV keep the machine names (DriftKind values).
KIND_NAMES: dict[DriftKind, str] = {
    DriftKind.ONLY_IN_VDI: "only in VDI",
    DriftKind.ONLY_IN_LIBVIRT: "only in libvirt",
    DriftKind.STATE: "state",
    DriftKind.VCPU: "vCPU",
    DriftKind.MEMORY: "memory",
    DriftKind.PLACEMENT: "placement",
    DriftKind.DUPLICATE: "duplicate",
    DriftKind.HOST_UNREACHABLE: "unreachable",
    DriftKind.HOST_OFFLINE_BUT_REACHABLE: "offline but reachable",
    DriftKind.HOST_RUNNING_COUNT: "running count",
}
_ORDER = {k: i for i, k in enumerate(DriftKind)}


def kind_name(kind: DriftKind) -> str:
    """A drift kind in words: ``only in VDI``, not ``only_in_vdi``."""
    return KIND_NAMES[kind]


def kinds_text(kinds: Iterable[DriftKind]) -> str:
    """Several kinds in words, in one fixed order (the enum's), each once: "state, vCPU"."""
    return ", ".join(KIND_NAMES[k] for k in sorted(set(kinds), key=_ORDER.__getitem__))


# --------------------------------------------------------------------------- memory


def mib(kib: int) -> str:
    """KiB as MiB, exactly: "2048", or "2048.5" for a size that is not whole MiB.

    Three decimals never round a non-multiple of 1024 to a whole number (1/1024 > 0.0005), so a
    memory mismatch can never be displayed as two equal figures.
    """
    if kib % 1024 == 0:
        return str(kib // 1024)
    return f"{kib / 1024:.3f}".rstrip("0")


def mib_number(kib: int) -> int | float:
    """KiB as MiB for JSON: an int when whole, else the exact value (KiB/1024 is exact in a
    binary float)."""
    return kib // 1024 if kib % 1024 == 0 else kib / 1024


def vdi_memory(vm: VdiVm | None) -> str | None:
    """The platform's memory figure in MiB, None when it has none."""
    return None if vm is None or vm.memory_mb is None else str(vm.memory_mb)


def virt_memory(dom: Domain | None) -> str | None:
    """libvirt's memory figure in MiB (exact, see :func:`mib`), None when it has none."""
    return None if dom is None or dom.memory_kib is None else mib(dom.memory_kib)


def pair(a: str | None, b: str | None, differ: bool) -> str:
    """The platform's and libvirt's value in one cell: one figure when they agree, both with
    ``≠`` between them when they differ, :data:`MISSING` for a side that has none."""
    if not differ:
        v = a if a is not None else b
        return MISSING if v is None else v
    return f"{MISSING if a is None else a}≠{MISSING if b is None else b}"


# --------------------------------------------------------------------------- states


def vdi_state(vm: VdiVm | None) -> str | None:
    """The platform's state of a VM in words, None when the platform does not list it."""
    return None if vm is None else vdi_status_label(vm.status)


def virt_state(dom: Domain | None) -> str | None:
    """libvirt's state of a domain, None when libvirt has none."""
    return None if dom is None else dom.state.value


# --------------------------------------------------------------------------- staleness, age


def is_stale(view: HostView | None) -> bool:
    """True when a host shows domains kept from before its connection dropped: they are the
    last known, not current."""
    return view is not None and view.domains is not None and view.state is not ConnState.CONNECTED


def stale_since(view: HostView | None) -> float:
    """When a stale host's kept domains were read (wall clock), 0.0 when it is not stale."""
    return view.read_at if view is not None and is_stale(view) else 0.0


def stale_hosts(hosts: Iterable[HostRow]) -> frozenset[str]:
    """Ids of the hosts that are stale (:func:`is_stale`)."""
    return frozenset(h.host.id for h in hosts if is_stale(h.view))


def age(since: float, now: float) -> str:
    """How long ago ``since`` was at ``now`` (one clock for both; pass the injected clock's
    time for wall-clock stamps): "12 s", "3 min". Never negative."""
    s = max(0, int(now - since))
    return f"{s} s" if s < 120 else f"{s // 60} min"


def duration(since: float, now: float) -> str:
    """How long ago ``since`` was, for spans up to days: "40 s", "12 min", "3 h", "5 d"
    (whole units, rounded down; never negative)."""
    s = max(0, int(now - since))
    if s < 120:
        return f"{s} s"
    if s < 120 * 60:
        return f"{s // 60} min"
    if s < 48 * 3600:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def clock_time(at: float, now: float) -> str:
    """A wall-clock time in local time: "14:02" on the day of ``now``, else with its date
    ("2026-11-30 14:02")."""
    stamp = time.localtime(at)
    same_day = stamp[:3] == time.localtime(now)[:3]
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", stamp)


def log_stamp(at: float) -> str:
    """The time of day of a line in the TUI's logs (events, actions): "14:02:05", local."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def differs_since(first_seen: float, now: float) -> str:
    """Since when a drift has been seen (wall clock, kept across restarts by the history):
    "differs since 14:02 (3 h)"."""
    return f"differs since {clock_time(first_seen, now)} ({duration(first_seen, now)})"


def timestamp(at: float, ms: bool = False) -> str:
    """A wall-clock time for machines and files, the one format of every face (watch, report,
    audit, history, every JSON): RFC 3339, local time with its UTC offset, to the second
    ("2026-12-02T14:02:05+01:00"), or with ``ms`` to the millisecond
    ("2026-12-02T14:02:05.250+01:00")."""
    return datetime.fromtimestamp(at, UTC).astimezone().isoformat(
        timespec="milliseconds" if ms else "seconds")


# --------------------------------------------------------------------------- transport


def transport(uri: str) -> str:
    """How a libvirt URI connects: tcp, tls, ssh, ... as written, "local" for a URI without a
    transport (the local socket), "?" for one that does not parse, "" for no URI."""
    if not uri:
        return ""
    try:
        return parse(uri).transport or "local"
    except UriError:
        return "?"


# --------------------------------------------------------------------------- acknowledged drift


def ack_text(reason: str, expires: date | None) -> str:
    """An acknowledgement in words: "acknowledged: licence server (until 2027-03-01)"."""
    return f"acknowledged: {reason}" + (f" (until {expires.isoformat()})" if expires else "")


def ack_expired_sentence(expires: date | None, rule: str, reason: str) -> str:
    """What every face and the log say when an acknowledgement rule has expired; ``rule``: the
    rule described (``AckRule.describe()``)."""
    return (f"acknowledgement expired on {expires}: {rule} ({reason}); "
            "the drifts it covered count again")


def ack_record(reason: str, expires: date | None) -> dict[str, Any]:
    """An acknowledgement for JSON: ``{"reason": ..., "expires": "2027-03-01" or null}``."""
    return {"reason": reason, "expires": expires.isoformat() if expires else None}


def ack_cell(kinds: Iterable[DriftKind], reason: str) -> str:
    """The VM table's drift cell when every drift of the row is acknowledged:
    "~ state: licence server" (the table cuts it to the column)."""
    return f"{ACK_MARK} {kinds_text(kinds)}: {reason}"


_ACTION_NOUN = {Action.SYNC: "sync", Action.SYNC_HOST: "host sync", Action.START: "start",
                Action.SHUTDOWN: "shutdown", Action.REBOOT: "reboot"}
_ACTION_LABEL = {Action.SYNC: "sync status", Action.SYNC_HOST: "sync host status",
                 Action.START: "start", Action.SHUTDOWN: "shut down", Action.REBOOT: "reboot"}


def action_noun(action: Action) -> str:
    """An action as a noun in a sentence: "resolved 4.1 s after sync"."""
    return _ACTION_NOUN[action]


def action_label(action: Action, force: bool = False) -> str:
    """An action as the operator picks it in a menu: "shut down (force)"."""
    return _ACTION_LABEL[action] + (" (force)" if force else "")
