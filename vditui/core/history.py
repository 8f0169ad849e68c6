"""The drift history: the engine's events written to SQLite by a thread of their own.

:class:`History` listens to the engine's events on the event loop and only queues what to
write (a tuple, no I/O): a writer thread takes the queue in batches, one transaction each, so
the engine never waits on SQLite, however slow the disk or however long another vditui process
holds the file. What is kept (see :mod:`vditui.core.history_db` for the schema):

* every drift: first seen, confirmed, acknowledged and resolved times, the values on each
  side, keyed by the platform's URL and the drift's ident (key, kind), with the VM's and
  host's names. A drift still pending when it vanishes (it healed within the grace period)
  leaves no row: only drift that was believed, or is open now, is history.
* host connection incidents: failed or lost, with the cause, until connected again;
* platform failures, until a refresh succeeds.

Every write is an upsert against the one open row of its episode, so two processes recording
the same drift make one episode, and a restart carries on with the rows it left open:
:meth:`History.open_drifts` gives the engine their first-seen times to seed its tracker with.
Times in the file are wall clock; the engine's drift tracker counts on the monotonic clock
(:func:`wall_time` converts).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vditui.core import history_db as hdb
from vditui.core.drift import DriftStatus
from vditui.core.events import (
    DriftChanged,
    EngineEvent,
    HostChanged,
    Ident,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.models import ConnState, Drift, VirtError

log = logging.getLogger("vditui.history")

PRUNE_EVERY = 3600.0
"""Seconds between two prunings of old rows (the first is at open)."""
BATCH = 500
"""Most writes in one transaction."""
WRITE_ATTEMPTS = 6
"""Tries of one transaction, each waiting out the busy timeout, before its rows are dropped."""

# The open row's first-seen time is the first writer's: a second process (or a restart, whose
# tracker carries it on) only adds what is new.
_UPSERT_DRIFT = """
INSERT INTO drift (platform, key, kind, subject, host, message, vdi_value, virt_value,
                   first_seen, confirmed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (platform, key, kind) WHERE resolved IS NULL DO UPDATE SET
    subject = excluded.subject, host = excluded.host, message = excluded.message,
    vdi_value = excluded.vdi_value, virt_value = excluded.virt_value,
    confirmed = COALESCE(confirmed, excluded.confirmed)
"""
_ACK_DRIFT = """
UPDATE drift SET acknowledged = COALESCE(acknowledged, ?), ack_reason = COALESCE(ack_reason, ?)
WHERE platform = ? AND key = ? AND kind = ? AND resolved IS NULL
"""
_RESOLVE_DRIFT = """
UPDATE drift SET resolved = ? WHERE platform = ? AND key = ? AND kind = ? AND resolved IS NULL
"""
# A pending drift that vanished: forgotten, unless another process has confirmed it meanwhile.
_FORGET_DRIFT = """
DELETE FROM drift WHERE platform = ? AND key = ? AND kind = ? AND resolved IS NULL
  AND confirmed IS NULL
"""
# An incident keeps the cause that began it (the first one known): a host lost to keepalive
# that then fails to reconnect was lost to keepalive.
_OPEN_INCIDENT = """
INSERT INTO incident (platform, scope, name, cause, started) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (platform, scope, name) WHERE ended IS NULL DO UPDATE SET
    cause = CASE WHEN cause = '' THEN excluded.cause ELSE cause END
"""
_CLOSE_INCIDENT = """
UPDATE incident SET ended = ? WHERE platform = ? AND scope = ? AND name = ? AND ended IS NULL
"""

_Write = tuple[str, tuple[Any, ...]]


OPEN_RETRY, OPEN_RETRY_MAX = 2.0, 60.0
"""Seconds before a history that could not be opened is tried again, doubling up to the max."""


def wall_time(monotonic_at: float, *, now_wall: float | None = None,
              now_monotonic: float | None = None) -> float:
    """A ``time.monotonic()`` reading as wall-clock time (Unix seconds)."""
    wall = time.time() if now_wall is None else now_wall
    mono = time.monotonic() if now_monotonic is None else now_monotonic
    return wall - (mono - monotonic_at)


def monotonic_time(wall_at: float, *, now_wall: float | None = None,
                   now_monotonic: float | None = None) -> float:
    """A wall-clock time as a ``time.monotonic()`` reading (the inverse of :func:`wall_time`)."""
    wall = time.time() if now_wall is None else now_wall
    mono = time.monotonic() if now_monotonic is None else now_monotonic
    return mono - (wall - wall_at)


class History:
    """One process's writer of the history file at ``path``, for the platform ``platform``.

    :meth:`open` (blocking: call it in a thread) opens the file and starts the writer;
    :meth:`record` takes the engine's events on the loop; :meth:`close` (blocking) writes
    what is queued and closes the file. ``clock`` (wall clock) dates pruning: rows that ended
    more than ``days`` days ago go, at open and every :data:`PRUNE_EVERY` seconds.
    """

    def __init__(self, path: Path, platform: str, days: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.path, self.platform, self.days, self.clock = path, platform, days, clock
        self._queue: queue.SimpleQueue[_Write | threading.Event | None] = queue.SimpleQueue()
        self._db: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        #: Drifts this process believes open in the file: ident -> status.
        self._open: dict[Ident, DriftStatus] = {}
        #: Those of them still pending: looked at on every snapshot, so kept apart (a few,
        #: where the open ones may be thousands).
        self._pending: set[Ident] = set()
        self._acked: set[Ident] = set()
        self._host_names: dict[str, str] = {}
        self._host_down: set[str] = set()
        self._platform_down: bool | None = None  # None: unknown (a failure may be left open)
        self._last_prune = 0.0
        #: Opened late (a retry): the next snapshot's drifts are written as they stand.
        self._catch_up = False
        #: Rows written and transactions committed, for tests and the log.
        self.written = 0
        self.failed = 0

    # ------------------------------------------------------------------ lifecycle (blocking)
    def open(self) -> list[hdb.DriftEpisode]:
        """Open (create, migrate) the file, prune it, start the writer; the platform's drifts
        still open in it. Raises :class:`~vditui.core.history_db.HistoryError`."""
        self._db = hdb.connect(self.path)
        try:
            self._prune()
            episodes = hdb.open_drifts(self._db, self.platform)
        except sqlite3.Error as exc:
            self._db.close()
            self._db = None
            raise hdb.HistoryError(f"{self.path}: cannot read the history: {exc}") from None
        for ep in episodes:
            self._open[(ep.key, ep.kind)] = (DriftStatus.CONFIRMED if ep.confirmed is not None
                                            else DriftStatus.PENDING)
            if ep.confirmed is None:
                self._pending.add((ep.key, ep.kind))
            if ep.acknowledged is not None:
                self._acked.add((ep.key, ep.kind))
        self._thread = threading.Thread(target=self._run, name="vditui-history", daemon=True)
        self._thread.start()
        return episodes

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written (blocking); False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        """Write what is queued and close the file (blocking)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._db is not None:
            self._db.close()
            self._db = None
            log.info("history %s: closed; %d rows written, %d failed", self.path, self.written,
                     self.failed)

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        db = self._db
        assert db is not None
        stop = False
        while not stop:
            wait = max(0.0, self._last_prune + PRUNE_EVERY - time.monotonic())
            try:
                first = self._queue.get(timeout=wait)
            except queue.Empty:
                self._safe_prune()
                continue
            batch: list[_Write] = []
            waiters: list[threading.Event] = []
            item: _Write | threading.Event | None = first
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(db, batch)
            for w in waiters:
                w.set()

    def _write(self, db: sqlite3.Connection, batch: list[_Write]) -> None:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with hdb.transaction(db):
                    for sql, args in batch:
                        db.execute(sql, args)
                self.written += len(batch)
                return
            except sqlite3.OperationalError as exc:
                # Another process held the file past the busy timeout: the batch is kept and
                # tried again (the engine is not waiting; its events queue up meanwhile).
                if not hdb.is_busy(exc) or attempt == WRITE_ATTEMPTS:
                    self._lost(batch, exc)
                    return
                log.info("history %s: busy (%s); trying again", self.path, exc)
            except sqlite3.Error as exc:
                self._lost(batch, exc)
                return

    def _lost(self, batch: list[_Write], exc: sqlite3.Error) -> None:
        # Lost rows are said in the log; the engine carries on (history is a record, not a
        # condition of monitoring).
        self.failed += len(batch)
        log.warning("history %s: %d rows not written: %s", self.path, len(batch), exc)

    def _prune(self) -> None:
        assert self._db is not None
        self._last_prune = time.monotonic()
        gone = hdb.prune(self._db, self.clock() - self.days * 86400.0)
        if gone:
            log.info("history %s: pruned %d rows older than %d days", self.path, gone, self.days)

    def _safe_prune(self) -> None:
        try:
            self._prune()
        except sqlite3.Error as exc:
            log.warning("history %s: pruning failed: %s", self.path, exc)

    # ------------------------------------------------------------------ events (on the loop)
    def _put(self, sql: str, *args: Any) -> None:
        self._queue.put((sql, args))

    def record(self, event: EngineEvent) -> None:
        """Queue what ``event`` changes in the history (quick: no I/O here)."""
        match event:
            case DriftChanged(at=at, change=ch, acknowledged=rule):
                self._drift_changed(at, ch.drift, ch.status, ch.since)
                if rule is not None:
                    self._ack(at, ch.drift.ident, rule.reason)
            case SnapshotReady():
                if self._catch_up:
                    self._record_standing(event)
                self._snapshot(event)
            case HostChanged(at=at, host=link):
                self._host_changed(at, link.name, link.state, link.view.error)
            case PlatformFailed(at=at, message=message):
                self._platform_down = True
                self._put(_OPEN_INCIDENT, self.platform, "platform", self.platform, message, at)
            case PlatformRefreshed(at=at, inventory=inv):
                self._host_names = inv.host_names()
                if self._platform_down is not False:
                    self._platform_down = False
                    self._put(_CLOSE_INCIDENT, at, self.platform, "platform", self.platform)

    def catch_up(self) -> None:
        """The file was opened after the engine started (a retry): write the drifts of the
        next snapshot as they stand, since their changes went by unrecorded."""
        self._catch_up = True

    def _record_standing(self, snap: SnapshotReady) -> None:
        self._catch_up = False
        self._host_names.update({hid: link.name for hid, link in snap.hosts.items()})
        for d in snap.comparison.drifts:
            state = snap.drifts.get(d.ident)
            if state is not None and d.ident not in self._open:
                self._drift_changed(snap.at, d, state.status, state.first_seen)

    def _drift_changed(self, at: float, d: Drift, status: DriftStatus, since: float) -> None:
        if status is DriftStatus.RESOLVED:
            self._open.pop(d.ident, None)
            self._pending.discard(d.ident)
            self._acked.discard(d.ident)
            self._put(_RESOLVE_DRIFT, at, self.platform, d.key, d.kind.value)
            return
        first_seen = wall_time(since, now_wall=at)
        confirmed = at if status is DriftStatus.CONFIRMED else None
        self._open[d.ident] = status
        if status is DriftStatus.PENDING:
            self._pending.add(d.ident)
        else:
            self._pending.discard(d.ident)
        self._put(_UPSERT_DRIFT, self.platform, d.key, d.kind.value, d.subject,
                  self._host_names.get(d.host_id, d.host_id), d.message, d.vdi_value,
                  d.virt_value, first_seen, confirmed)

    def _ack(self, at: float, ident: Ident, reason: str) -> None:
        if ident in self._acked:
            return
        self._acked.add(ident)
        self._put(_ACK_DRIFT, at, reason, self.platform, *ident)

    def _snapshot(self, snap: SnapshotReady) -> None:
        for ident, rule in snap.acknowledged.items():
            if ident in self._open:
                self._ack(snap.at, ident, rule.reason)
        # A pending drift gone from the comparison healed within grace: the tracker forgot it
        # without a word (a confirmed one gets its RESOLVED change right after this snapshot).
        for ident in [i for i in self._pending if i not in snap.drifts]:
            del self._open[ident]
            self._pending.discard(ident)
            self._acked.discard(ident)
            self._put(_FORGET_DRIFT, self.platform, *ident)

    def forget_missing(self, present: Iterable[Ident], at: float) -> None:
        """After the first complete pass: the file's open drifts that are no longer there went
        while no vditui watched; resolve them at ``at`` (a confirmed one) or forget them."""
        here = set(present)
        for ident, status in [(i, s) for i, s in self._open.items() if i not in here]:
            del self._open[ident]
            self._pending.discard(ident)
            self._acked.discard(ident)
            if status is DriftStatus.CONFIRMED:
                self._put(_RESOLVE_DRIFT, at, self.platform, *ident)
            else:
                self._put(_FORGET_DRIFT, self.platform, *ident)

    def _host_changed(self, at: float, name: str, state: ConnState,
                      error: VirtError | None) -> None:
        if state in (ConnState.FAILED, ConnState.RECONNECTING):
            cause = "" if error is None else f"{error.kind.value}: {error.message}"
            self._host_down.add(name)
            self._put(_OPEN_INCIDENT, self.platform, "host", name, cause, at)
        elif state is ConnState.CONNECTED:
            # Also after a restart: an incident left open by the last run ends here.
            self._host_down.discard(name)
            self._put(_CLOSE_INCIDENT, at, self.platform, "host", name)
