"""The bridge from the engine to the widgets: engine events in, Textual messages out.

The engine calls its listeners on the event loop, sometimes outside Textual's context (libvirt's
events arrive by ``call_soon_threadsafe`` from libvirt's own thread); the listener here only
queues. The bridge runs as one worker in the app's context: it takes whatever has queued, keeps
the newest snapshot (with the rows of those it skips), and posts one :class:`Snapshot` and one
:class:`EngineEvents` to each widget that wants them, so a storm of events costs a few messages
per batch, not several per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from textual.message_pump import MessagePump

from vditui.core.events import EngineEvent, SnapshotReady
from vditui.core.models import VmRow
from vditui.ui.messages import EngineEvents, Snapshot, merge_rows, rows_of


class Bridge:
    """Queues engine events (:meth:`listen`) until :meth:`run` delivers them."""

    def __init__(self, snapshot_to: Sequence[MessagePump],
                 events_to: Sequence[MessagePump]) -> None:
        self._snapshot_to = tuple(snapshot_to)
        self._events_to = tuple(events_to)
        self._queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
        self.delivered = 0

    def listen(self, event: EngineEvent) -> None:
        """The engine's listener."""
        self._queue.put_nowait(event)

    @property
    def pending(self) -> bool:
        """Events are queued and not delivered yet."""
        return not self._queue.empty()

    async def run(self) -> None:
        """Deliver events until cancelled."""
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            self.deliver(batch)

    def deliver(self, batch: Sequence[EngineEvent]) -> None:
        """Post ``batch`` to the widgets, in order but for the snapshots, of which the newest
        goes (ahead of the rest: events newer than a snapshot are told by their ``seq``)."""
        snap: SnapshotReady | None = None
        rows: dict[str, VmRow] | None = {}
        others: list[EngineEvent] = []
        for e in batch:
            if isinstance(e, SnapshotReady):
                snap, rows = e, merge_rows(rows, rows_of(e))
            else:
                others.append(e)
        if snap is not None:
            for target in self._snapshot_to:
                target.post_message(Snapshot(snap, rows))
        if others:
            for target in self._events_to:
                target.post_message(EngineEvents(others))
        self.delivered += len(batch)
