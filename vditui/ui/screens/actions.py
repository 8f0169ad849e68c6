"""The action screens: the menu of what applies, the confirmation of exactly what will be sent,
and each VM's progress and result (see :mod:`vditui.ui.acting` for the flow)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from vditui.core.actions import ActionPhase, ActionPlan
from vditui.ui.run_state import ActionRun, Choice, choice_help, choice_label, plan_title

#: Lines of the confirmation besides its VM list: the border, title, buttons, hint and footer.
CHROME = 9
PHASE_STYLE = {ActionPhase.REFUSED: "yellow", ActionPhase.SENT: "cyan",
               ActionPhase.ACCEPTED: "cyan", ActionPhase.FAILED: "bold red",
               ActionPhase.RESOLVED: "bold green", ActionPhase.UNRESOLVED: "bold red"}


def phase_text(phase: ActionPhase | None) -> Text:
    """A VM's phase as a cell (a word, so it reads with NO_COLOR)."""
    if phase is None:
        return Text("waiting", style="dim")
    return Text(phase.value, style=PHASE_STYLE.get(phase, ""))


class ActionMenuScreen(ModalScreen[Choice | None]):
    """The actions that apply to the marked rows (or the selected one), force variants apart.
    Dismissed with the chosen (action, force), or None."""

    BINDINGS = [Binding("escape,q", "cancel", "cancel")]

    def __init__(self, what: str, rows: int, choices: Sequence[tuple[Choice, int]]) -> None:
        """``choices``: each with the number of the ``rows`` it would be sent to."""
        super().__init__()
        self.what, self.rows = what, rows
        self.choices = tuple(c for c, _n in choices)
        self.counts = tuple(n for _c, n in choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="act-menu"):
            yield Label(Text(f"Actions for {self.what}", style="bold"), id="act-menu-title")
            yield OptionList(*(Option(self._line(c, n), id=str(i)) for i, (c, n) in
                               enumerate(zip(self.choices, self.counts, strict=True))),
                             id="act-options")
            yield Label("enter: choose (a confirmation follows)   esc: cancel", classes="dim")
        yield Footer()

    def _line(self, choice: Choice, n: int) -> Text:
        label = Text(f"{choice_label(choice):<20}", style="bold")
        many = f"{n} of {self.rows} VMs" if self.rows > 1 else ""
        return Text.assemble(label, (f"{many:<14}", "cyan"), (choice_help(choice), "dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Exactly what will be sent (the action, force or not, every VM and its host) and what is
    refused with its reason; only an explicit yes (the Send button, or y) sends. The focus
    starts on Cancel; esc and n cancel."""

    BINDINGS = [Binding("y", "send", "send"), Binding("n", "cancel", "cancel"),
                Binding("escape", "close", "cancel")]

    def __init__(self, plan: ActionPlan) -> None:
        super().__init__()
        self.plan = plan

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Send and Cancel stay on screen: the VM list gets the lines the rest leaves, and
        scrolls."""
        self.query_one("#confirm-list").styles.max_height = max(3, self.size.height - CHROME)

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical(id="confirm"):
            yield Label(Text(plan_title(plan), style="bold"), id="confirm-title")
            with VerticalScroll(id="confirm-list"):
                yield Static(confirm_text(plan), id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel", id="cancel", variant="default")
                yield Button(f"Send to {len(plan.send)} VM{'s' if len(plan.send) != 1 else ''}",
                             id="send", variant="error", disabled=not plan.send)
            yield Label("y: send   n / esc: cancel   (the platform acts; nothing is sent twice)",
                        classes="dim")
        yield Footer()

    def on_mount(self) -> None:
        self._fit()
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "send" and bool(self.plan.send))

    def action_send(self) -> None:
        if self.plan.send:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_close(self) -> None:  # esc: its own footer entry (n does the same)
        self.dismiss(False)


def confirm_text(plan: ActionPlan) -> Group:
    """The confirmation's list: what will be sent, each VM with its host, then what is not
    sent with its reason (wrapped in its own column)."""
    head = Text()
    head.append("action: ", style="bold")
    head.append(choice_label((plan.action, plan.force)))
    head.append("   force: ", style="bold")
    head.append("yes (isForce)" if plan.force else "no")
    head.append("   hosts: ", style="bold")
    head.append(", ".join(plan.hosts()) or "—")
    parts: list[RenderableType] = [head, Text(f"\nwill be sent ({len(plan.send)}):",
                                              style="bold")]
    if plan.send:
        parts.append(_grid((t.name, f"on {t.host_name or '?'}") for t in plan.send))
    else:
        parts.append(Text("  nothing: every VM is refused below", style="yellow"))
    if plan.refused:
        parts.append(Text(f"\nrefused, not sent ({len(plan.refused)}):", style="bold yellow"))
        parts.append(_grid(((t.name, f"on {t.host_name or '?'}:", Text(why, style="yellow"))
                            for t, why in plan.refused), wrap=True))
    return Group(*parts)


def _grid(rows: Iterable[tuple[str | Text, ...]], wrap: bool = False) -> Table:
    grid = Table.grid(padding=(0, 1), pad_edge=False)
    grid.add_column(no_wrap=True, min_width=2)  # an indent
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    if wrap:
        grid.add_column(ratio=1, overflow="fold")
    for row in rows:
        grid.add_row("", *row)
    return grid


class ProgressScreen(ModalScreen[None]):
    """Each VM of an action: its host, phase and the engine's latest message, live; then the
    result. Closing it leaves the action running (its lines go to the event log too)."""

    BINDINGS = [Binding("escape,q", "close", "close")]

    def __init__(self, run: ActionRun) -> None:
        super().__init__()
        self.run = run
        self._shown: dict[str, tuple[ActionPhase | None, str]] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="progress"):
            yield Label(Text(plan_title(self.run.plan), style="bold"), id="progress-title")
            yield DataTable(id="progress-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="progress-detail")
            yield Static("", id="progress-summary")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#progress-table", DataTable)
        table.add_column("VM", key="vm", width=20)
        table.add_column("host", key="host", width=12)
        table.add_column("phase", key="phase", width=10)
        table.add_column("message", key="message", width=90)
        for key, target in self.run.targets.items():
            phase, message = self.run.state(key)
            table.add_row(target.name, target.host_name, phase_text(phase), message, key=key)
            self._shown[key] = (phase, message)
        table.focus()
        self.update_run()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(str(event.row_key.value))

    def _show_detail(self, key: str | None) -> None:
        """The highlighted VM's whole message, wrapped (the table's column is cut at 80)."""
        target = self.run.targets.get(key or "")
        if target is None:
            return
        phase, message = self.run.state(target.key)
        self.query_one("#progress-detail", Static).update(Text.assemble(
            (f"{target.name}: ", "bold"), phase_text(phase), f"  {message}"))

    def update_run(self) -> None:
        """Show what changed in the run since the last call."""
        table = self.query_one("#progress-table", DataTable)
        for key in self.run.targets:
            now = self.run.state(key)
            if self._shown.get(key) != now:
                self._shown[key] = now
                table.update_cell(key, "phase", phase_text(now[0]))
                table.update_cell(key, "message", now[1])
        self.query_one("#progress-summary", Static).update(self.run.summary())
        table_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if (
            table.row_count) else None
        self._show_detail(str(table_key) if table_key is not None else None)

    def action_close(self) -> None:
        self.dismiss(None)
