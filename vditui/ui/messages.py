"""The engine's events as Textual messages, posted by the bridge (see :mod:`vditui.ui.bridge`)
to each widget that shows them; every widget handles its own."""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message

from vditui.core.events import EngineEvent, SnapshotReady
from vditui.core.models import VmRow


class Snapshot(Message, bubble=False):
    """A new comparison (:class:`SnapshotReady`). A newer one replaces one still queued; the
    rows the older one changed are kept, so an incremental redraw misses none."""

    def __init__(self, snapshot: SnapshotReady, rows: dict[str, VmRow] | None) -> None:
        super().__init__()
        self.snapshot = snapshot
        #: The rows changed since the last snapshot the widget handled, by key; None: any row.
        self.rows = rows

    def can_replace(self, message: Message) -> bool:
        # Textual asks the queued message whether the next one supersedes it.
        if not isinstance(message, Snapshot):
            return False
        message.rows = merge_rows(self.rows, message.rows)
        return True


class EngineEvents(Message, bubble=False):
    """Every other event since the last batch, in the order the engine sent them."""

    def __init__(self, events: Sequence[EngineEvent]) -> None:
        super().__init__()
        self.events = events


def merge_rows(older: dict[str, VmRow] | None,
               newer: dict[str, VmRow] | None) -> dict[str, VmRow] | None:
    """The rows two successive snapshots changed (None: any)."""
    if older is None or newer is None:
        return None
    return {**older, **newer}


def rows_of(snap: SnapshotReady) -> dict[str, VmRow] | None:
    return None if snap.rows is None else {r.key: r for r in snap.rows}
