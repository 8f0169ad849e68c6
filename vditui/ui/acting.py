"""Acting on the VM table's rows: marks, the action menu, the confirmation, progress and results.

The flow: marks (space, ``m`` every shown row with a confirmed drift, ``u`` none) or the selected
row -> ``a``: the menu of what :meth:`Engine.actions_for` says applies -> :meth:`Engine.plan` ->
the confirmation screen (exactly what will be sent, and what is refused) -> an explicit yes ->
:meth:`Engine.act` in the worker group "actions", while the progress screen follows the
engine's :class:`ActionUpdate` events (the event log writes them too). One action at a time:
the platform must not be asked twice about the same VMs while it works. In read-only mode
(``settings.read_only``) ``a`` only says so and the palette offers no action.

:class:`Acting` is a controller the app holds: the app's key bindings call into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.app import App

from vditui.core.actions import Action, ActionError, ActionPlan
from vditui.core.events import ActionUpdate
from vditui.core.exitcodes import ExitCode
from vditui.core.face import EngineFace
from vditui.core.settings import EngineSettings
from vditui.ui.messages import EngineEvents
from vditui.ui.run_state import ActionRun, Choice, choice_label, choices, plan_title
from vditui.ui.screens.actions import ActionMenuScreen, ConfirmScreen, ProgressScreen
from vditui.ui.widgets.vm_table import VmTable

READ_ONLY = "read-only: actions are disabled"


class Acting:
    """Marks, the action menu, the confirmation, the worker that acts and its progress."""

    def __init__(self, app: App[Any], table: VmTable, *, engine: Callable[[], EngineFace | None],
                 settings: EngineSettings | None, clock: Callable[[], float],
                 note: Callable[[Text], None],
                 busy: Callable[[str], None] = lambda _text: None) -> None:
        self.app, self.table = app, table
        self._engine, self.settings, self.clock = engine, settings, clock
        #: Writes a line (stamped) to the event log.
        self._note = note
        #: Says in the header that an action is followed up ("" when none is).
        self._busy = busy
        #: The last action confirmed (running or done); None before the first.
        self.run: ActionRun | None = None

    @property
    def read_only(self) -> bool:
        return self.settings is not None and self.settings.read_only

    # ------------------------------------------------------------------ marks
    def toggle_mark(self) -> None:
        key = self.table.selected_key
        if key is not None:
            self.table.toggle_mark(key)

    def mark_confirmed(self) -> None:
        table = self.table
        new = table.mark(table.confirmed_keys())
        self.app.notify(f"marked {new} more row{'s' if new != 1 else ''} with a confirmed drift "
                        f"({len(table.marks)} marked)", timeout=3)

    def clear_marks(self) -> None:
        if self.table.clear_marks():
            self.app.notify("no row marked", timeout=2)

    # ------------------------------------------------------------------ the menu and the plan
    def act(self) -> None:
        """``a``: the menu of the actions that apply to the marked (or selected) rows."""
        app = self.app
        if self.read_only:
            app.notify(READ_ONLY, severity="warning")
            return
        engine, table = self._engine(), self.table
        if engine is None:
            app.notify("not connected to the platform", severity="warning")
            return
        if self.run is not None and not self.run.done:
            app.notify("an action is still running (p shows it); wait for its result",
                       severity="warning")
            return
        keys = table.marked_keys or ([table.selected_key] if table.selected_key else [])
        if not keys:
            app.notify("select or mark VMs first (space marks a row)", severity="warning")
            return
        hidden = table.hidden_marks()
        what = (f"{len(keys)} marked VM{'s' if len(keys) != 1 else ''}" + (
            f" ({hidden} hidden by the filter)" if hidden else "") if table.marks
                else self._vm_name(keys[0]))
        actions = engine.actions_for(keys)
        if not actions:
            app.notify(f"no action applies to {what}{self._why_not(engine, keys)}",
                       severity="warning", timeout=8)
            return
        try:  # what each would send (from the last snapshot: no I/O)
            plans = {c: engine.plan(c[0], keys, c[1]) for c in choices(actions)}
        except ActionError as exc:  # e.g. no audit trail: nothing may be sent
            app.notify(str(exc), severity="error", timeout=8)
            return
        # Only what applies to at least one row; the confirmation shows the very plan whose
        # count the menu showed (the engine re-reads before it sends anyway).
        plans = {c: p for c, p in plans.items() if p.send}
        if not plans:
            app.notify(f"no action applies to {what}{self._why_not(engine, keys)}",
                       severity="warning", timeout=8)
            return
        counts = [(c, len(p.send)) for c, p in plans.items()]
        app.push_screen(ActionMenuScreen(what, len(keys), counts),
                        lambda choice: self._chosen(engine, plans, choice))

    @staticmethod
    def _why_not(engine: EngineFace, keys: Sequence[str]) -> str:
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
        row = self.table.rows_by_key.get(key)
        return row.name if row is not None else key

    def _chosen(self, engine: EngineFace, plans: dict[Choice, ActionPlan],
                choice: Choice | None) -> None:
        if choice is None:
            return
        plan = plans[choice]
        self.app.push_screen(ConfirmScreen(plan),
                             lambda yes: self._confirmed(engine, plan, yes))

    def _confirmed(self, engine: EngineFace, plan: ActionPlan, yes: bool | None) -> None:
        label = choice_label((plan.action, plan.force))
        if not yes:
            self._note(Text(f"{label}: cancelled, nothing sent", style="dim"))
            return
        run = self.run = ActionRun(plan, self.clock())
        self.table.clear_marks()  # sent: a second action starts from a clean slate
        self._show_busy(run)
        self._note(Text(f"{plan_title(plan)}: {', '.join(t.name for t in plan.send)}",
                        style="bold cyan"))
        self.app.run_worker(self._act(engine, run), name=f"action {plan.action.value}",
                            group="actions", exit_on_error=False)
        self.app.push_screen(ProgressScreen(run))

    async def _act(self, engine: EngineFace, run: ActionRun) -> None:
        label = choice_label((run.plan.action, run.plan.force))
        try:
            result = await engine.act(run.plan)
        except ActionError as exc:
            run.fail(str(exc))
            self._show_run(run)
            self._note(Text(f"{label}: not sent: {exc}", style="bold red"))
            self.app.notify(str(exc), title=label, severity="error")
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
        self._note(Text(f"{label}: {summary.plain}", style=summary.style))
        self.app.notify(summary.plain, title=label,
                        severity="information" if result.exit_code == ExitCode.OK else "warning")

    def last_action(self) -> None:
        """``p``: the progress screen of the last action."""
        run = self.run
        if run is None:
            self.app.notify("no action yet this session", timeout=2)
        elif not any(isinstance(s, ProgressScreen) for s in self.app.screen_stack):
            self.app.push_screen(ProgressScreen(run))

    # ------------------------------------------------------------------ following the engine
    def follow(self, message: EngineEvents) -> None:
        """Apply the engine's action updates to the running action's progress."""
        run = self.run
        if run is None:
            return
        taken = [run.apply(e) for e in message.events if isinstance(e, ActionUpdate)]
        if any(taken):  # every update applied first (any() alone would stop at the first)
            self._show_run(run)

    def _show_busy(self, run: ActionRun) -> None:
        """The header says an action is being followed up, until it is done."""
        n = len(run.plan.send)
        self._busy("" if run.done else f"{choice_label((run.plan.action, run.plan.force))} "
                   f"sent to {n} VM{'' if n == 1 else 's'}, following up (p)")

    def _show_run(self, run: ActionRun) -> None:
        self._show_busy(run)
        for screen in self.app.screen_stack:
            if isinstance(screen, ProgressScreen) and screen.run is run and screen.is_mounted:
                screen.update_run()
