"""Small screens: a fatal-problem screen, help, and the export prompt."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Static

from vditui.core.exitcodes import ExitCode
from vditui.ui import keys


class ProblemScreen(Screen[None]):
    """A problem vditui cannot work around: what is wrong and how to fix it. No traceback.
    Leaving it ends vditui with ``exit_code`` (non-zero: the TUI could not do its job)."""

    BINDINGS = [Binding("q,escape", "leave", "quit")]

    def __init__(self, title: str, detail: str, fix: str, exit_code: int = ExitCode.FAILED) -> None:
        super().__init__()
        self.title_text, self.detail, self.fix = title, detail, fix
        self.exit_code = exit_code

    def action_leave(self) -> None:
        self.app.exit(return_code=self.exit_code)

    def compose(self) -> ComposeResult:
        with Vertical(id="problem"):
            yield Static(Text(self.title_text, style="bold"), id="problem-title")
            yield Static(Text(self.detail), id="problem-detail")
            yield Static(Text(self.fix), id="problem-fix")
            yield Static(Text.assemble("To see vditui without a platform, run: ",
                                       ("vditui --demo", "bold")))
        yield Footer()


class HelpScreen(ModalScreen[None]):
    """Every key, grouped by task, and the legend of every symbol; scrolls (it is longer than
    an 80x24 terminal)."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close"),
                Binding("end", "end", "end", show=False)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(keys.help_renderable(), id="help-body")
        yield Label("↑ ↓ PgUp PgDn Home End: scroll   esc / q / ?: close", id="help-hint",
                    classes="dim")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help", VerticalScroll).focus()

    def action_end(self) -> None:
        self.query_one("#help", VerticalScroll).scroll_end(animate=False)


def export_problem(path: str) -> str:
    """Why the report cannot be written to ``path`` ("" when it can): a name without a known
    extension, or a directory that does not exist (never created silently)."""
    target = Path(path).expanduser()
    if export_format(path) is None:
        return f"{path}: use a name ending in .md, .json or .csv"
    if not target.parent.is_dir():
        return f"{target.parent}: no such directory (create it first, or choose another)"
    return ""


def export_format(path: str) -> str | None:
    """The report format ``path``'s extension asks for (md, json, csv), None if none."""
    ext = Path(path).suffix.lower().lstrip(".")
    return {"md": "md", "markdown": "md", "json": "json", "csv": "csv"}.get(ext)


class ExportScreen(ModalScreen[str | None]):
    """Ask where to write the report; the extension picks the format (md, json, csv). A name
    that cannot be written keeps the dialog open, the reason under the field."""

    BINDINGS = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="export"):
            yield Label("Export the report to (.md, .json or .csv):")
            yield Input(value=self.default, id="export-path")
            yield Static("", id="export-error")
            yield Label("enter: write   esc: cancel", classes="dim")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if not path:
            self.dismiss(None)
            return
        problem = export_problem(path)
        if problem:
            self.query_one("#export-error", Static).update(Text(problem))
            return
        self.dismiss(path)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
