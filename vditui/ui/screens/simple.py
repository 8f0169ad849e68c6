"""Small screens: a fatal-problem screen, help, and the export prompt."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Markdown

HELP = """\
# vditui keys

| key | does |
|---|---|
| ↑ ↓ | move in the tree or table |
| tab / shift+tab | next / previous panel |
| enter (tree) | show that pool's or host's VMs |
| / | filter VMs by name (esc clears) |
| d | show only VMs with drift |
| s / S | sort by the next column / reverse |
| r | refresh the platform and every host now |
| c | reconnect the selected host: probe URIs, type one, adopt, save |
| e | export the report (md, json or csv) |
| i | the selected VM's timeline: its drifts from the history, its host's outages |
| space | mark / unmark the selected VM |
| m | mark every shown VM with a confirmed drift |
| u | unmark every VM |
| a | act on the marked VMs (or the selected one): sync, start, shut down, reboot |
| p | the last action: each VM's progress and result |
| k | acknowledge the selected VM's drift: a reason, an expiry date; saved to the config |
| t | light / dark theme |
| h | show / hide the host tree (hidden below 110 columns) |
| ctrl+p | command palette: every action |
| ? | this help |
| q | quit |

Cells marked **≠** disagree between the platform and libvirt; **…** marks a drift still
inside its grace period (pending), **!** a confirmed one, **~** (dimmed) an acknowledged one:
known and meant, with its reason, not counted. **■** before a name marks the row for an
action; a confirmation lists exactly what is sent and needs a yes (y or Send). In read-only
mode (`--read-only`, header READ-ONLY) no action is offered. `?` in the libvirt column means
the host could not be read, so the VM is unchecked.
"""


class ProblemScreen(Screen[None]):
    """A problem vditui cannot work around: what is wrong and how to fix it. No traceback."""

    BINDINGS = [Binding("q,escape", "app.quit", "quit")]

    def __init__(self, title: str, detail: str, fix: str) -> None:
        super().__init__()
        self.title_text, self.detail, self.fix = title, detail, fix

    def compose(self) -> ComposeResult:
        with Vertical(id="problem"):
            yield Label(f"[b]{self.title_text}[/b]", id="problem-title")
            yield Label(self.detail, id="problem-detail")
            yield Label(self.fix, id="problem-fix")
            yield Label("To see vditui without a platform, run: [b]vditui --demo[/b]")
        yield Footer()


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Markdown(HELP)
        yield Footer()


class ExportScreen(ModalScreen[str | None]):
    """Ask where to write the report; the extension picks the format (md, json, csv)."""

    BINDINGS = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="export"):
            yield Label("Export the report to (.md, .json or .csv):")
            yield Input(value=self.default, id="export-path")
            yield Label("enter: write   esc: cancel", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
