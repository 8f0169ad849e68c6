"""The TUI driven by key presses: what the operator sees and what each key does.

Most tests run the app over the scripted engine with the lab's default scenario (``fake``); those
marked ``lab`` need real libvirtd (a hanging host, probing and adopting URIs, a real login) and
start their own lab on a random loopback subnet. Each app has a fixed clock, grace 0 and a
connect timeout of 1 s; each test waits for it to settle and asserts the values on the screen.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import socket
import stat
import time
import tomllib
from pathlib import Path

import pytest
from rich.console import Console
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, OptionList, RichLog, Static

from tests.live import live_host, live_hosts
from vditui.core.engine import EngineSettings
from vditui.core.events import HostLink, SnapshotReady
from vditui.core.models import ConnState
from vditui.lab.scenario import load_default
from vditui.ui.app import VdiApp
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.screens.simple import ExportScreen, HelpScreen, ProblemScreen
from vditui.ui.view import COLUMN_INDEX
from vditui.ui.widgets.host_tree import HostTree
from vditui.ui.widgets.vm_table import RESORT_EVERY, VmTable

SIZE = (160, 48)
FIELD_REPORT = ("lic", "ocloud01", "ocloud02", "win10_22h2001")
POOLS = {"default": ["ocloud"], "Teaching": ["hv-t1", "hv-t2", "hv-t3"],
         "Office": ["hv-hang", "hv-o1", "hv-o2", "hv-o3", "hv-refuse", "ssh-only", "tls-only"]}
#: 40 VMs in the scenario (with two templates, a recycled VM and a restore-point desktop, none
#: of them a drift); the two office-dup VMs match nothing by name (the name is not unique)
#: so each shows twice, once per side: 42 rows.
ROWS = 42
#: Rows with a drift: class-a-04, class-b-02, -03, -05, lab-gpu-02, stray-build, office-11, -12,
#: and the four office-dup rows.
DRIFT_ROWS = 16  # 12 with drift, and the 4 unchecked VMs of the two hosts that are down


def rendered(renderable: object) -> str:
    """A Rich renderable's text, as a wide console prints it."""
    console = Console(width=160, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def screen_text(svg: str) -> str:
    """The characters of a screenshot, tags stripped (one SVG text element per styled run)."""
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def pool_of(label: str) -> str:
    return label.split(" ", 1)[0]


# --------------------------------------------------------------------------- the main screen


async def test_main_screen_shows_every_vm_and_host(fake, make_fake_app, settle, wait_for, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)

        assert table.row_count == ROWS
        assert set(ui.table_names(app)) == {v.name for v in fake.scenario.vms}
        assert table.border_title == f"VMs {ROWS}/{ROWS} · worst first"

        a04 = ui.row_cells(app, "class-a-04")
        assert (a04["host"], a04["vdi"], a04["virt"], a04["drift"]) == (
            "hv-t1", "running ≠", "shutoff ≠", "! state")
        for name in FIELD_REPORT:
            cells = ui.row_cells(app, name)
            assert (cells["host"], cells["vdi"], cells["virt"], cells["drift"]) == (
                "ocloud", "running", "running", "ok"), name
        assert ui.row_cells(app, "ocloud01")["vcpu"] == "16"
        assert ui.row_cells(app, "class-b-02")["vcpu"] == "4≠8"
        assert ui.row_cells(app, "class-b-03")["mem"] == "8192≠16384"
        assert ui.row_cells(app, "class-b-05")["virt"] == "— ≠"
        assert ui.row_cells(app, "stray-build")["vdi"] == "— ≠"
        assert ui.row_cells(app, "lab-gpu-02")["host"] == "hv-t3≠hv-t2"
        off30 = ui.row_cells(app, "office-30")
        assert (off30["virt"], off30["drift"]) == ("?", "unchecked")

        labels = ui.tree_labels(app)
        assert {pool_of(p): [pool_of(h) for h in hosts] for p, hosts in labels.items()} == POOLS
        # The platform's 10 records on hv-t1 include a template and a restore-point desktop
        # that libvirt does not define (no drift): 10 on the platform, 8 in libvirt.
        assert ui.host_label(app, "hv-t1").startswith("hv-t1 ● tcp 10/8")
        assert "[offline]" in ui.host_label(app, "hv-o3")
        assert "timeout" in ui.host_label(app, "hv-hang")
        # A refused host is retried; between two attempts its label says why it failed.
        await wait_for(pilot, lambda: "✗ refused" in ui.host_label(app, "hv-refuse"),
                       "hv-refuse labelled refused", timeout=5)


async def test_drift_confirmed_after_grace_restyles_the_row(fake, make_fake_app, settle,
                                                            wait_for, ui):
    """With a grace period a drift is first pending (italic yellow), then confirmed (bold red):
    the cells whose text stays the same must be restyled too."""
    app = make_fake_app(fake, grace=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        key = ui.key_of(app, "class-a-04")
        await wait_for(pilot, lambda: ui.plain(table.get_cell(key, "drift")) == "! state",
                       "class-a-04's drift confirmed", timeout=5)
        for col in ("name", "vdi", "virt", "drift"):
            assert str(table.get_cell(key, col).style) == "bold red", col


# --------------------------------------------------------------------------- live updates


async def test_event_lands_in_place_while_filtered_and_scrolled(fake, make_fake_app, settle,
                                                                wait_for, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        box = app.query_one("#filter", Input)
        # By name: worst first moves a row whose drift changes, by design; this test is about
        # an event landing in place.
        await pilot.press("s")

        await pilot.press("slash", *"office", "enter")
        await pilot.pause()
        assert box.display and box.value == "office"
        assert table.has_focus
        names = ui.table_names(app)
        assert len(names) == 15 and all("office" in n for n in names)
        await pilot.press(*["down"] * 8)
        await pilot.pause()
        assert ui.table_names(app)[table.cursor_row] == "office-31"
        assert table.scroll_y > 0, "the table should have scrolled to show the cursor"
        before = (table.selected_key, table.scroll_y, table.rebuilds, table.cell_updates)
        assert ui.row_cells(app, "office-21")["virt"] == "shutoff"

        assert fake.act("hv-o3", "office-21", "start") == "running"
        await wait_for(pilot, lambda: ui.row_cells(app, "office-21")["virt"] == "running ≠",
                       "office-21's libvirt cell to show the start")
        await pilot.pause()

        cells = ui.row_cells(app, "office-21")
        assert (cells["vdi"], cells["drift"]) == ("off ≠", "! state")
        # Drawn, not only stored: the row's cached line was dropped and rendered again.
        line = next(ln for ln in screen_text(app.export_screenshot()).splitlines()
                    if "office-21" in ln)
        assert "running ≠" in line and "shutoff" not in line, line
        assert box.value == "office" and box.display
        assert table.selected_key == before[0] == ui.key_of(app, "office-31")
        assert table.scroll_y == before[1]
        assert table.rebuilds == before[2], "an event must not rebuild the table"
        assert table.cell_updates > before[3]
        assert table.has_focus
        log = app.query_one("#events", RichLog)
        # Lines wrap at the panel's width (80 columns here): read them as one text.
        text = " ".join(" ".join(line.text.split()) for line in log.lines)
        assert "office-21: started (shutoff → running)" in text


async def test_events_shown_row_by_row_match_a_full_render(fake, make_fake_app, settle, wait_for,
                                                           ui):
    """Lifecycle events go the incremental way (an engine pass re-judges only their rows, the
    table updates only those); a full render afterwards must find nothing left to change,
    drift styles included once their grace period has ended."""
    app = make_fake_app(fake, grace=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        assert app.engine is not None
        incremental: list[bool] = []
        app.engine.listen(lambda e: incremental.append(e.incremental)
                          if isinstance(e, SnapshotReady) else None)
        for host, name, action in (("hv-t1", "class-a-01", "destroy"),
                                   ("hv-o3", "office-21", "start"),
                                   ("hv-t2", "class-b-02", "suspend")):
            fake.act(host, name, action)
        want = {"class-a-01": ("shutoff ≠", "! state"), "office-21": ("running ≠", "! state"),
                "class-b-02": ("paused ≠", "! state, vCPU")}
        await wait_for(pilot, lambda: all(
            (ui.row_cells(app, n)["virt"], ui.row_cells(app, n)["drift"]) == w
            for n, w in want.items()), "three events shown with their drifts confirmed",
            timeout=10)
        assert any(incremental), "events should take the incremental path"
        assert str(table.get_cell(ui.key_of(app, "class-a-01"), "drift").style) == "bold red"
        await pilot.pause(RESORT_EVERY + 0.3)  # worst first's held-back re-sort, if any, is done
        shown = (table.rebuilds, table.cell_updates)
        table.set_filter(table.filter)  # every row judged again, as after a full pass
        assert (table.rebuilds, table.cell_updates) == shown


async def test_events_move_rows_in_and_out_of_drift_only(fake, make_fake_app, settle, wait_for, ui):
    """Under the drift-only filter an event that creates a drift adds its row, and one that
    heals a drift removes it (the row-by-row path hands over to a full render)."""
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        await pilot.press("d")
        await pilot.pause()
        assert "class-a-04" in ui.table_names(app) and "class-a-01" not in ui.table_names(app)
        fake.act("hv-t1", "class-a-04", "start")
        fake.act("hv-t1", "class-a-01", "destroy")
        await wait_for(pilot, lambda: "class-a-04" not in ui.table_names(app)
                       and "class-a-01" in ui.table_names(app), "the drift-only rows to follow")
        assert table.row_count == DRIFT_ROWS
        assert table.border_title == f"VMs {DRIFT_ROWS}/{ROWS} drift only · worst first"


async def test_d_toggles_drift_only(fake, make_fake_app, settle, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        assert app.comparison is not None
        with_drift = {r.name for r in app.comparison.vms if r.drifts}
        unchecked = {r.name for r in app.comparison.vms if not r.checked}
        assert unchecked and not unchecked & with_drift

        await pilot.press("d")
        await pilot.pause()
        assert table.row_count == DRIFT_ROWS == sum(1 for r in app.comparison.vms
                                                    if r.drifts or not r.checked)
        assert set(ui.table_names(app)) == with_drift | unchecked
        assert "class-a-01" not in with_drift
        assert table.border_title == f"VMs {DRIFT_ROWS}/{ROWS} drift only · worst first"

        await pilot.press("d")
        await pilot.pause()
        assert table.row_count == ROWS
        assert table.border_title == f"VMs {ROWS}/{ROWS} · worst first"


async def test_sort_keys(fake, make_fake_app, settle, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)

        def column(key: str) -> list[str]:
            col = COLUMN_INDEX[key]
            return [ui.plain(table.get_row_at(i)[col]) for i in range(table.row_count)]

        await pilot.press("s")
        await pilot.pause()
        names = ui.table_names(app)
        hosts_by_name = column("host")
        assert names == sorted(names)
        assert (table.sort_column, table.sort_reverse) == ("name", False)
        assert ("information", "sorted by VM") in ui.notifications(app)

        await pilot.press("S")
        await pilot.pause()
        assert ui.table_names(app) == sorted(names, reverse=True)
        assert table.sort_reverse

        await pilot.press("s")  # the next column: drift (beside the name, see view.COLUMNS)
        await pilot.pause()
        drifts = column("drift")
        assert drifts == sorted(drifts, key=str.lower) and drifts[0].startswith("!")
        assert table.sort_column == "drift"

        await pilot.press("s")  # the next column: host
        await pilot.pause()
        hosts = column("host")
        assert hosts == sorted(hosts) and hosts != hosts_by_name
        assert sorted(ui.table_names(app)) == names
        assert table.sort_column == "host"
        assert table.row_count == ROWS


# --------------------------------------------------------------------------- a hanging host


@pytest.mark.lab
async def test_hanging_host_does_not_block_the_operator(lab, make_app, wait_for, ui):
    # 4 s: the key presses below take about 2 s here (each filter change redraws the table),
    # and they must all happen while hv-hang is still connecting, on a slower machine too.
    app = make_app(lab, connect_timeout=4.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.comparison is not None and "hv-hang" in str(
            ui.tree_labels(app)), "the first comparison")
        assert app.engine is not None
        # The live host (the screen may lag it; the test wants the truth).
        hang = live_host(app.engine, "hv-hang")
        await wait_for(pilot, lambda: "connecting" in ui.host_label(app, "hv-hang"),
                       "hv-hang labelled connecting", timeout=2)
        await wait_for(pilot, lambda: all(
            h.view.read_at > 0 for h in _links(app) if h.name not in ("hv-hang", "hv-refuse"))
            and ui.row_cells(app, "class-a-04")["virt"] == "shutoff ≠"
            # The engine's links can be a flush ahead of the table: wait for both hosts' rows.
            and ui.row_cells(app, "class-b-02")["vcpu"] == "4≠8",
            "the healthy hosts read", timeout=2)
        assert hang.state is ConnState.CONNECTING

        table = app.query_one("#vms", VmTable)
        assert ui.row_cells(app, "class-b-02")["vcpu"] == "4≠8"
        assert ui.row_cells(app, "office-40")["virt"] == "?"
        await pilot.press("d")
        await pilot.pause()
        assert table.row_count == DRIFT_ROWS
        await pilot.press("d", "slash", *"class-a")
        await pilot.pause()
        assert app.query_one("#filter", Input).value == "class-a"
        # The filter applies once typing pauses (FILTER_DELAY), not on every key stroke.
        # (class-a-frozen and class-a-old: a restore-point desktop and a recycled VM.)
        await wait_for(pilot, lambda: sorted(ui.table_names(app)) == [
            *(f"class-a-0{i}" for i in range(1, 7)), "class-a-frozen", "class-a-old"],
            "the filter applied", timeout=1)
        # All of that happened while hv-hang was still trying to connect.
        assert hang.state is ConnState.CONNECTING and not hang.settled
        assert "connecting" in ui.host_label(app, "hv-hang")

        await wait_for(pilot, lambda: "✗ timeout" in ui.host_label(app, "hv-hang"),
                       "hv-hang labelled timeout", timeout=8)
        assert hang.error is not None and hang.error.kind.value == "timeout"
        # ... and what the faces are told says the same.
        error = _link(app, "hv-hang").view.error
        assert error is not None and error.kind.value == "timeout"


def _links(app: VdiApp) -> list[HostLink]:
    """Every host's connection, as the newest snapshot the app holds says."""
    assert app.snapshot is not None
    return list(app.snapshot.hosts.values())


def _link(app: VdiApp, name: str) -> HostLink:
    (link,) = [h for h in _links(app) if h.name == name]
    return link


# --------------------------------------------------------------------------- reconnecting


async def _open_reconnect(app: VdiApp, pilot, wait_for) -> ReconnectScreen:
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(app.screen, ReconnectScreen), "the reconnect screen")
    screen = app.screen
    assert isinstance(screen, ReconnectScreen)
    await wait_for(pilot, lambda: all(u in screen.results for u in screen.uris),
                   "every candidate URI probed")
    await pilot.pause()
    return screen


def _rc_rows(screen: ReconnectScreen, ui) -> dict[str, str]:
    table = screen.query_one("#rc-table", DataTable)
    return {ui.plain(table.get_row_at(i)[0]): ui.plain(table.get_row_at(i)[1])
            for i in range(table.row_count)}


async def test_reconnect_lists_candidates_with_probe_results(fake, make_fake_app, settle,
                                                             wait_for, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        first = ui.table_names(app)[0]  # worst first: class-a-04's state drift
        assert ui.row_cells(app, first)["host"] == "hv-t1"  # the cursor is on a VM of hv-t1
        screen = await _open_reconnect(app, pilot, wait_for)
        ip = fake.hosts["hv-t1"].ip
        assert screen.host.name == "hv-t1"
        rows = _rc_rows(screen, ui)
        assert list(rows) == [fake.hosts["hv-t1"].uri, f"test+ssh://root@{ip}/default",
                              f"test+tls://{ip}/default"]
        assert rows[fake.hosts["hv-t1"].uri] == "OK tcp"
        assert all(r.startswith("✗ ") for r in list(rows.values())[1:])
        detail = str(screen.query_one("#rc-detail").render())
        assert "works. a: adopt it now" in detail

        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ReconnectScreen)


@pytest.mark.lab
async def test_reconnect_typed_uri_adopt_and_save(lab, make_app, settle, wait_for, ui,
                                                  tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f'# the operator\'s own comment\n[profiles.lab]\nurl = "{lab.vdi_url}"\n'
                      f'username = "{lab.username}"\n')
    app = make_app(lab, config_path=config, profile_name="lab")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.engine is not None
        host_id = _link(app, "hv-refuse").host_id
        assert _link(app, "hv-refuse").state in (ConnState.FAILED, ConnState.CONNECTING)

        # Select the host in the tree.
        tree = app.query_one("#hosts", HostTree)
        tree.focus()
        node = next(h for p in tree.root.children for h in p.children
                    if h.data is not None and h.data.id == host_id)
        tree.move_cursor(node)
        await pilot.pause()
        assert app.selected_host_id() == host_id

        screen = await _open_reconnect(app, pilot, wait_for)
        assert screen.host.name == "hv-refuse"
        proxied = lab.hosts["hv-refuse"].uri
        assert _rc_rows(screen, ui)[proxied] == "✗ refused"

        # The operator knows libvirtd really listens on another port: type that URI.
        direct = lab.hosts["hv-refuse"].daemon.uri
        table = screen.query_one("#rc-table", DataTable)
        await pilot.press("i")
        await pilot.pause()
        box = screen.query_one("#rc-input", Input)
        assert box.has_focus
        box.cursor_blink = False
        await pilot.press(*direct, "enter")
        await wait_for(pilot, lambda: direct in screen.results, "the typed URI probed")
        await pilot.pause()
        assert _rc_rows(screen, ui)[direct] == "OK tcp"
        assert ui.plain(table.get_row_at(table.cursor_row)[0]) == direct  # the cursor is on it
        assert box.value == ""

        await pilot.press("a")
        await wait_for(pilot, lambda: _link(app, "hv-refuse").view.uri == direct
                       and _link(app, "hv-refuse").state is ConnState.CONNECTED,
                       "hv-refuse adopted the URI")
        assert live_hosts(app.engine)[host_id].uri == direct  # the session itself
        assert screen.adopted == direct
        assert f"now: {direct}  (adopted)" in str(screen.query_one("#rc-status").render())

        await pilot.press("w")
        await wait_for(pilot, lambda: "hv-refuse" in config.read_text(), "the config saved")
        text = config.read_text()
        assert '[profiles.lab.hosts."hv-refuse"]' in text
        assert text.startswith("# the operator's own comment\n")
        assert tomllib.loads(text)["profiles"]["lab"]["hosts"]["hv-refuse"]["uri"] == direct
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        await wait_for(pilot, lambda: any(m.startswith(f"saved {direct} for hv-refuse")
                                          for _, m in ui.notifications(app)), "saved notice")

        # An invalid URI: an error, and no new row.
        rows = table.row_count
        await pilot.press("i", *"no-scheme-here", "enter")
        await pilot.pause()
        assert table.row_count == rows
        assert any(sev == "error" for sev, _ in ui.notifications(app))
        assert "no-scheme-here" not in screen.results

        await pilot.press("escape")
        await pilot.pause()
        await wait_for(pilot, lambda: "● tcp" in ui.host_label(app, "hv-refuse"),
                       "hv-refuse connected in the tree")
        assert ui.row_cells(app, "office-30")["drift"] == "ok"


# --------------------------------------------------------------------------- export


async def _export(app: VdiApp, pilot, path: str, ui) -> None:
    await pilot.press("e")
    await pilot.pause()
    assert isinstance(app.screen, ExportScreen)
    box = app.screen.query_one("#export-path", Input)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(ui.FIXED_NOW))
    assert box.value == f"vditui-report-{stamp}.md"  # named after the app's clock
    box.value = path
    await pilot.press("enter")
    await pilot.pause()


async def test_export_json_csv_md_and_bad_extension(fake, make_fake_app, settle, wait_for, ui,
                                                    tmp_path: Path):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.comparison is not None
        names = sorted(r.name for r in app.comparison.vms)

        out = tmp_path / "report.json"
        await _export(app, pilot, str(out), ui)
        assert not isinstance(app.screen, ExportScreen)
        await wait_for(pilot, out.exists, "report.json written")
        data = json.loads(out.read_text())
        assert sorted(v["name"] for v in data["vms"]) == names
        a04 = next(v for v in data["vms"] if v["name"] == "class-a-04")
        assert (a04["vdi_state"], a04["libvirt_state"], a04["drift"]) == (
            "running", "shutoff", ["state"])
        assert stat.S_IMODE(out.stat().st_mode) == 0o600

        out = tmp_path / "report.csv"
        await _export(app, pilot, str(out), ui)
        await wait_for(pilot, out.exists, "report.csv written")
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert sorted(r["name"] for r in rows) == names

        out = tmp_path / "report.md"
        await _export(app, pilot, str(out), ui)
        await wait_for(pilot, out.exists, "report.md written")
        md = out.read_text()
        assert all(n in md for n in names)

        # A wrong extension keeps the dialog open, the reason under the field.
        bad = tmp_path / "report.txt"
        await _export(app, pilot, str(bad), ui)
        assert isinstance(app.screen, ExportScreen)
        error = app.screen.query_one("#export-error", Static)
        assert "use a name ending in .md, .json or .csv" in str(error.content)
        # A directory that does not exist is an error, never created.
        box = app.screen.query_one("#export-path", Input)
        box.value = str(tmp_path / "nowhere" / "report.md")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        assert "no such directory" in str(error.content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        assert not bad.exists() and not (tmp_path / "nowhere").exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "report.csv", "report.json", "report.md"]


# --------------------------------------------------------------------------- help and palette


async def test_help_and_command_palette(fake, make_fake_app, settle, wait_for, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "only VMs with drift" in rendered(app.screen.query_one("#help-body", Static).content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        palette = app.screen
        options = palette.query_one(OptionList)
        await wait_for(pilot, lambda: any("Drift only" in str(options.get_option_at_index(i)
                                                                .prompt)
                                          for i in range(options.option_count)),
                       "Drift only listed")
        await pilot.press(*"drift only")
        await wait_for(pilot, lambda: options.option_count > 0 and "Drift only" in str(
            options.get_option_at_index(0).prompt), "Drift only first")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette),
                       "the palette closed")
        await pilot.pause()
        assert app.filter.drift_only
        assert app.query_one("#vms", VmTable).row_count == DRIFT_ROWS


# --------------------------------------------------------------------------- problems


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _problem(app: VdiApp, pilot, wait_for) -> ProblemScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, ProblemScreen), "the problem screen")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ProblemScreen)
    return screen


