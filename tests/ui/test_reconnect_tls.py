"""The reconnect screen on the default scenario's TLS-only host: the lab's pkipath works, the
plain attempts say why they fail, and a typed URI with the wrong certificates gets its TLS kind
and hint on screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from vditui.core.models import VirtErrorKind
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.widgets.vm_table import VmTable

pytestmark = pytest.mark.lab

SIZE = (180, 48)
SYSTEM_CA = Path("/etc/pki/CA/cacert.pem")


async def test_reconnect_on_the_tls_host_shows_each_attempt(lab, make_app, settle, wait_for,
                                                            ui):
    if lab.host("tls-only").pki is None:
        pytest.skip(f"the lab served tls-only over tcp: {lab.fallbacks.get('tls-only')}")
    host = lab.host("tls-only")
    app = make_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one(VmTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(ui.key_of(app, "remote-tls-01")))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ReconnectScreen),
                       "the reconnect screen")
        screen = app.screen
        assert isinstance(screen, ReconnectScreen) and screen.host.name == "tls-only"
        await wait_for(pilot, lambda: all(u in screen.results for u in screen.uris),
                       "every candidate URI probed")
        await pilot.pause()
        rc = screen.query_one("#rc-table", DataTable)
        # By row key (the whole URI): the URI cell shows it cut to the column, told apart.
        rows = {key.value: ui.plain(rc.get_row(key)[1]) for key in rc.rows}
        assert rows[host.tls_uri] == "OK tls"
        assert rows[host.uri] == "✗ refused"
        plain_tls = host.tls_uri_with(None)
        if not SYSTEM_CA.exists():
            assert rows[plain_tls] == "✗ tls-cert"  # tls needs certificates
        # Every TLS kind's label fits the result column.
        width = rc.columns["result"].width  # type: ignore[index]
        assert width >= max(len(f"✗ {k.value}") for k in VirtErrorKind if k.value[:4] == "tls-")

        # A pkipath from another CA, typed by the operator.
        bad = host.tls_uri_with("unknown-ca")
        screen.query_one("#rc-input", Input).value = bad
        screen.query_one("#rc-input", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: bad in screen.results, "the typed URI probed")
        await pilot.pause()
        assert ui.plain(rc.get_row_at(rc.get_row_index(bad))[1]) == "✗ tls-unknown-ca"
        detail = str(screen.query_one("#rc-detail").render())
        assert "tls-unknown-ca: authentication failed" in detail
        assert "hint: " in detail and "unknown-ca/cacert.pem" in detail
