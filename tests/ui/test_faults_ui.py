"""Faults seen in the TUI: real faults in the lab (fault proxies, killed daemons, a misbehaving
platform) while the app runs, and what the operator sees during and after each.

During a fault: the host's label says the cause and how old its data is, its rows say "stale"
and mark the libvirt state with "*", the diff panel gives the data's age, the header names the
platform's failure with the age of the platform data, and keys still answer. Afterwards every
mark goes away by itself. The app must never crash (``run_test`` re-raises, and each test also
checks ``app._exception``).
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import replace

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import RichLog

from vditui.lab.scenario import Scenario, load_default
from vditui.lab.vdi_server import MSG_TOKEN
from vditui.ui.app import VdiApp
from vditui.ui.widgets.diff_panel import DiffPanel
from vditui.ui.widgets.top_bar import TopBar
from vditui.ui.widgets.vm_table import VmTable

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

AGE = r"data \d+ s old"


def subset(scenario: Scenario, hosts: list[str]) -> Scenario:
    keep = set(hosts)
    specs = tuple(h for h in scenario.hosts if h.name in keep)
    pools = {h.pool for h in specs}
    vms = tuple(v for v in scenario.vms if (v.vdi is None or v.vdi.host in keep)
                and (v.virt is None or v.virt.host in keep))
    return replace(scenario, name="faults-" + "-".join(hosts), hosts=specs,
                   pools=tuple(p for p in scenario.pools if p.id in pools), vms=vms)


def header(app: VdiApp) -> str:
    return str(app.query_one("#top", TopBar).render())


def screen_text(app: VdiApp) -> str:
    """The characters on screen (a screenshot with its tags stripped)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def log_lines(app: VdiApp) -> list[str]:
    """Every line the app wrote to its event log, whole (the panel clips them to its width)."""
    log = app.query_one("#events", RichLog)
    written: list[str] | None = getattr(log, "written", None)
    if written is None:
        written = log.written = []  # type: ignore[attr-defined]
        write = log.write

        def spy(content: object, *args: object, **kwargs: object) -> object:
            written.append(content.plain if isinstance(content, Text) else str(content))
            return write(content, *args, **kwargs)  # type: ignore[arg-type]

        log.write = spy  # type: ignore[method-assign]
    return list(written)


def diff_text(app: VdiApp) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(app.query_one("#diff", DiffPanel).content)
    console.file.close()
    return console.export_text()


def all_cells(app: VdiApp, ui) -> list[dict[str, str]]:
    """Every row's cells, by name and host (worst first may not have re-sorted yet: the rows
    and their cells are compared here, not their order)."""
    table = app.query_one("#vms", VmTable)
    cols = [str(c.key.value) for c in table.ordered_columns]
    rows = [dict(zip(cols, (ui.plain(c) for c in table.get_row_at(i)), strict=True))
            for i in range(table.row_count)]
    return sorted(rows, key=lambda r: (r["name"], r["host"], r["vdi"], r["virt"]))


# --------------------------------------------------------------------------- hosts


