"""One pass of the engine for the commands that read the estate once (``check``, ``report``,
``baseline``, ``act``): start, wait until every host has been read or failed, take the
snapshot, stop."""

from __future__ import annotations

from vditui.core.engine import Engine
from vditui.core.events import SnapshotReady
from vditui.core.settings import EngineSettings


async def settled_snapshot(settings: EngineSettings, grace: bool) -> SnapshotReady:
    """Start an engine, wait until every host has been read or failed, and take its snapshot;
    with ``grace``, under the grace period (see :meth:`Engine.check`)."""
    engine = Engine(settings)
    try:
        await engine.start(watch=False)
        # Every host has connect_timeout to answer; a hung one costs that, once, in parallel.
        await engine.wait_settled(settings.connect_timeout + settings.call_timeout + 5)
        snap = await engine.check() if grace else engine.reconcile_now()
    finally:
        await engine.stop()
    assert snap is not None  # start() raised if the platform was never read
    return snap
