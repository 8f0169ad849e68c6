"""The engine: the platform and every host's libvirt, fetched concurrently, reconciled live.

One stream of events serves both faces (the TUI and the headless commands): listeners get the
frozen events of :mod:`vditui.core.events` on the event loop, and send commands through the
engine's public methods; nothing else of it is public. A reconcile runs after every change, at
most once per ``debounce`` seconds, so an event storm costs one reconcile per tick, not one per
event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vditui.core.acks import AckRule
from vditui.core.act import Actor
from vditui.core.actions import Action, ActionError, ActionPlan, ActionResult
from vditui.core.estate import Estate, Listener
from vditui.core.events import PlatformFailed, SnapshotReady
from vditui.core.history import OPEN_RETRY, OPEN_RETRY_MAX, History
from vditui.core.history_db import HistoryError
from vditui.core.models import Comparison, HostView, VdiHost, VdiInventory
from vditui.core.port import EngineStats
from vditui.core.probe import ProbeResult
from vditui.core.session import cancel_and_wait
from vditui.core.settings import EngineSettings as EngineSettings
from vditui.core.vdi import VdiError
from vditui.core.vdi_actions import VdiActionClient
from vditui.core.virt import probe

log = logging.getLogger("vditui.engine")

__all__ = ["Engine", "EngineSettings", "EngineStats", "Listener"]


class Engine:
    """Runs the platform refresh loop and the reconcile loop over the :class:`Estate`, which
    holds the inventory, one :class:`HostSession` per host, the comparison, the drift tracker
    and the acknowledgements."""

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        client = VdiActionClient(settings.url, settings.username, settings.password,
                                 verify_ssl=settings.verify_ssl,
                                 connect_timeout=settings.connect_timeout,
                                 timeout=settings.call_timeout, page_size=settings.page_size,
                                 page_concurrency=settings.page_concurrency)
        self._client = client
        self._estate = Estate(settings, client)
        self._tasks: list[asyncio.Task[None]] = []
        self._actor = Actor(self._estate, settings)
        self._history_off = ""
        self._stopping = False

    # ------------------------------------------------------------------ listeners
    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every event, on the event loop (it must be quick)."""
        self._estate.listen(listener)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, watch: bool = True) -> None:
        """Fetch the platform once (raises :class:`VdiError` if that fails) and open every
        host's session. With ``watch``, keep refreshing the platform and reconciling.
        With ``history_path`` set, the history is opened first (see :meth:`_open_history`)."""
        if self._settings.history_path is not None and not self._history_open() \
                and not self._history_off:  # start() again (serve, platform down): once
            await self._open_history(self._settings.history_path, retry=watch)
        await self._estate.refresh_platform()
        error = self._estate.platform_error()
        if error is not None:
            raise error
        self._tasks.append(asyncio.create_task(self._reconcile_loop(), name="reconcile"))
        if watch:
            self._tasks.append(asyncio.create_task(self._vdi_loop(), name="vdi-refresh"))

    async def stop(self) -> None:
        """Stop every task and session, close the platform client, and write out and close
        the history."""
        self._stopping = True
        await asyncio.gather(*(cancel_and_wait(t) for t in self._tasks))
        await self._estate.stop_sessions()
        await self._client.aclose()
        history = self._estate.detach_history()
        if history is not None:
            await asyncio.to_thread(history.close)

    @property
    def history_off(self) -> str:
        """Why the history is not being recorded (one line naming the file), "" while it is or
        when none was asked for: for the faces to say once."""
        return self._history_off

    def _history_open(self) -> bool:
        return self._estate.history() is not None

    async def _open_history(self, path: Path, retry: bool = False) -> None:
        """Open the history (in a thread: SQLite may wait on another process) and record
        every event from now on; drifts it holds open seed the tracker. A history that cannot
        be opened is said (:attr:`history_off`, the log) and done without: monitoring goes on;
        with ``retry`` it is tried again in the background until it opens."""
        history = History(path, self._settings.url, self._settings.history_days)
        try:
            episodes = await asyncio.to_thread(history.open)
        except HistoryError as exc:
            self._history_off = f"history is off: {exc}" + (
                "; vditui keeps trying to open it" if retry else "")
            log.warning("%s", self._history_off)
            if retry:
                self._tasks.append(asyncio.create_task(self._retry_history(path),
                                                       name="history-retry"))
            return
        self._history_off = ""
        self._estate.attach_history(history, episodes)

    async def _retry_history(self, path: Path) -> None:
        """Try to open the history again, after ``OPEN_RETRY`` seconds and then less often,
        until it opens (a lock held by another process goes, a disk is freed); from then on
        it records, starting with the drifts as they stand."""
        delay = OPEN_RETRY
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, OPEN_RETRY_MAX)
            history = History(path, self._settings.url, self._settings.history_days)
            try:
                await asyncio.to_thread(history.open)
            except HistoryError as exc:
                log.debug("history still off: %s", exc)
                continue
            if self._stopping:
                await asyncio.to_thread(history.close)
                return
            history.catch_up()
            self._estate.attach_history(history, ())
            self._history_off = ""
            log.info("history: %s opened; recording from now on", path)
            self._estate.request_pass()  # a snapshot soon, for the catch-up
            return

    async def wait_settled(self, timeout: float | None = None) -> bool:
        """Wait until every host has been read or has failed once; then reconcile (a
        :class:`SnapshotReady` goes to the listeners). False if some host had not settled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._estate.settled():
            if deadline is not None and time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        self.reconcile_now()
        return self._estate.settled()

    async def check(self) -> SnapshotReady | None:
        """One pass under the grace period, for a one-shot command: reconcile now; if a drift is
        pending (grace > 0), wait until its grace has run out, re-read the platform and every
        host (reads begun after that moment), and reconcile again. The drift tracker is the
        live faces' own, so a drift :meth:`SnapshotReady.confirmed` here lasted ``grace``
        seconds (0: at once), exactly as on the TUI. Call after :meth:`wait_settled`."""
        snap = self.reconcile_now()
        deadline = self._estate.next_deadline()
        if snap is None or deadline is None:
            return snap
        # A little past the deadline, as the reconcile loop waits: the loop's timers may fire a
        # hair early, and a drift judged 1 ms before its grace ends is still pending.
        await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
        await self.refresh(wait=True)
        return self.reconcile_now()

    # ------------------------------------------------------------------ the platform
    async def _vdi_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.refresh_interval)
            try:
                await self._estate.refresh_platform()
            except Exception as exc:  # the refresh loop must outlive any bug
                log.exception("platform refresh failed")
                self._estate.publish(PlatformFailed(time.time(), f"{self._settings.url}: "
                                                    f"refresh failed: {type(exc).__name__}: "
                                                    f"{exc}"))

    async def refresh(self, wait: bool = False) -> None:
        """Re-read the platform and every host, in reads begun after this call: a read already
        in flight does not answer it (one more is queued, shared by the requests that arrive
        meanwhile). Returns once the platform is read; with ``wait``, also once every connected
        host is (bounded by the call timeout plus a few seconds)."""
        await asyncio.gather(self._estate.refresh_platform(),
                             self._estate.reread_hosts(None, wait=wait))

    # ------------------------------------------------------------------ what it holds
    def stats(self) -> EngineStats:
        """Counters and timings so far (round trips, reconnects, reads, passes)."""
        return self._estate.stats()

    def inventory(self) -> VdiInventory | None:
        """The platform's inventory as last read (None before the first read)."""
        return self._estate.inventory()

    def platform_error(self) -> VdiError | None:
        """Why the last platform read failed (None when it succeeded)."""
        return self._estate.platform_error()

    def latest_comparison(self) -> Comparison | None:
        """The comparison of the last snapshot (None before the first)."""
        return self._estate.comparison()

    def host_views(self) -> dict[str, HostView]:
        """Host id -> the host's libvirt view now (its domains, state, URI, last read)."""
        return self._estate.views()

    def host_names(self) -> dict[str, str]:
        """Host id -> name, for every host known to the platform or with a session."""
        return self._estate.host_names()

    # ------------------------------------------------------------------ commands
    async def probe_host(self, host_id: str, extra: list[str] | None = None) -> list[ProbeResult]:
        """Try ``extra`` then every URI the host's session tries, each on its own."""
        return await self.probe_uris([*(extra or []), *self._estate.uris(host_id)])

    async def probe_uris(self, uris: list[str]) -> list[ProbeResult]:
        """Try each of ``uris`` (once each, in parallel) with the connect timeout."""
        return await probe(list(dict.fromkeys(uris)), self._settings.connect_timeout)

    async def use_uri(self, host_id: str, uri: str) -> None:
        """Make the host's session connect with ``uri`` first, now."""
        await self._estate.use_uri(host_id, uri)

    def acknowledge(self, rule: AckRule) -> None:
        """Apply ``rule`` from now on, as if the profile had it: the next snapshot (within the
        debounce) marks the drifts it covers acknowledged. Saving it is the caller's business."""
        self._estate.acknowledge(rule)

    def find_host(self, name_or_ip: str) -> VdiHost | None:
        """The platform's host with this name, IP or id, from the last refresh."""
        return self._estate.find_host(name_or_ip)

    # ------------------------------------------------------------------ actions
    # The commands of vditui.core.act (which documents them): ActionError when read-only or
    # without an audit trail; act() re-reads, re-checks, sends once and follows up.
    def actions_for(self, keys: Sequence[str]) -> tuple[Action, ...]:
        """The actions that apply to these VM rows (keys); () in read-only mode."""
        return self._actor.actions_for(keys)

    def plan(self, action: Action, keys: Sequence[str], force: bool = False) -> ActionPlan:
        """What ``action`` would send for these rows, from the last snapshot (no I/O)."""
        return self._actor.plan(action, keys, force)

    async def act(self, plan: ActionPlan, *, wait: bool = False,
                  on_wait: Callable[[ActionError], None] | None = None) -> ActionResult:
        """Send ``plan`` (re-checked on fresh reads) once and follow each VM to agreement;
        another action on the platform refuses it, or with ``wait`` holds it back."""
        return await self._actor.act(plan, wait=wait, on_wait=on_wait)

    # ------------------------------------------------------------------ reconcile
    def reconcile_now(self) -> SnapshotReady | None:
        """Reconcile on the calling thread, now, in full; the snapshot also goes to the
        listeners. None before the platform was first read."""
        return self._estate.reconcile_now()

    async def _reconcile_loop(self) -> None:
        estate = self._estate
        while True:
            deadline = estate.next_deadline()
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) + 0.01
            await estate.wait_changed(wait)
            started = time.perf_counter()
            await estate.reconcile_pass()
            cost = time.perf_counter() - started
            # Pace by cost: a pass over 5,000 VMs takes tens of ms on the loop; under an event
            # storm, reconciling back to back would leave no time for the UI or the events
            # themselves (which each face shows at once, ahead of the next pass).
            await asyncio.sleep(max(self._settings.debounce, 3 * cost))
