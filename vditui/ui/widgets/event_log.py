"""The event log: one line per lifecycle event, drift change, host and platform change, written in
batches a few times a second.

Lines wrap at the panel's width, never wider (RichLog's default minimum width is 78, which on a
38-column panel cut the middle out of every long line), and are wrapped again when the panel's
width changes, so no text is lost at any width."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from vditui.core import present
from vditui.core.actions import ActionPhase
from vditui.core.events import (
    AckExpired,
    ActionUpdate,
    DomainChanged,
    DriftChanged,
    EngineEvent,
    HostChanged,
    PlatformFailed,
    PlatformRefreshed,
)
from vditui.ui.messages import EngineEvents
from vditui.ui.pacing import Pacer

LOG_INTERVAL = 0.25  # the log is written at most this often (see _write_batch)
LOG_BATCH = 200  # ... and at most this many lines at a time
MAX_LOG_LINES = 2000
_DRIFT_STYLE = {"pending": "yellow", "confirmed": "bold red", "resolved": "green"}
_ACTION_STYLE = {ActionPhase.REFUSED: "yellow", ActionPhase.FAILED: "bold red",
                 ActionPhase.RESOLVED: "bold green", ActionPhase.UNRESOLVED: "bold red"}


class EventLog(RichLog):
    """Lines for the engine's events, stamped with the app's clock."""

    def __init__(self, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(max_lines=MAX_LOG_LINES, wrap=True, markup=False, min_width=1,
                         **kw)  # type: ignore[arg-type]
        self.clock = clock
        # Every line written, to wrap them again at a new width.
        self._lines: deque[Text] = deque(maxlen=MAX_LOG_LINES)
        self._wrapped_at = 0
        self._queued: list[Text] = []
        self._pacer = Pacer(self, LOG_INTERVAL, self._write_batch)

    @property
    def pending(self) -> bool:
        """Lines are queued and not written yet."""
        return self._pacer.pending

    def on_engine_events(self, message: EngineEvents) -> None:
        stamp = present.log_stamp(self.clock())
        lines = self._queued
        for e in message.events:
            line = _line(e, stamp)
            if isinstance(line, Text):
                lines.append(line)
            elif line:
                lines.extend(line)
        if lines:
            self._pacer.request()

    def note(self, line: Text) -> None:
        """Add a line of the app's own (a failed worker), with the engine's."""
        self._queued.append(line)
        self._pacer.request()

    def clear(self) -> EventLog:
        """Forget every line, shown or still queued."""
        self._queued.clear()
        self._lines.clear()
        super().clear()
        return self

    def on_resize(self, event: Resize) -> None:
        # Textual calls RichLog's handler as well (handlers run along the class's MRO).
        width = self.scrollable_content_region.width
        if width != self._wrapped_at and self._lines:
            self._wrapped_at = width
            super().clear()
            # Not self.write: the same lines again, not a new batch of the engine's.
            RichLog.write(self, Text("\n").join(self._lines), width=width)

    def _write_batch(self) -> None:
        # Each write is one batch of at most LOG_BATCH lines (a refresh that moves hundreds of
        # drifts queued 2,000 lines once, and their single write held the loop for 90 ms); the
        # rest follows LOG_INTERVAL later.
        if not self._queued or not self.is_attached:
            return
        if len(self._queued) > MAX_LOG_LINES:  # the log keeps no more: older lines could not show
            keep = MAX_LOG_LINES - 1
            # Short: a line that wraps would count twice against the log's line limit.
            self._queued = [Text(f"… {len(self._queued) - keep} earlier lines not shown "
                                 f"({MAX_LOG_LINES} kept)", style="dim"),
                            *self._queued[-keep:]]
        batch, self._queued = self._queued[:LOG_BATCH], self._queued[LOG_BATCH:]
        self._lines.extend(batch)
        width = self.scrollable_content_region.width
        self._wrapped_at = width
        self.write(Text("\n").join(batch), width=width or None)
        if self._queued:
            self._pacer.later()


def _line(e: EngineEvent, stamp: str) -> Text | list[Text] | None:
    match e:
        case DomainChanged(event=ev, host_name=host):
            old = ev.old.state.value if ev.old else "—"
            new = ev.new.state.value if ev.new else "gone"
            return Text(f"{stamp} {host} {ev.name}: {ev.event} ({old} → {new})")
        case DriftChanged(change=ch, acknowledged=ack) if ack is not None:
            d = ch.drift
            return Text(f"{stamp} drift {ch.status.value}: {d.subject}: {d.message} "
                        f"({present.ack_text(ack.reason, ack.expires)})", style="dim")
        case DriftChanged(change=ch):
            d, st = ch.drift, ch.status.value
            return Text(f"{stamp} drift {st}: {d.subject}: {d.message}", style=_DRIFT_STYLE[st])
        case AckExpired(rule=rule):
            return Text(f"{stamp} "
                        + present.ack_expired_sentence(rule.expires, rule.describe(), rule.reason),
                        style="bold yellow")
        case HostChanged(host=host):
            return Text(f"{stamp} {host.describe()}", style="cyan")
        case ActionUpdate(action=action, force=force, target=target, phase=phase, message=msg):
            what = f"{action.value}{' --force' if force else ''}"
            about = msg if msg.startswith(target.name) else f"{target.name}: {msg}"
            return Text(f"{stamp} {what} {phase.value}: {about}",
                        style=_ACTION_STYLE.get(phase, "cyan"))
        case PlatformFailed(message=message):
            return Text(f"{stamp} platform: {message}", style="bold red")
        case PlatformRefreshed(new_warnings=new, recovered=recovered):
            lines = [Text(f"{stamp} platform warning: {w}", style="bold yellow") for w in new]
            if recovered:
                lines.append(Text(f"{stamp} platform: reachable again", style="green"))
            return lines
    return None
