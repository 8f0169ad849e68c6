"""Each failure names its own URI: when every URI of a host fails, the view pairs the URI it
shows with that URI's own error, never one URI with another's error (it showed
``failed via qemu+tcp://…:16510/system — refused: unable to connect to server at '…:16509'``)."""

from __future__ import annotations

import asyncio
from typing import Any

import libvirt

from vditui.core import session as session_mod
from vditui.core.events import HostLink
from vditui.core.models import ConnState, VirtErrorKind

# Loopback only: if the fake below were ever bypassed (the open queued behind other tests'
# opens and run after the patch is undone), a real attempt must stay on this machine.
URIS = ["qemu+tcp://127.0.0.1:16510/system", "qemu+tcp://127.0.0.1:16509/system"]


def test_a_host_whose_every_uri_fails_shows_the_last_uri_with_its_own_error(monkeypatch):
    def refuse(uri: Any) -> Any:
        port = uri.split(":")[2].split("/")[0]
        # libvirtError takes its details from the thread's last libvirt error: on a pool
        # thread another test's failed open left one (seen: an ssh refusal of a lab host).
        libvirt.virResetLastError()
        raise libvirt.libvirtError(f"unable to connect to server at '127.0.0.1:{port}': "
                                   "Connection refused")

    monkeypatch.setattr(session_mod.virt, "open_connection", refuse)

    async def run() -> session_mod.HostSession:
        s = session_mod.HostSession("h1", "hv-01", URIS, session_mod.SessionSettings(
            connect_timeout=2, min_backoff=60), lambda _s: None)
        s.start()
        for _ in range(1000):  # each open may wait for a thread of the shared pool
            if s.state is ConnState.FAILED:
                break
            await asyncio.sleep(0.01)
        await s.stop()
        return s

    s = asyncio.run(run())
    view = s.view()
    assert view.error is not None and view.error.kind is VirtErrorKind.REFUSED
    assert view.uri == view.error.uri == URIS[1]
    assert "16509" in view.error.message
    line = HostLink(view, "hv-01", 0.0, tuple(URIS), True).describe()
    assert line.startswith(f"hv-01: failed {URIS[1]}: refused: ") and "16510" not in line