async def test_host_faults_marked_stale_then_cleared(lab, make_app, settle, wait_for, ui):
    """Refused, hung (at connect and mid-session), cut and killed hosts, all at once."""
    app = make_app(lab, keepalive_interval=1, keepalive_count=2)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        log_lines(app)  # from now on, every log line is kept whole
        table = app.query_one("#vms", VmTable)
        # At connect: refused and hung hosts say why; they were never read, so no data age.
        assert re.match(r"hv-refuse ✗ refused 2/- !1$", ui.host_label(app, "hv-refuse"))
        assert re.match(r"hv-hang ✗ timeout 2/- !1$", ui.host_label(app, "hv-hang"))
        assert (ui.row_cells(app, "office-30")["virt"], ui.row_cells(app, "office-30")["drift"]) \
            == ("?", "unchecked")
        rows = table.row_count

        t_kill = time.monotonic()
        await ui.to_thread(lab.kill_daemon, "hv-t3")
        await ui.to_thread(lab.set_fault, "hv-t1", "refuse")
        await ui.to_thread(lab.set_fault, "hv-t2", "hang")
        await ui.to_thread(lab.cut, "hv-o1")

        t2_labels: set[str] = set()

        def t2_failed() -> bool:
            label = ui.host_label(app, "hv-t2")
            t2_labels.add(label)
            return "✗ timeout" in label

        await wait_for(pilot, lambda: re.search(rf"^hv-t1 ✗ refused {AGE} ",
                                                ui.host_label(app, "hv-t1")),
                       "hv-t1 labelled refused, with its data's age", timeout=3)
        await wait_for(pilot, lambda: re.search(rf"^hv-t3 ✗ connection-lost {AGE} ",
                                                ui.host_label(app, "hv-t3")),
                       "hv-t3 labelled connection-lost, with its data's age", timeout=3)
        await wait_for(pilot, t2_failed, "hv-t2 (hung) to time out", timeout=7)
        # Keepalive noticed the silence: reconnecting (with the data's age), then failed.
        assert any(re.search(rf"^hv-t2 ◌ reconnecting… \(\d+ s\) {AGE} ", label)
                   for label in t2_labels), t2_labels
        assert re.search(rf"^hv-t2 ✗ timeout {AGE} ", ui.host_label(app, "hv-t2"))
        # The cut host is back at once.
        await wait_for(pilot, lambda: ui.host_label(app, "hv-o1").startswith("hv-o1 ● tcp"),
                       "hv-o1 back after the cut", timeout=3)

        # Rows of the failed hosts keep their last libvirt state, marked stale.
        await pilot.pause(0.1)
        for name, state in (("class-a-01", "running"), ("class-b-01", "running"),
                            ("lab-gpu-01", "running"), ("class-a-03", "shutoff")):
            cells = ui.row_cells(app, name)
            assert cells["virt"] == f"{state}*" and cells["drift"].startswith("stale"), cells
        assert not ui.row_cells(app, "office-01")["drift"].startswith("stale")  # hv-o1
        assert ui.row_cells(app, "office-30")["drift"] == "unchecked"  # never read: not stale

        # The diff panel says how old the selected VM's libvirt data is.
        table.focus()
        table.move_cursor(row=table.get_row_index(ui.key_of(app, "class-a-01")))
        await wait_for(pilot, lambda: re.search(r"libvirt data is \d+ s old \(stale\)",
                                                diff_text(app)),
                       "the diff panel's data age", timeout=2)

        # Keys answer, and a healthy host's change lands, while four hosts are failing.
        # (hv-t3's stray-build, known to libvirt only, is not shown while hv-t3 is down: see
        # test_failed_host_keeps_its_libvirt_only_domains.)
        shown = table.row_count
        await pilot.press("d")
        await pilot.pause()
        assert table.row_count != shown and "drift only" in table.border_title
        await pilot.press("d")
        await pilot.pause()
        assert table.row_count == shown
        lic = lab.vm("lic")
        await ui.to_thread(lab.act, "ocloud", lic.uuid, "destroy")
        await wait_for(pilot, lambda: ui.row_cells(app, "lic")["virt"] == "shutoff ≠",
                       "ocloud's event in the table", timeout=2)
        assert any("hv-t1: failed " in line and "refused" in line for line in log_lines(app))
        assert any("hv-t2: reconnecting " in line and "keepalive" in line
                   for line in log_lines(app)), [x for x in log_lines(app) if "hv-t2" in x]

        # Clear every fault; the killed daemon comes back after 3 s.
        await pilot.pause(max(0.0, 3.0 - (time.monotonic() - t_kill)))
        await ui.to_thread(lab.restart_daemon, "hv-t3")
        t_back = time.monotonic()
        for host in ("hv-t1", "hv-t2", "hv-refuse", "hv-hang"):
            await ui.to_thread(lab.set_fault, host, "pass")

        await wait_for(pilot, lambda: ui.host_label(app, "hv-t3").startswith("hv-t3 ● tcp"),
                       "hv-t3 back after its daemon", timeout=5)
        assert time.monotonic() - t_back < 5.0
        # Each host over what it serves: tcp, or the demo's ssh and tls for ssh-only and tls-only.
        via = {h.name: h.client_uri.split("://")[0].split("+")[1] for h in lab.hosts.values()}
        await wait_for(pilot, lambda: all(ui.host_label(app, h).startswith(f"{h} ● {t}")
                                          for h, t in via.items()),
                       "every host connected again", timeout=6)
        await pilot.pause(0.2)
        cells = all_cells(app, ui)
        assert not [c for c in cells if "stale" in c["drift"] or c["virt"].endswith("*")]
        assert not [c for c in cells if c["drift"] == "unchecked"]
        assert ui.row_cells(app, "office-30")["virt"] == "running"
        assert "data" not in ui.host_label(app, "hv-t1")
        assert table.row_count == rows  # hv-t3's stray-build is back too
        # Read again: what libvirt has now (the killed daemon came back with its scenario).
        for name, host in (("class-a-01", "hv-t1"), ("lab-gpu-01", "hv-t3"),
                           ("office-40", "hv-hang"), ("lic", "ocloud")):
            state = await ui.to_thread(lab.virt_state, host, lab.vm(name).uuid)
            assert ui.row_cells(app, name)["virt"].split(" ")[0] == state, name
        assert app._exception is None


