"""Acting from the TUI: the menu for the marked rows, the confirmation's contents, cancelling
(nothing sent: the fake engine records every action asked), and read-only mode (no action
anywhere, the header says so), on the scripted engine; against the lab (end to end, the lab's
platform counting requests): confirming an action that resolves a drift (each VM's progress,
result and event log lines), a platform errorList entry shown for its VM, one action at a time,
and an action the engine refuses."""

from __future__ import annotations

import html
import re

import pytest
from textual.widgets import Button, DataTable, OptionList, RichLog

from tests.ui.fake_lab import FakeLab
from vditui.core.actions import Action, ActionPhase
from vditui.ui.acting import READ_ONLY
from vditui.ui.screens.actions import ActionMenuScreen, ConfirmScreen, ProgressScreen
from vditui.ui.widgets.vm_table import VmTable

SIZE = (160, 48)
DELAY = 0.3  # the lab platform's action delay: short, the follow-up waits for the real change
LOCKED = "虚机被锁定 (VM locked by a snapshot task)"  # the platform's errorMsg for the VM
POSTS = ("start", "close", "reboot", "sync-status")


def posts(world) -> int:
    """Action requests the platform has seen (every POST but the login): the lab's counts, or
    the actions the fake engines were asked to send."""
    if isinstance(world, FakeLab):
        return world.actions_sent()
    return sum(n for route, n in world.vdi.requests.items()
               if route.startswith("POST") and route.endswith(POSTS))


def screen_text(app) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


def log_text(app) -> str:
    """The event log's text, its lines joined again where they wrapped (at a space)."""
    lines = app.query_one("#events", RichLog).lines
    return re.sub(r"\s+", " ", " ".join(ln.text for ln in lines))


def actions_app(make_app, world, tmp_path, **kw):
    if not isinstance(world, FakeLab):
        world.vdi.action_delay = DELAY
    return make_app(world, audit_path=tmp_path / "audit.jsonl", action_timeout=20.0, **kw)


async def mark(app, pilot, ui, *names: str) -> list[str]:
    table = app.query_one("#vms", VmTable)
    keys = []
    for name in names:
        key = ui.key_of(app, name)
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("space")
        keys.append(key)
    await pilot.pause()
    assert table.marks == set(keys)
    return keys


async def open_menu(app, pilot, wait_for) -> ActionMenuScreen:
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, ActionMenuScreen), "the action menu")
    assert isinstance(app.screen, ActionMenuScreen)
    return app.screen


def menu_labels(menu: ActionMenuScreen) -> list[str]:
    options = menu.query_one("#act-options", OptionList)
    return [str(options.get_option_at_index(i).prompt).split("  ")[0].strip()
            for i in range(options.option_count)]


async def choose(app, pilot, wait_for, menu: ActionMenuScreen, label: str) -> ConfirmScreen:
    at = menu_labels(menu).index(label)
    await pilot.press(*["down"] * at, "enter")  # the first option starts highlighted
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
    assert isinstance(app.screen, ConfirmScreen)
    return app.screen


async def test_menu_lists_what_applies_to_the_marked_rows(fake, make_fake_app, settle, wait_for,
                                                          ui, tmp_path):
    app = actions_app(make_fake_app, fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # class-a-04: platform running, libvirt shutoff; office-11: platform off, libvirt
        # running: each side says off for one and running for the other, so all apply.
        await mark(app, pilot, ui, "class-a-04", "office-11")
        menu = await open_menu(app, pilot, wait_for)
        assert menu.what == "2 marked VMs"
        assert menu_labels(menu) == ["sync status", "sync host status", "start", "shut down",
                                     "shut down (force)", "reboot", "reboot (force)"]
        assert "2 of 2 VMs" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ActionMenuScreen)

        # Without marks, the selected row: a VM only in libvirt has none, and is told why.
        await pilot.press("u")
        table = app.query_one("#vms", VmTable)
        table.move_cursor(row=table.get_row_index(ui.key_of(app, "stray-build")))
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        note = [m for sev, m in ui.notifications(app) if sev == "warning"][-1]
        assert note.startswith("no action applies to stray-build: only in libvirt"), note
        assert posts(fake) == 0


