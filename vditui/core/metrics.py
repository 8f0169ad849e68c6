"""What ``vditui serve`` exports, kept from the engine's events: pure data, no Prometheus, no I/O.

:class:`MetricsState` listens to the engine (on the event loop) and keeps the latest of
everything under a lock; :meth:`MetricsState.families` (called from the HTTP server's threads,
at scrape time) turns it into :class:`Family` values that ``vditui.commands.serve_metrics`` hands to
prometheus-client, and :meth:`MetricsState.health` answers ``/healthz``. Nothing is computed
per event beyond a counter: drift counts are taken from the latest snapshot when scraped.

The drifts are :func:`vditui.core.selection.select`'s, as ``check`` and the report count them.
Acknowledged drifts are counted in their own family (``vditui_drifts_acknowledged``), never in
``vditui_drifts`` nor in the per-drift series that alerts fire on. The series each host and
each drift costs are bounded: see the budget in docs/monitoring.md.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from vditui.core.events import (
    DomainChanged,
    EngineEvent,
    HostChanged,
    HostLink,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.models import ConnState, DriftKind
from vditui.core.present import transport
from vditui.core.selection import DriftNow, Selection, select
from vditui.core.vdi_facts import affected_users, alarm_counts, pool_usage

PREFIX = "vditui_"

Labels = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric and its samples. A counter's ``name`` has no ``_total`` (the exporter adds
    it, as prometheus-client does)."""

    name: str
    kind: Literal["gauge", "counter"]
    help: str
    labels: Labels
    samples: tuple[tuple[Labels, float], ...]


@dataclass(frozen=True, slots=True)
class Health:
    """``/healthz``'s answer: ok only when the platform was read recently; ``reason`` is one
    line either way."""

    ok: bool
    reason: str