@pytest.mark.lab
async def test_login_refused_shows_a_problem_screen(lab, wait_for):
    wrong = "not-" + lab.password
    settings = EngineSettings(url=lab.vdi_url, username=lab.username, password=wrong,
                              uri_templates=(lab.uri_template,), connect_timeout=1)
    app = VdiApp(settings, [], None, None, clock=lambda: 1_764_000_000.0)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _problem(app, pilot, wait_for)
        assert screen.title_text == "Login refused"
        text = screen_text(app.export_screenshot())
        assert "Login refused" in text and f"({lab.username})" in text
        assert "Traceback" not in text
        for secret in (wrong, hashlib.md5(wrong.encode()).hexdigest(), lab.password):
            assert secret not in text
        assert app.engine is None


async def test_unreachable_platform_shows_a_problem_screen(wait_for):
    url = f"http://127.0.0.1:{_closed_port()}"
    settings = EngineSettings(url=url, username="admin", password="s3cret-Pa55",
                              connect_timeout=1)
    app = VdiApp(settings, [], None, None, clock=lambda: 1_764_000_000.0)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _problem(app, pilot, wait_for)
        assert screen.title_text == "Cannot reach the platform"
        text = screen_text(app.export_screenshot())
        assert "Cannot reach the platform" in text and url in text
        assert "Traceback" not in text and "s3cret-Pa55" not in text


async def test_password_never_on_screen(fake, make_fake_app, settle, wait_for):
    app = make_fake_app(fake)
    secrets = (fake.password, hashlib.md5(fake.password.encode()).hexdigest())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        shots = [app.export_screenshot()]
        await _open_reconnect(app, pilot, wait_for)
        shots.append(app.export_screenshot())
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        shots.append(app.export_screenshot())
        await pilot.press("escape", "e")
        await pilot.pause()
        shots.append(app.export_screenshot())
    for svg in shots:
        text = screen_text(svg)
        assert fake.vdi_url in text and f"as {fake.username}" in text  # the reading works
        for secret in secrets:
            assert secret not in svg and secret not in text
            assert html.escape(secret) not in svg


def test_scenario_is_the_one_these_tests_describe():
    """The constants above are about the default scenario; say so if it changes."""
    scen = load_default().without_driver("qemu")
    assert len(scen.vms) == 40
    assert sorted(h.name for h in scen.hosts) == sorted(h for hs in POOLS.values() for h in hs)