async def test_confirmation_lists_what_is_sent_and_cancelling_sends_nothing(
        fake, make_fake_app, settle, wait_for, ui, tmp_path):
    app = actions_app(make_fake_app, fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await mark(app, pilot, ui, "class-a-04", "office-11", "stray-build")
        menu = await open_menu(app, pilot, wait_for)
        assert menu.what == "3 marked VMs"
        confirm = await choose(app, pilot, wait_for, menu, "shut down (force)")
        plan = confirm.plan
        assert (plan.action, plan.force) == (Action.SHUTDOWN, True)
        assert [(t.name, t.host_name) for t in plan.send] == [("class-a-04", "hv-t1"),
                                                              ("office-11", "hv-o2")]
        assert [t.name for t, _why in plan.refused] == ["stray-build"]
        text = screen_text(app)
        assert 'Send "shut down (force)" to 2 VMs on 2 hosts' in text
        assert "force: yes (isForce)" in text
        assert "hosts: hv-t1, hv-o2" in text
        assert re.search(r"class-a-04 *on hv-t1", text) and re.search(r"office-11 *on hv-o2",
                                                                      text)
        assert "refused, not sent (1):" in text
        assert re.search(r"stray-build *on hv-t3: *only in libvirt", text)
        assert confirm.query_one("#cancel", Button).has_focus  # the default is not to send
        assert not confirm.query_one("#send", Button).disabled

        await pilot.press("enter")  # on Cancel
        await pilot.pause()
        assert app.screen is app.screen_stack[0] and app.acting.run is None
        # esc cancels as well.
        confirm = await choose(app, pilot, wait_for, await open_menu(app, pilot, wait_for),
                               "sync status")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0] and app.acting.run is None
        await wait_for(pilot, lambda: not ui.display_pending(app), "the log written")
        assert log_text(app).count("cancelled, nothing sent") == 2
        assert posts(fake) == 0
        assert not (tmp_path / "audit.jsonl").exists()


async def run_action(app, pilot, wait_for, label: str) -> ProgressScreen:
    confirm = await choose(app, pilot, wait_for, await open_menu(app, pilot, wait_for), label)
    assert confirm.plan.send
    await pilot.press("y")
    await wait_for(pilot, lambda: isinstance(app.screen, ProgressScreen), "the progress screen")
    progress = app.screen
    assert isinstance(progress, ProgressScreen)
    await wait_for(pilot, lambda: progress.run.done, "the action's result", timeout=30)
    await pilot.pause()
    return progress


def progress_rows(progress: ProgressScreen, ui) -> dict[str, tuple[str, str, str]]:
    table = progress.query_one("#progress-table", DataTable)
    out = {}
    for i in range(table.row_count):
        name, host, phase, message = (ui.plain(c) for c in table.get_row_at(i))
        out[name] = (host, phase, message)
    return out


@pytest.mark.lab
async def test_sync_then_start_resolve_their_drifts(lab, make_app, settle, wait_for, ui,
                                                    tmp_path):
    app = actions_app(make_app, lab, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # office-11: the platform says off, libvirt runs it: a sync makes the platform adopt
        # libvirt's state.
        await mark(app, pilot, ui, "office-11")
        progress = await run_action(app, pilot, wait_for, "sync status")
        run = progress.run
        assert run.result is not None and run.result.exit_code == 0, run.summary().plain
        host, phase, message = progress_rows(progress, ui)["office-11"]
        assert (host, phase) == ("hv-o2", "resolved")
        assert message.startswith("office-11: resolved") and "after sync" in message, message
        assert "done: every VM agrees" in ui.plain(progress.query_one("#progress-summary")
                                                   .render())
        assert lab.vdi.requests["POST /ocloud/v1/domain/{id}/sync-status"] == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: ui.row_cells(app, "office-11")["drift"] == "ok",
                       "office-11 shown in agreement")

        # class-a-04: the platform says running, libvirt has it shut off: start it.
        await pilot.press("u")
        await mark(app, pilot, ui, "class-a-04")
        progress = await run_action(app, pilot, wait_for, "start")
        assert progress.run.result is not None and progress.run.result.exit_code == 0
        host, phase, message = progress_rows(progress, ui)["class-a-04"]
        assert (host, phase) == ("hv-t1", "resolved") and message.startswith(
            "class-a-04: resolved"), message
        assert lab.vdi.requests["POST /ocloud/v1/domain/start"] == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: ui.row_cells(app, "class-a-04")["virt"] == "running",
                       "class-a-04 running")
        await wait_for(pilot, lambda: not ui.display_pending(app), "the log written")
        log = log_text(app)
        for want in ('Send "sync status" to 1 VM on 1 host: office-11',
                     "sync sent: office-11", "sync resolved: office-11: resolved",
                     "sync status: done: every VM agrees",
                     "start sent: class-a-04", "start resolved: class-a-04: resolved"):
            assert want in log, (want, log)
        # p shows the last action again.
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ProgressScreen), "the last action")
        assert app.screen.run is progress.run


@pytest.mark.lab
async def test_error_list_entry_is_shown_for_its_vm(lab, make_app, settle, wait_for, ui,
                                                    tmp_path):
    app = actions_app(make_app, lab, tmp_path)
    lab.vdi.set_action_fault("error_list", vms=["class-a-04"], msg=LOCKED)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await mark(app, pilot, ui, "class-a-04")
        progress = await run_action(app, pilot, wait_for, "start")
        host, phase, message = progress_rows(progress, ui)["class-a-04"]
        assert (host, phase) == ("hv-t1", "failed")
        assert message.startswith("class-a-04: ") and LOCKED in message, message
        assert progress.run.result is not None and progress.run.result.exit_code != 0
        assert lab.vdi.requests["POST /ocloud/v1/domain/start"] == 1  # not sent twice
        await wait_for(pilot, lambda: not ui.display_pending(app), "the log written")
        assert "start failed: class-a-04: the platform did not act" in log_text(app)
        assert "(VM locked by a snapshot task)" in log_text(app)


