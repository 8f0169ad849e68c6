"""A scripted engine: the real engine's commands (:class:`~vditui.core.face.EngineFace`) over a
made-up estate (:class:`~vditui.core.fake_estate.Estate`), telling its faces the real typed
events of :mod:`vditui.core.events`, so the TUI and the benchmarks run without libvirt, a lab or
a platform.

What is real: the comparison (:func:`~vditui.core.reconcile.reconcile`), the drift tracker and
its grace period, acknowledgements (:class:`~vditui.core.acks.AckBook`), and which actions apply
and why one is refused (:mod:`vditui.core.act_rules`). What is made up: the sources. The world
changes when a test says so (:meth:`FakeEngine.set_domain`, :meth:`FakeEngine.set_host`,
:meth:`FakeEngine.fail_platform` ...) or on a timed script played from :meth:`FakeEngine.start`
(its steps: :mod:`vditui.core.fake_script`):

    script = [(0.5, vm_state("hv-1", "vm-a", VirtState.SHUTOFF)),
              (1.0, platform_fails("db down")),
              (2.0, host_state("hv-2", ConnState.CONNECTED))]
    engine = FakeEngine(settings, estate, script)

An action is accepted and makes the two sides agree (the platform follows libvirt for a sync,
both sides follow the action otherwise), unless :attr:`FakeEngine.action_errors` names the VM.
Nothing here imports Textual or the lab, nor libvirt beyond what the contract
(:mod:`vditui.core.events`) loads (tests/unit/test_fake_engine.py checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from types import MappingProxyType

from vditui.core.acks import AckBook, AckRule
from vditui.core.act_rules import applicable, exit_code, make_plan
from vditui.core.actions import (
    Action,
    ActionError,
    ActionPhase,
    ActionPlan,
    ActionResult,
)
from vditui.core.drift import DriftTracker
from vditui.core.events import (
    AckExpired,
    ActionUpdate,
    DomainChanged,
    DomainEvent,
    DriftChanged,
    EngineEvent,
    HostChanged,
    HostLink,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.face import EngineFace, Listener
from vditui.core.fake_estate import Estate
from vditui.core.incremental import carry_over, update_rows
from vditui.core.models import (
    ConnState,
    VdiHost,
    VdiVmStatus,
    VirtError,
    VirtErrorKind,
    VirtState,
    VmRow,
)
from vditui.core.probe import ProbeResult
from vditui.core.reconcile import reconcile
from vditui.core.settings import EngineSettings
from vditui.core.vdi_errors import VdiError

_EVENT_WORDS = {VirtState.RUNNING: "started", VirtState.SHUTOFF: "stopped",
                VirtState.PAUSED: "suspended", VirtState.CRASHED: "crashed"}
_AFTER = {Action.START: (VdiVmStatus.RUNNING, VirtState.RUNNING),
          Action.REBOOT: (VdiVmStatus.RUNNING, VirtState.RUNNING),
          Action.SHUTDOWN: (VdiVmStatus.OFF, VirtState.SHUTOFF)}
_PLATFORM_STATUS = {VirtState.RUNNING: VdiVmStatus.RUNNING, VirtState.PAUSED: VdiVmStatus.SUSPENDED}


Step = Callable[["FakeEngine"], None]
"""One change of the world, applied by the engine (the steps are in
:mod:`vditui.core.fake_script`)."""


class FakeEngine:
    """The engine's commands over ``estate``, playing ``script`` (seconds after start, step)."""

    def __init__(self, settings: EngineSettings, estate: Estate,
                 script: Sequence[tuple[float, Step]] = (), *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.estate, self.script = settings, estate, tuple(script)
        self.clock = clock
        #: URI -> what probing it answers (others fail as refused).
        self.probes: dict[str, ProbeResult] = {}
        #: VM name -> the platform's error for an action on it (an ``errorList`` entry).
        self.action_errors: dict[str, str] = {}
        #: Every command a face sent, in order (``("refresh",)``, ``("act", plan)`` ...).
        self.commands: list[tuple[object, ...]] = []
        self._listeners: list[Listener] = []
        self._tracker = DriftTracker(settings.grace)
        self._acks = AckBook(settings.ack)
        self._seq = 0
        self._platform_error: str | None = None
        self._started = False
        self._last: SnapshotReady | None = None
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: dict[str, str] = {}  # VM id -> the action running on it
        #: Domains whose lifecycle changed since the last pass (the incremental path), and
        #: whether anything else changed (a full pass), as the real engine keeps them.
        self._changed: set[tuple[str, str]] = set()
        self._need_full = True

    # ------------------------------------------------------------------ the face's commands
    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self, watch: bool = True) -> None:
        self.commands.append(("start", watch))
        if self._platform_error is not None:
            self.emit(PlatformFailed(self.clock(), self._platform_error))
            raise VdiError(self.settings.url, self._platform_error)
        self._started = True
        self.emit(PlatformRefreshed(self.clock(), self.estate.inventory()))
        for hid in self.estate.links:
            self.emit(HostChanged(self.clock(), self._link(hid)))
        self.reconcile_now()
        self._tasks.append(asyncio.create_task(self._reconcile_loop(), name="fake-reconcile"))
        if self.script:
            self._tasks.append(asyncio.create_task(self._play(), name="fake-script"))

    async def stop(self) -> None:
        self.commands.append(("stop",))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def wait_settled(self, timeout: float | None = None) -> bool:
        self.reconcile_now()
        return self._settled()

    async def check(self) -> SnapshotReady | None:
        snap = self.reconcile_now()
        deadline = self._tracker.next_deadline()
        if snap is None or deadline is None:
            return snap
        await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
        return self.reconcile_now()

    def reconcile_now(self) -> SnapshotReady | None:
        if not self._started:
            return None
        return self._publish()

    async def refresh(self) -> None:
        self.commands.append(("refresh",))
        if self._platform_error is not None:
            self.emit(PlatformFailed(self.clock(), self._platform_error))
        else:
            self._need_full = True
            self.emit(PlatformRefreshed(self.clock(), self.estate.inventory()))
        self._dirty.set()

    async def probe_host(self, host_id: str, extra: list[str] | None = None) -> list[ProbeResult]:
        return await self.probe_uris([*(extra or []), *self.estate.uris[host_id]])

    async def probe_uris(self, uris: list[str]) -> list[ProbeResult]:
        """What :attr:`probes` says of each URI; else the URI a connected host uses works,
        and any other is refused."""
        self.commands.append(("probe", tuple(uris)))
        est = self.estate
        working = {lk.uri: hid for hid, lk in est.links.items()
                   if lk.state is ConnState.CONNECTED}
        return [self.probes.get(u) or (
                    ProbeResult(u, True, 0.001, "10.0.0", est.names[working[u]]) if u in working
                    else ProbeResult(u, False, 0.001, error=VirtError(
                        VirtErrorKind.REFUSED, u, "unable to connect to server: Connection "
                        "refused")))
                for u in dict.fromkeys(uris)]

    async def use_uri(self, host_id: str, uri: str) -> None:
        self.commands.append(("use_uri", host_id, uri))
        est = self.estate
        est.uris[host_id] = (uri, *(u for u in est.uris[host_id] if u != uri))
        probed = self.probes.get(uri)
        ok = probed is not None and probed.ok
        self.set_host(est.names[host_id], ConnState.CONNECTED if ok else ConnState.FAILED,
                      None if ok else (probed.error if probed else None), uri=uri)

    def acknowledge(self, rule: AckRule) -> None:
        self.commands.append(("acknowledge", rule))
        self._acks.add(rule)
        self._dirty.set()

    @property
    def history_off(self) -> str:
        """The fake keeps no history and never fails to: always ""."""
        return ""

    def find_host(self, name_or_ip: str) -> VdiHost | None:
        return next((h for h in self.estate.hosts if name_or_ip in (h.name, h.ip, h.id)), None)

    def actions_for(self, keys: Sequence[str]) -> tuple[Action, ...]:
        if self.settings.read_only:
            return ()
        return applicable(self._rows(keys).values())

    def plan(self, action: Action, keys: Sequence[str], force: bool = False) -> ActionPlan:
        self._check_allowed()
        return make_plan(action, force, self._rows(keys).items(), self.estate.names,
                         self._in_flight)

    async def act(self, plan: ActionPlan) -> ActionResult:
        self.commands.append(("act", plan))
        self._check_allowed()
        action_id = secrets.token_hex(6)
        outcomes: dict[str, tuple[ActionPhase, str]] = {}

        def say(key: str, phase: ActionPhase, message: str) -> None:
            target = next(t for t in plan.targets() if t.key == key)
            outcomes[key] = (phase, message)
            self.emit(ActionUpdate(self.clock(), action_id, plan.action, plan.force, target,
                                   phase, message))

        for target, why in plan.refused:
            say(target.key, ActionPhase.REFUSED, why)
        ids = {t.vm_id for t in plan.send if t.vm_id}
        self._in_flight.update(dict.fromkeys(ids, action_id))
        try:
            for t in plan.send:
                say(t.key, ActionPhase.SENT, "sent")
            await asyncio.sleep(0)
            for t in plan.send:
                if t.name in self.action_errors:
                    say(t.key, ActionPhase.FAILED, self.action_errors[t.name])
                else:
                    say(t.key, ActionPhase.ACCEPTED, "accepted")
                    self._carry_out(plan.action, t.name)
            self.reconcile_now()
            for t in plan.send:
                if outcomes[t.key][0] is ActionPhase.ACCEPTED:
                    say(t.key, ActionPhase.RESOLVED, "the platform and libvirt agree")
        finally:
            for vm_id in ids:
                self._in_flight.pop(vm_id, None)
        return ActionResult(action_id, plan, outcomes, exit_code(outcomes, False))

    # ------------------------------------------------------------------ changing the world
    def set_domain(self, host: str, vm: str, state: VirtState) -> None:
        """Libvirt on ``host`` now has ``vm`` in ``state``: a lifecycle event, then a snapshot
        (within the debounce)."""
        hid = self.estate.host_id(host)
        doms = self.estate.domains[hid]
        i = next(i for i, d in enumerate(doms) if d.name == vm)
        old = doms[i]
        new = doms[i] = replace(old, state=state)
        if self.estate.links[hid].state is ConnState.CONNECTED:
            self._seq += 1
            self._changed.add((hid, new.uuid))
            now = self.clock()
            self.emit(DomainChanged(now, self._seq, DomainEvent(
                hid, new.uuid, vm, _EVENT_WORDS.get(state, "defined"), old, new, now), host))
            self._dirty.set()

    def set_platform_vm(self, vm: str, status: int) -> None:
        """The platform now records ``vm`` with ``status`` (seen at its next refresh, which
        this is)."""
        est = self.estate
        est.vms = [replace(v, status=status) if v.name == vm else v for v in est.vms]
        self._need_full = True
        self.emit(PlatformRefreshed(self.clock(), est.inventory()))
        self._dirty.set()

    def set_host(self, host: str, state: ConnState, error: VirtError | None = None, *,
                 uri: str = "") -> None:
        """The host's session is now ``state`` (with ``error`` when not connected)."""
        hid = self.estate.host_id(host)
        link = self.estate.links[hid]
        if state is ConnState.CONNECTED and link.state is not ConnState.CONNECTED:
            self.estate.read_at.pop(hid, None)  # read again now
        self.estate.links[hid] = replace(link, state=state, uri=uri or link.uri,
                                         error=None if state is ConnState.CONNECTED else error)
        self._need_full = True
        self.emit(HostChanged(self.clock(), self._link(hid)))
        self._dirty.set()

    def fail_platform(self, message: str) -> None:
        """The platform stops answering: every refresh fails with ``message``."""
        self._platform_error = f"{self.settings.url}: {message}"
        self.emit(PlatformFailed(self.clock(), self._platform_error))

    def recover_platform(self) -> None:
        """The platform answers again."""
        self._platform_error = None
        self._need_full = True
        self.emit(PlatformRefreshed(self.clock(), self.estate.inventory(), recovered=True))
        self._dirty.set()

    def emit(self, event: EngineEvent) -> None:
        """Tell every listener ``event`` (as the engine does: on the loop, in order)."""
        for fn in list(self._listeners):
            fn(event)

    @property
    def last(self) -> SnapshotReady | None:
        """The last snapshot published."""
        return self._last

    # ------------------------------------------------------------------ inside
    def _link(self, hid: str) -> HostLink:
        view = self.estate.view(hid, self.clock())
        connecting = view.state in (ConnState.CONNECTING, ConnState.RECONNECTING)
        return HostLink(view, self.estate.names[hid], time.monotonic() if connecting else 0.0,
                        self.estate.uris[hid], self._host_settled(hid))

    def _host_settled(self, hid: str) -> bool:
        return self.estate.links[hid].state not in (ConnState.IDLE, ConnState.CONNECTING)

    def _settled(self) -> bool:
        return all(self._host_settled(hid) for hid in self.estate.links)

    def _publish(self) -> SnapshotReady:
        """Compare, track the drifts, tell the listeners: as the real engine's pass, the
        lifecycle events alone re-judge only their rows (``incremental``), anything else
        compares everything and says which rows differ."""
        est = self.estate
        now, mono = self.clock(), time.monotonic()
        links = {hid: self._link(hid) for hid in est.links}
        views = {hid: lk.view for hid, lk in links.items()}
        inventory, previous = est.inventory(), self._last.comparison if self._last else None
        changed, full = self._changed, self._need_full
        self._changed, self._need_full = set(), False
        cmp, rows, incremental = None, None, False
        if previous is not None and not full:
            cmp = update_rows(previous, inventory, views, changed)
            if cmp is not None:
                where = {(r.virt_host_id, r.virt.uuid): r for r in cmp.vms if r.virt is not None}
                rows, incremental = tuple(where[c] for c in changed if c in where), True
        if cmp is None:
            cmp = reconcile(inventory, views)
            if previous is not None:
                cmp, rows = carry_over(previous, cmp)
        changes = self._tracker.update(cmp.drifts, mono)
        acked, expired = self._acks.apply(
            cmp.drifts, lambda: {h.id: (h.name, h.ip) for h in est.hosts}, date.fromtimestamp(now))
        for rule in expired:
            self.emit(AckExpired(now, rule))
        snap = self._last = SnapshotReady(
            now, self._seq, cmp, MappingProxyType(self._tracker.states()),
            MappingProxyType(links), rows, self._settled(), (), incremental, 0.0,
            MappingProxyType(acked), monotonic=mono)
        self.emit(snap)
        for ch in changes:
            self.emit(DriftChanged(now, ch, self._acks.rule_for(ch.drift, acked)))
        return snap

    async def _reconcile_loop(self) -> None:
        while True:
            deadline = self._tracker.next_deadline()
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) + 0.01
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), wait)
            self._dirty.clear()
            self._publish()
            await asyncio.sleep(self.settings.debounce)

    async def _play(self) -> None:
        began = time.monotonic()
        for at, step in sorted(self.script, key=lambda s: s[0]):
            await asyncio.sleep(max(0.0, began + at - time.monotonic()))
            step(self)

    def _rows(self, keys: Sequence[str]) -> dict[str, VmRow | None]:
        by_key = {r.key: r for r in self._last.comparison.vms} if self._last else {}
        return {k: by_key.get(k) for k in dict.fromkeys(keys)}

    def _check_allowed(self) -> None:
        if self.settings.read_only:
            raise ActionError("read-only mode (--read-only / read_only = true): actions are "
                              "disabled")
        if self.settings.audit_path is None:
            raise ActionError("no audit trail is set (audit_path): actions are refused, since "
                              "they could not be recorded")

    def _carry_out(self, action: Action, vm: str) -> None:
        """The platform did ``action`` to ``vm``: both sides now agree."""
        est = self.estate
        where = [(hid, d) for hid, doms in est.domains.items() for d in doms if d.name == vm]
        if action in (Action.SYNC, Action.SYNC_HOST):
            if where:  # the platform re-reads libvirt's state
                status = _PLATFORM_STATUS.get(where[0][1].state, VdiVmStatus.OFF)
                est.vms = [replace(v, status=int(status)) if v.name == vm else v
                           for v in est.vms]
        else:
            status, state = _AFTER[action]
            est.vms = [replace(v, status=int(status)) if v.name == vm else v for v in est.vms]
            for hid, d in where:
                if d.state is not state:
                    self.set_domain(est.names[hid], vm, state)
        self._need_full = True
        self.emit(PlatformRefreshed(self.clock(), est.inventory()))


_FACE: type[EngineFace] = FakeEngine  # mypy: the fake has every command of the real engine
