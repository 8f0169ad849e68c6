"""The reconnect screen on the default scenario's ssh-only host reached as the demo reaches it
(``uris``: ssh without a key, then with the lab's key): the keyless attempt is listed as failed
with the ssh-copy-id hint, the keyed one works, and the host tree shows the ssh connection."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from vditui.demo import demo_host_uris
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.widgets.host_tree import HostTree
from vditui.ui.widgets.vm_table import VmTable

pytestmark = pytest.mark.lab

SIZE = (180, 48)


async def test_reconnect_on_the_ssh_host_lists_the_keyless_uri_as_failed(
        lab, make_app, settle, wait_for, ui):
    host = lab.host("ssh-only")
    if host.sshd is None:
        pytest.skip(f"the lab served ssh-only over tcp: {lab.fallbacks.get('ssh-only')}")
    keyless = host.ssh_uri_without_key
    # ssh (a handshake, then libvirt over it) within 1 s is tight on a loaded machine.
    app = make_app(lab, host_uris=demo_host_uris(lab), connect_timeout=5.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        tree = app.query_one(HostTree)

        def ssh_line() -> str:
            labels = [ui.plain(n.label) for n in tree._hosts.values()]
            return next(x for x in labels if "ssh-only" in x)

        # Connected, over ssh (the second URI). On a loaded machine the lab's sshd may refuse
        # the first attempt (it is still starting): the session's retry gets there.
        await wait_for(pilot, lambda: "● ssh" in ssh_line(), "ssh-only connected over ssh",
                       timeout=30)

        table = app.query_one(VmTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(ui.key_of(app, "remote-ssh-01")))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ReconnectScreen),
                       "the reconnect screen")
        screen = app.screen
        assert isinstance(screen, ReconnectScreen) and screen.host.name == "ssh-only"
        assert screen.uris[:2] == [keyless, host.ssh_uri]  # in the order they are tried
        await wait_for(pilot, lambda: all(u in screen.results for u in screen.uris),
                       "every candidate URI probed", timeout=30)
        await pilot.pause()
        rc = screen.query_one("#rc-table", DataTable)
        # Keyed by the full URI (the cell shows it shortened where it is long).
        rows = {str(rc.coordinate_to_cell_key((i, 0)).row_key.value):
                [ui.plain(c) for c in rc.get_row_at(i)[1:]] for i in range(rc.row_count)}
        assert rows[keyless][0] == "✗ ssh-auth"
        assert "ssh-copy-id" in rows[keyless][2]
        assert rows[host.ssh_uri][0] == "OK ssh"
        assert rows[host.uri][0] == "✗ refused"  # tcp: not served there

        rc.move_cursor(row=rc.get_row_index(keyless))
        await pilot.pause()
        detail = str(screen.query_one("#rc-detail").render())
        assert "ssh-auth: " in detail and "Permission denied (publickey" in detail
        assert "hint: no SSH key accepted: run `ssh-copy-id" in detail