async def test_read_only_offers_no_action_and_says_so(fake, make_fake_app, settle, wait_for,
                                                      ui, tmp_path):
    app = actions_app(make_fake_app, fake, tmp_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "vditui READ-ONLY " in screen_text(app)  # the header's first words
        await mark(app, pilot, ui, "class-a-04")  # marking is harmless
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert ("warning", READ_ONLY) in ui.notifications(app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Refresh" in titles and "Mark drift" in titles
        assert "Actions" not in titles and "Last action" not in titles
        assert posts(fake) == 0
    # Not read-only: the same palette offers them (the check above can fail).
    app = actions_app(make_fake_app, fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "READ-ONLY" not in screen_text(app)
        assert "Actions" in [c.title for c in app.get_system_commands(app.screen)]


def test_phase_words_read_without_color():
    from vditui.ui.screens.actions import phase_text

    assert [phase_text(p).plain for p in ActionPhase] == [p.value for p in ActionPhase]
    assert phase_text(None).plain == "waiting"


@pytest.mark.lab
async def test_one_action_at_a_time_and_a_hanging_platform_is_asked_once(
        lab, make_app, settle, wait_for, ui, tmp_path):
    """While the platform sits on a start request, a second action is refused by the TUI (the
    first is still running), and the start is sent once; released, it resolves."""
    app = actions_app(make_app, lab, tmp_path)
    lab.vdi.set_action_fault("hang", actions=["start"], act=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        key = (await mark(app, pilot, ui, "class-a-04"))[0]
        confirm = await choose(app, pilot, wait_for, await open_menu(app, pilot, wait_for),
                               "start")
        assert confirm.plan.send
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, ProgressScreen), "the progress")
        run = app.screen.run
        await wait_for(pilot, lambda: run.state(key)[0] is ActionPhase.SENT, "the start sent")
        assert "running…" in ui.plain(app.screen.query_one("#progress-summary").render())
        await pilot.press("escape")  # closing the screen leaves the action running
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert any(m.startswith("an action is still running") for _s, m in
                   ui.notifications(app)), ui.notifications(app)
        assert not run.done

        await ui.to_thread(lab.vdi.set_action_fault, None)  # the platform answers now
        await wait_for(pilot, lambda: run.done, "the action's result", timeout=30)
        assert run.state(key)[0] is ActionPhase.RESOLVED, run.state(key)
        assert lab.vdi.requests["POST /ocloud/v1/domain/start"] == 1
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ProgressScreen), "the last action")
        await pilot.pause()
        assert progress_rows(app.screen, ui)["class-a-04"][1] == "resolved"


@pytest.mark.lab
async def test_an_action_the_engine_refuses_is_said_and_nothing_is_sent(
        lab, make_app, settle, wait_for, ui, tmp_path):
    """The audit trail cannot be written (it is a directory; its own directory, where the
    action lock lives, is fine): the engine refuses the action before sending; the progress
    screen, a notification and the log say why."""
    (tmp_path / "audit.jsonl").mkdir()
    lab.vdi.action_delay = DELAY
    app = make_app(lab, audit_path=tmp_path / "audit.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        key = (await mark(app, pilot, ui, "office-11"))[0]
        progress = await run_action(app, pilot, wait_for, "sync status")
        run = progress.run
        assert run.result is None and run.error.startswith("cannot write the audit trail")
        assert run.state(key)[0] is ActionPhase.FAILED
        summary = ui.plain(progress.query_one("#progress-summary").render())
        assert summary.startswith("not done: cannot write the audit trail"), summary
        assert progress_rows(progress, ui)["office-11"][1] == "failed"
        assert any(s == "error" and "nothing was sent" in m for s, m in ui.notifications(app))
        await wait_for(pilot, lambda: not ui.display_pending(app), "the log written")
        assert "sync status: not sent: cannot write the audit trail" in log_text(app)
        assert posts(lab) == 0


async def test_another_vditui_acting_on_the_platform_is_named_and_nothing_is_sent(
        lab, make_app, settle, wait_for, ui, tmp_path):
    """Another process holds the platform's action lock: the action is refused with who holds
    it, in the progress screen, a notification and the log."""
    from vditui.core.action_lock import ActionLock, Holder

    app = actions_app(make_app, lab, tmp_path)
    other = ActionLock(tmp_path, lab.vdi_url, lab.username)
    assert other.try_acquire(Holder(4242, "ws-7", "2026-12-08T01:00:00.000Z", "reboot lic"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await mark(app, pilot, ui, "office-11")
            progress = await run_action(app, pilot, wait_for, "sync status")
            run = progress.run
            holder = (f"another action on {lab.vdi_url} is running: pid 4242 on ws-7 since "
                      "2026-12-08T01:00:00.000Z (reboot lic); nothing sent")
            assert run.result is None and run.error.startswith(holder), run.error
            assert any(s == "error" and holder in m for s, m in ui.notifications(app))
            await wait_for(pilot, lambda: not ui.display_pending(app), "the log written")
            assert f"sync status: not sent: {holder}" in log_text(app)
            assert posts(lab) == 0
    finally:
        other.release()