# --------------------------------------------------------------------------- the platform

PLATFORM_FAULTS = {
    "down": (lambda lab: lab.vdi.stop(), lambda lab: lab.vdi.start(),
             r"disconnected|dropped the connection"),
    "refuse": (lambda lab: lab.set_fault("vdi", "refuse"),
               lambda lab: lab.set_fault("vdi", "pass"), r"cannot connect: connection refused"),
    "hang": (lambda lab: lab.set_fault("vdi", "hang"), lambda lab: lab.set_fault("vdi", "pass"),
             r"no answer within 1 s"),
    "http500": (lambda lab: lab.vdi.set_fault("http500"), lambda lab: lab.vdi.set_fault(None),
                r"HTTP 500 Internal Server Error"),
    "not_json": (lambda lab: lab.vdi.set_fault("not_json"), lambda lab: lab.vdi.set_fault(None),
                 r"answer is not JSON"),
    "status": (lambda lab: lab.vdi.set_fault("status", code=500, msg="db down"),
               lambda lab: lab.vdi.set_fault(None), r"platform error 500: db down"),
    "slow": (lambda lab: lab.vdi.set_fault("slow", seconds=2),
             lambda lab: lab.vdi.set_fault(None), r"no answer within 1 s"),
    "token": (lambda lab: lab.vdi.set_fault("status", code=401, msg=MSG_TOKEN),
              lambda lab: lab.vdi.set_fault(None), r"login as 'admin' refused: token"),
}


