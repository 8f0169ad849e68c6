"""The platform's own verdict on an action: the tasks (events) a batch answer names.

A batch action (start, close, reboot) answers ``eventIdList``: one platform task per VM it took.
``GET /ocloud/v1/event/{id}`` tells whether that task failed and why (EventVO ``errorReason``).
The action follow-up asks, on each of its polls, about the tasks still open, so a task the
platform gave up on is reported at once in the platform's own words, instead of as "still
differs" when the action timeout runs out.

The spec contradicts itself on ``isSuccess`` (see :func:`vditui.core.vdi_parse.parse_event`):
a task counts as failed only when it carries an ``errorReason``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from vditui.core.actions import ActionTarget
from vditui.core.vdi_errors import VdiError
from vditui.core.vdi_parse import TaskEvent

log = logging.getLogger("vditui.tasks")

#: Tasks asked about at once (each poll asks only about the open ones).
CONCURRENCY = 8


class EventSource(Protocol):
    async def event(self, event_id: str) -> TaskEvent: ...


class TaskWatch:
    """The open platform tasks of one action and, once read, their verdicts."""

    def __init__(self, client: EventSource) -> None:
        self.client = client
        self.open: list[str] = []
        self.broken = False  # the event endpoint failed: stop asking, the follow-up goes on

    def add(self, event_ids: Iterable[str]) -> None:
        """The event ids of one batch answer."""
        self.open = list(dict.fromkeys([*self.open, *(e for e in event_ids if e)]))

    async def failures(self, pending: Mapping[str, ActionTarget]) -> list[tuple[ActionTarget,
                                                                               str]]:
        """Read the open tasks; each failed one whose VM is in ``pending`` (by platform id, else
        by name), with the platform's reason. Tasks with a verdict are not asked about again."""
        if not self.open or self.broken:
            return []
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(event_id: str) -> TaskEvent | None:
            async with sem:
                try:
                    return await self.client.event(event_id)
                except VdiError as exc:
                    log.info("task %s not read: %s", event_id, exc)
                    self.broken = True
                    return None

        events = [e for e in await asyncio.gather(*(one(i) for i in self.open)) if e]
        done = {e.id for e in events if e.done}
        self.open = [i for i in self.open if i not in done]
        by_name = {t.name: t for t in pending.values()}
        out = []
        for e in events:
            target = pending.get(e.vm_id) or (by_name.get(e.vm_name) if e.vm_name else None)
            if e.failed and target is not None:
                out.append((target, e.reason))
        return out