class MetricsState:
    """The latest state of one engine, for scrapes. ``on_event`` runs on the event loop;
    ``families`` and ``health`` on any thread.

    ``stale_after``: seconds after the last good platform refresh past which the data counts
    as stale (``/healthz`` answers 503); ``serve`` passes ``2 * refresh_interval +
    call_timeout``, room for one failed refresh. ``clock`` (monotonic) is injectable for
    tests; first-seen times come from each snapshot (:meth:`SnapshotReady.first_seen_at`).
    """

    def __init__(self, stale_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._snap: SnapshotReady | None = None
        self._links: dict[str, HostLink] = {}
        self._platform_ok: float | None = None  # monotonic time of the last good refresh
        self._platform_error = ""  # the last failure's message while the platform is down
        self._pass_seconds: float | None = None
        self._events: Counter[tuple[str, str]] = Counter()
        self._reconnects: Counter[str] = Counter()
        self._connected_once: set[str] = set()

    # ------------------------------------------------------------------ the engine's side
    def on_event(self, e: EngineEvent) -> None:
        """The engine's listener: quick, a few assignments under the lock."""
        with self._lock:
            match e:
                case SnapshotReady():
                    self._snap = e
                    self._links = dict(e.hosts)
                    if not e.incremental:
                        self._pass_seconds = e.took
                case HostChanged(host=link):
                    self._links[link.host_id] = link
                    if link.state is ConnState.CONNECTED:
                        # Only a connection made again after one was lost is a reconnect.
                        if link.host_id in self._connected_once:
                            self._reconnects[link.name] += 1
                        self._connected_once.add(link.host_id)
                case DomainChanged(event=ev, host_name=host):
                    self._events[(host, ev.event)] += 1
                case PlatformRefreshed():
                    self._platform_ok, self._platform_error = self._clock(), ""
                case PlatformFailed(message=message):
                    self._platform_error = message

    # ------------------------------------------------------------------ the scrape's side
    def health(self) -> Health:
        """Healthy when the platform was read within ``stale_after`` seconds."""
        with self._lock:
            ok_at, error = self._platform_ok, self._platform_error
        if ok_at is None:
            return Health(False, "platform not read yet" + (f": {error}" if error else ""))
        age = self._clock() - ok_at
        if age > self._stale_after:
            return Health(False, f"platform not read for {age:.0f} s (limit "
                                 f"{self._stale_after:.0f} s)" + (f": {error}" if error else ""))
        tail = f"; last refresh failed: {error}" if error else ""
        return Health(True, f"ok: platform read {age:.0f} s ago{tail}")

    def families(self) -> list[Family]:
        """Every metric as it stands now (without build info, which the exporter adds)."""
        with self._lock:
            snap, links = self._snap, dict(self._links)
            ok_at, down = self._platform_ok, bool(self._platform_error)
            took = self._pass_seconds
            events, reconnects = Counter(self._events), Counter(self._reconnects)
        mono = self._clock()
        names = {hid: lk.name for hid, lk in links.items()}
        if snap is not None:
            names.update((h.host.id, h.host.name) for h in snap.comparison.hosts)
        out = _drift_families(snap, names) + _vdi_families(snap)
        ordered = sorted(links.values(), key=lambda lk: lk.name)
        out.append(_family(
            "host_up", "gauge", "1 when vditui holds a working libvirt connection to the host, "
            "else 0", ("host",),
            (((lk.name,), float(lk.state is ConnState.CONNECTED)) for lk in ordered)))
        # The transport changes with the URI while the host stays the same: an info series of
        # its own, so host_up keeps one series per host (join on host to see both).
        out.append(_family(
            "host_info", "gauge", "Always 1; transport: how vditui's libvirt connection to the "
            "host goes (tcp, tls, ssh, ...; empty before the first try)", ("host", "transport"),
            (((lk.name, transport(lk.view.uri)), 1.0) for lk in ordered)))
        out += _inventory(snap)
        # A refresh still running past its time (a platform dripping its answer) is no success:
        # 0 once the last good read is older than ``stale_after``, as /healthz says.
        up = ok_at is not None and not down and mono - ok_at <= self._stale_after
        out.append(_family("platform_up", "gauge",
                           "1 when the last read of the platform's API succeeded and is recent "
                           "(within 2 refresh intervals and the call timeout), else 0", (),
                           [((), float(up))]))
        out.append(_family(
            "platform_refresh_age_seconds", "gauge",
            "Seconds since the platform's API was last read successfully (absent before)", (),
            [] if ok_at is None else [((), max(0.0, mono - ok_at))]))
        out.append(_family(
            "pass_duration_seconds", "gauge",
            "Seconds the last complete pass took (reconcile of every VM and drift tracking)",
            (), [] if took is None else [((), took)]))
        out.append(_family("lifecycle_events", "counter",
                           "libvirt lifecycle events received, by host and event", ("host",
                                                                                    "event"),
                           ((k, float(n)) for k, n in sorted(events.items()))))
        hosts = sorted({lk.name for lk in links.values()} | set(reconnects))
        out.append(_family("host_reconnects", "counter",
                           "Times a host's lost libvirt connection was made again", ("host",),
                           (((h,), float(reconnects[h])) for h in hosts)))
        return out


def _family(name: str, kind: Literal["gauge", "counter"], doc: str, labels: Labels,
            samples: Iterable[tuple[Labels, float]]) -> Family:
    return Family(PREFIX + name, kind, doc, labels, tuple(samples))


def _inventory(snap: SnapshotReady | None) -> list[Family]:
    """How big the estate is and how much of it is read: hosts, VMs, VMs not checked."""
    sel = None if snap is None else select(snap)

    def one(value: Callable[[Selection], int]) -> list[tuple[Labels, float]]:
        return [] if sel is None else [((), float(value(sel)))]

    return [
        _family("hosts", "gauge", "Hosts the platform lists", (), one(lambda s: s.hosts)),
        _family("hosts_unreachable", "gauge", "Hosts whose libvirt could not be read (their "
                "unreachable drift not acknowledged)", (),
                one(lambda s: len(s.hosts_unreachable))),
        _family("vms", "gauge", "VMs of the comparison (either side's)", (),
                one(lambda s: s.vms)),
        _family("vms_unchecked", "gauge", "VMs not checked: their host could not be read", (),
                one(lambda s: s.vms_unchecked)),
    ]


def _drift_families(snap: SnapshotReady | None, names: dict[str, str]) -> list[Family]:
    """The drifts now (:func:`vditui.core.selection.select`, as ``check`` counts them): by
    kind, every kind exported, zeros included (a sum or an alert never meets a missing
    series); pending and acknowledged ones apart, by kind too; the count per host; and one
    series per drift that counts, its first-seen time, for alerts that name the VM (keyed like
    the drift itself: several VMs may share a name). Nothing per host and kind, nothing
    per status: see the series budget in docs/monitoring.md."""
    sel = Selection((), (), (), 0, 0, 0, ()) if snap is None else select(snap)

    def by_kind(group: Iterable[DriftNow]) -> Iterable[tuple[Labels, float]]:
        n = Counter(d.drift.kind for d in group)
        return () if snap is None else (((k.value,), float(n[k])) for k in DriftKind)

    per_host = Counter(d.host or d.drift.host_id for d in sel.counted)
    hosts = sorted(set(names.values()) | set(per_host))
    seen = sorted(((d.drift.key, d.drift.subject, d.drift.kind.value,
                    d.host or d.drift.host_id), d.since)
                  for d in sel.counted if d.since is not None)
    return [
        _family("drifts", "gauge", "Drifts that count (past the grace period, or a host that "
                "cannot be read; not acknowledged), by kind", ("kind",), by_kind(sel.counted)),
        _family("drifts_pending", "gauge", "Drifts within the grace period (not counted yet), "
                "by kind", ("kind",), by_kind(sel.pending)),
        _family("drifts_acknowledged", "gauge", "Drifts an acknowledgement rule covers (they "
                "do not count in vditui_drifts), by kind", ("kind",), by_kind(sel.acknowledged)),
        _family("host_drifts", "gauge", "Drifts that count, by host", ("host",),
                (((h,), float(per_host[h])) for h in hosts)),
        _family("drift_first_seen_timestamp_seconds", "gauge", "When each drift that counts "
                "was first seen (Unix time), by key (the VM's UUID or platform id, or the "
                "host's id), subject (VM or host name), kind and host",
                ("key", "subject", "kind", "host"), seen),
    ]


def _vdi_families(snap: SnapshotReady | None) -> list[Family]:
    """Who is affected, the platform's alarms, and desktop pools (issue 20): a handful of
    series, one per alarm level and per pool, never one per user."""
    if snap is None:
        return []
    cmp = snap.comparison
    pools = pool_usage(cmp)
    return [
        _family("affected_users", "gauge",
                "Users connected right now to a VM that has a drift (user-facing drift)", (),
                [((), float(len(affected_users(cmp.vms))))]),
        _family("platform_alarms", "gauge", "The platform's live alarms, by level",
                ("level",), (((lv,), float(n)) for lv, n in alarm_counts(cmp.alarms).items())),
        _family("pool_desktops", "gauge",
                "Desktops in each desktop pool as the platform counts them: amount (all) and "
                "used", ("pool", "count"),
                (((p.name, k), float(v)) for p in pools
                 for k, v in (("amount", p.amount), ("used", p.used)) if v is not None)),
        _family("pool_drifts", "gauge", "Drifts on the desktops of each desktop pool",
                ("pool",), (((p.name,), float(p.drifts)) for p in pools)),
    ]