async def test_platform_faults_in_the_header(start_lab, make_app, settle, wait_for, ui):
    lab = start_lab(subset(load_default(), ["ocloud", "hv-t1"]))
    app = make_app(lab, call_timeout=1.0, refresh_interval=3600.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        log_lines(app)  # from now on, every log line is kept whole
        table = app.query_one("#vms", VmTable)
        bar = app.query_one("#top", TopBar)
        rows = table.row_count
        a04 = ui.row_cells(app, "class-a-04")
        assert "VDI refreshed" in header(app) and "platform:" not in header(app)

        for fault, (inject, clear, cause) in PLATFORM_FAULTS.items():
            count = len(log_lines(app))
            await ui.to_thread(inject, lab)
            await pilot.press("r")
            if fault in ("hang", "slow"):
                # The refresh takes a second to fail: the keys answer meanwhile.
                await pilot.press("d")
                await pilot.pause()
                assert table.row_count != rows and bar.vdi_error == "", fault
                await pilot.press("d")
                await pilot.pause()
                assert table.row_count == rows
            await wait_for(pilot, lambda c=count: bar.vdi_error != "" and any(
                "platform: " in line for line in log_lines(app)[c:]),
                f"the {fault} in the header and the log", timeout=3)
            head = header(app)
            assert re.search(rf"platform: .*({cause})", head), (fault, head)
            assert re.search(r"\(data \d+ s old, stale\)", head), (fault, head)
            assert lab.vdi_url in head  # the platform named (once, after the cause)
            if fault == "http500":
                # On an 80-column screen the cause and the age are both visible.
                shown = screen_text(app)
                assert "platform: HTTP 500 Internal Server Error (data 0 s old, stale)" \
                    in shown, shown
            # The log has the whole message, naming the platform and the cause.
            (line,) = [x for x in log_lines(app)[count:] if "platform: " in x]
            assert re.search(rf"platform: (cannot connect to )?{re.escape(lab.vdi_url)}", line) \
                and re.search(cause.replace(": connection", " .*: connection"), line), line
            # The last good data is still on screen, and the keys answer.
            assert table.row_count == rows and ui.row_cells(app, "class-a-04") == a04
            await pilot.press("d")
            await pilot.pause()
            assert table.row_count != rows
            await pilot.press("d")
            await pilot.pause()

            await ui.to_thread(clear, lab)
            await pilot.press("r")
            await wait_for(pilot, lambda: bar.vdi_error == "" and log_lines(app)[-1].endswith(
                "platform: reachable again"), f"the header clear after {fault}", timeout=3)
            assert "platform:" not in header(app) and "VDI refreshed" in header(app)
            assert table.row_count == rows

        # An expired token: logged in again, nothing to see.
        logins = lab.vdi.requests["POST /ocloud/v1/login"]
        lab.vdi.expire_tokens()
        count = len(log_lines(app))
        await pilot.press("r")
        await wait_for(pilot, lambda: lab.vdi.requests["POST /ocloud/v1/login"] > logins,
                       "a new login", timeout=3)
        await pilot.pause(0.2)
        assert bar.vdi_error == "" and not any("platform" in line
                                               for line in log_lines(app)[count:])
        assert app._exception is None


async def test_inconsistent_platform_pages_warn(start_lab, make_app, settle, wait_for, ui):
    lab = start_lab(subset(load_default(), ["ocloud", "hv-t1", "hv-t2"]))
    app = make_app(lab, refresh_interval=3600.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        log_lines(app)  # from now on, every log line is kept whole
        bar = app.query_one("#top", TopBar)
        before = all_cells(app, ui)
        tree = ui.tree_labels(app)

        for fault in ("short_page", "bad_total"):
            lab.vdi.set_fault(fault)
            count = len(log_lines(app))
            await pilot.press("r")
            await wait_for(pilot, lambda: bar.data_warnings, f"the {fault} warning", timeout=3)
            await pilot.pause(0.2)
            new = log_lines(app)[count:]
            assert any("platform warning: " in line and "platform reported total=" in line
                       and lab.vdi_url in line for line in new), new
            assert "⚠ platform data: platform reported total=" in header(app)
            assert bar.vdi_error == ""
            # Nothing vanished and no drift was invented.
            assert all_cells(app, ui) == before
            assert {p.split(" ")[0]: [h.split(" ")[0] for h in hs]
                    for p, hs in ui.tree_labels(app).items()} == {
                p.split(" ")[0]: [h.split(" ")[0] for h in hs] for p, hs in tree.items()}

            lab.vdi.set_fault(None)
            await pilot.press("r")
            await wait_for(pilot, lambda: not bar.data_warnings, "the warning gone", timeout=3)
            await pilot.pause()
            assert "platform data" not in header(app)
        assert app._exception is None
