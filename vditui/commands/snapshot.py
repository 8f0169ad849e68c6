"""One pass of the engine for the commands that read the estate once (``check``, ``report``,
``baseline``, ``act``): start, wait until every host has been read or failed, take the
snapshot, stop."""

from __future__ import annotations

import sys
import time

from vditui.core.engine import Engine
from vditui.core.events import SnapshotReady
from vditui.core.selection import select
from vditui.core.settings import EngineSettings


async def settled_snapshot(settings: EngineSettings, grace: bool = True) -> SnapshotReady:
    """Start an engine, wait until every host has been read or failed, and take its snapshot;
    with ``grace``, under the grace period: until no drift is pending any more (or a bound,
    for drifts that come and go)."""
    engine = Engine(settings)
    try:
        await engine.start(watch=False)
        if engine.history_off:
            print(f"vditui: warning: {engine.history_off}", file=sys.stderr)
        # Every host has connect_timeout to answer; a hung one costs that, once, in parallel.
        await engine.wait_settled(settings.settle_timeout)
        if not grace:
            snap = engine.reconcile_now()
        else:
            # Engine.check waits for the earliest pending drift only: drifts first seen later
            # (a host read after the others, a hung one that timed out) would still be pending
            # after it, and which ones depended on timing (the same estate listed 1 drift in
            # one run, 14 in the next). So again, until none pends.
            until = time.monotonic() + 2 * settings.grace + settings.call_timeout + 5
            snap = await engine.check()
            while snap is not None and select(snap).pending and time.monotonic() < until:
                snap = await engine.check()
    finally:
        await engine.stop()
    assert snap is not None  # start() raised if the platform was never read
    return snap
