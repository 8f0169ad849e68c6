"""Acting on the VM table's rows: marks, the action menu, the confirmation, progress and results.

The flow: marks (space, ``m`` every shown row with a confirmed drift, ``u`` none) or the selected
row -> ``a``: the menu of what :meth:`Engine.actions_for` says applies -> :meth:`Engine.plan` ->
the confirmation screen (exactly what will be sent, and what is refused) -> an explicit yes ->
:meth:`Engine.act` in the worker group "actions", while the progress screen follows the
engine's :class:`ActionUpdate` events (the event log writes them too). One action at a time:
the platform must not be asked twice about the same VMs while it works. In read-only mode
(``settings.read_only``) ``a`` only says so and the palette offers no action.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import App

from vditui.core.actions import Action, ActionError, ActionPlan
from vditui.core.engine import Engine, EngineSettings
from vditui.core.events import ActionUpdate
from vditui.ui.messages import EngineEvents
from vditui.ui.run_state import ActionRun, Choice, choice_label, choices, plan_title
from vditui.ui.screens.actions import ActionMenuScreen, ConfirmScreen, ProgressScreen
from vditui.ui.widgets.event_log import EventLog
from vditui.ui.widgets.top_bar import TopBar
from vditui.ui.widgets.vm_table import VmTable

READ_ONLY = "read-only: actions are disabled"


class ActingApp(App[int]):
    """The part of the app that acts (the app derives from it): keys, screens, the worker."""

    # Its keys are in the key table (vditui.ui.keys).

    # Set by the app.
    engine: Engine | None
    settings: EngineSettings | None
    clock: Callable[[], float]
    #: The last action confirmed (running or done); None before the first.
    action_run: ActionRun | None = None

    @property
    def read_only(self) -> bool:
        return self.settings is not None and self.settings.read_only

    def _table(self) -> VmTable:
        return self.query_one("#vms", VmTable)

    # ------------------------------------------------------------------ marks
    def action_toggle_mark(self) -> None:
        table = self._table()
        key = table.selected_key
        if key is not None:
            table.toggle_mark(key)

    def action_mark_confirmed(self) -> None:
        table = self._table()
        new = table.mark(table.confirmed_keys())
        self.notify(f"marked {new} more row{'s' if new != 1 else ''} with a confirmed drift "
                    f"({len(table.marks)} marked)", timeout=3)

    def action_clear_marks(self) -> None:
        if self._table().clear_marks():
            self.notify("no row marked", timeout=2)

    # ------------------------------------------------------------------ the menu and the plan
    def action_act(self) -> None:
        if self.read_only:
            self.notify(READ_ONLY, severity="warning")
            return
        engine, table = self.engine, self._table()
        if engine is None:
            self.notify("not connected to the platform", severity="warning")
            return
        if self.action_run is not None and not self.action_run.done:
            self.notify("an action is still running (p shows it); wait for its result",
                        severity="warning")
            return
        keys = table.marked_keys or ([table.selected_key] if table.selected_key else [])
        if not keys:
            self.notify("select or mark VMs first (space marks a row)", severity="warning")
            return
        hidden = table.hidden_marks()
        what = (f"{len(keys)} marked VM{'s' if len(keys) != 1 else ''}" + (
            f" ({hidden} hidden by the filter)" if hidden else "") if table.marks
                else self._vm_name(keys[0]))
        actions = engine.actions_for(keys)
        if not actions:
            self.notify(f"no action applies to {what}{self._why_not(engine, keys)}",
                        severity="warning", timeout=8)
            return
        try:  # what each would send (from the last snapshot: no I/O)
            plans = {c: engine.plan(c[0], keys, c[1]) for c in choices(actions)}
        except ActionError as exc:  # e.g. no audit trail: nothing may be sent
            self.notify(str(exc), severity="error", timeout=8)
            return
        # Only what applies to at least one row; the confirmation shows the very plan whose
        # count the menu showed (the engine re-reads before it sends anyway).
        plans = {c: p for c, p in plans.items() if p.send}
        if not plans:
            self.notify(f"no action applies to {what}{self._why_not(engine, keys)}",
                        severity="warning", timeout=8)
            return
        counts = [(c, len(p.send)) for c, p in plans.items()]
        self.push_screen(ActionMenuScreen(what, len(keys), counts),
                         lambda choice: self._chosen(engine, plans, choice))

    @staticmethod
    def _why_not(engine: Engine, keys: Sequence[str]) -> str:
        """Why nothing applies to one row, as the engine says (e.g. a VM only in libvirt:
        what the operator can do instead); "" for several rows."""
        if len(keys) != 1:
            return ""
        try:
            refused = engine.plan(Action.SYNC, keys).refused
        except ActionError as exc:
            return f": {exc}"
        return f": {refused[0][1]}" if refused else ""

    def _vm_name(self, key: str) -> str:
        row = self._table().rows_by_key.get(key)
        return row.name if row is not None else key

    def _chosen(self, engine: Engine, plans: dict[Choice, ActionPlan],
                choice: Choice | None) -> None:
        if choice is None:
            return
        plan = plans[choice]
        self.push_screen(ConfirmScreen(plan), lambda yes: self._confirmed(engine, plan, yes))

    def _confirmed(self, engine: Engine, plan: ActionPlan, yes: bool | None) -> None:
        label = choice_label((plan.action, plan.force))
        if not yes:
            self._log_line(Text(f"{label}: cancelled, nothing sent", style="dim"))
            return
        run = self.action_run = ActionRun(plan, self.clock())
        self._table().clear_marks()  # sent: a second action starts from a clean slate
        self._show_busy(run)
        self._log_line(Text(f"{plan_title(plan)}: {', '.join(t.name for t in plan.send)}",
                       style="bold cyan"))
        self.run_worker(self._act(engine, run), name=f"action {plan.action.value}",
                        group="actions", exit_on_error=False)
        self.push_screen(ProgressScreen(run))

    async def _act(self, engine: Engine, run: ActionRun) -> None:
        label = choice_label((run.plan.action, run.plan.force))
        try:
            result = await engine.act(run.plan)
        except ActionError as exc:
            run.fail(str(exc))
            self._show_run(run)
            self._log_line(Text(f"{label}: not sent: {exc}", style="bold red"))
            self.notify(str(exc), title=label, severity="error")
            return
        except Exception as exc:
            # The app's Worker.StateChanged handler reports it; the screen must not say
            # "running" for ever.
            run.fail(f"internal error: {type(exc).__name__}")
            self._show_run(run)
            raise
        run.finish(result)
        self._show_run(run)
        summary = run.summary()
        self._log_line(Text(f"{label}: {summary.plain}", style=summary.style))
        self.notify(summary.plain, title=label,
                    severity="information" if result.exit_code == 0 else "warning")

    def action_last_action(self) -> None:
        run = self.action_run
        if run is None:
            self.notify("no action yet this session", timeout=2)
        elif not any(isinstance(s, ProgressScreen) for s in self.screen_stack):
            self.push_screen(ProgressScreen(run))

    # ------------------------------------------------------------------ following the engine
    def on_engine_events(self, message: EngineEvents) -> None:
        run = self.action_run
        if run is None:
            return
        taken = [run.apply(e) for e in message.events if isinstance(e, ActionUpdate)]
        if any(taken):  # every update applied first (any() alone would stop at the first)
            self._show_run(run)

    def _show_busy(self, run: ActionRun) -> None:
        """The header says an action is being followed up, until it is done."""
        top = self.query("#top").first(TopBar) if self.is_running else None
        if top is not None:
            n = len(run.plan.send)
            top.set_busy("" if run.done else f"{choice_label((run.plan.action, run.plan.force))}"
                         f" sent to {n} VM{'' if n == 1 else 's'}, following up (p)")

    def _show_run(self, run: ActionRun) -> None:
        self._show_busy(run)
        for screen in self.screen_stack:
            if isinstance(screen, ProgressScreen) and screen.run is run and screen.is_mounted:
                screen.update_run()

    def _log_line(self, line: Text) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
        log = self.query("#events").first(EventLog) if self.is_running else None
        if log is not None:
            log.note(Text.assemble(f"{stamp} ", line))
