"""Every key of the main screen, defined once: the bindings, the footer, the help screen, the
command palette and the README's key table are all generated from :data:`KEYS`.

A key's ``group`` is the task it serves (the help screen's sections); ``acts`` keys change VMs
and are disabled in read-only mode; ``footer`` keys are shown in the footer (the rest are in
the help screen and the palette). Keys of the dialogs are their screens' own and shown in their
own footers; only ``everywhere`` keys (quitting) work over a dialog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.binding import Binding


@dataclass(frozen=True, slots=True)
class Key:
    """One key: what it is, what it does, where it shows."""

    #: Textual key names, comma-separated (``question_mark``, ``ctrl+c,ctrl+q``).
    keys: str
    #: The action it runs (``action_NAME`` on the app).
    action: str
    #: A word or two, for the footer.
    short: str
    #: A sentence, for the help screen, the palette and the README.
    help: str
    #: The task it serves: one of :data:`GROUPS`.
    group: str
    #: Its place in the footer (1 first); 0: not in the footer (which holds ~8 at 80 columns).
    footer: int = 0
    #: Changes VMs: disabled in read-only mode.
    acts: bool = False
    #: The palette's title ("" keeps it out of the palette).
    palette: str = ""
    #: Works over a dialog too (quitting); the others only on the main screen.
    everywhere: bool = False
    #: Shown as (in the help and README), when not derived from ``keys``.
    shown_as: str = ""

    @property
    def says(self) -> str:
        """The help's sentence, with what read-only mode does to it."""
        return f"{self.help} (not in read-only mode)" if self.acts else self.help

    @property
    def label(self) -> str:
        """The key as an operator types it: ``?``, ``/``, ``space``, ``ctrl+c``."""
        if self.shown_as:
            return self.shown_as
        return " / ".join(_NAMES.get(k, k) for k in self.keys.split(","))


_NAMES = {"question_mark": "?", "slash": "/", "escape": "esc"}

#: The tasks, in the help screen's order.
GROUPS = ("look", "filter", "act", "acknowledge", "connect", "export", "general")

KEYS: tuple[Key, ...] = (
    Key("up,down", "", "", "move in the table or tree; tab / shift+tab: next / previous panel",
        "look", shown_as="↑ ↓ tab"),
    Key("enter", "", "", "(in the host tree) show that pool's or host's VMs", "look",
        shown_as="enter"),
    Key("s", "sort_next", "sort", "sort: worst first, then by each column (or click a header)",
        "look", footer=4, palette="Sort"),
    Key("S", "sort_reverse", "reverse", "reverse the sort", "look"),
    Key("h", "toggle_hosts", "hosts", "show / hide the host tree (hidden below 110 columns)",
        "look", palette="Host tree"),
    Key("i", "timeline", "timeline",
        "the selected VM's timeline, from the history: its drifts, its host's outages",
        "look", footer=7, palette="VM timeline"),
    Key("r", "refresh", "refresh", "refresh the platform and every host now", "look",
        palette="Refresh"),
    Key("t", "toggle_theme", "theme", "light / dark theme", "look", palette="Toggle theme"),
    Key("slash", "filter", "filter", "filter VMs by name", "filter", footer=2,
        palette="Filter VMs"),
    Key("escape", "clear_filter", "clear filter", "clear the name filter", "filter"),
    Key("d", "drift_only", "drift", "only VMs with drift, or that cannot be checked (toggle)",
        "filter", footer=3, palette="Drift only"),
    Key("space", "toggle_mark", "mark", "mark / unmark the selected VM (■)", "act"),
    Key("m", "mark_confirmed", "mark drift",
        "mark every shown VM with a confirmed (unacknowledged) drift", "act",
        palette="Mark drift"),
    Key("u", "clear_marks", "unmark", "unmark every VM", "act", palette="Clear marks"),
    Key("a", "act", "act",
        "act on the marked VMs (or the selected one): sync, start, shut down, reboot",
        "act", footer=5, acts=True, palette="Actions"),
    Key("p", "last_action", "last action", "the last action: each VM's progress and result",
        "act", acts=True, palette="Last action"),
    Key("k", "acknowledge", "ack",
        "acknowledge the selected VM's drift: a reason, an optional expiry; saved to the config",
        "acknowledge", footer=6, palette="Acknowledge drift"),
    Key("c", "reconnect", "reconnect",
        "reconnect the selected host: probe its URIs, type one, adopt, save", "connect",
        palette="Reconnect host"),
    Key("e", "export", "export", "export the report (.md, .json or .csv)", "export",
        palette="Export report"),
    Key("question_mark", "help", "help", "this help (↑ ↓ PgUp PgDn Home End scroll it)",
        "general", footer=1, palette="Help"),
    Key("q", "quit", "quit", "quit", "general", footer=8),
    Key("ctrl+c,ctrl+q", "quit_now", "quit", "quit (asks first while an action is followed up)",
        "general", everywhere=True),
)

#: Every symbol the screens use, with what it means: the help screen's legend.
LEGEND: tuple[tuple[str, str], ...] = (
    ("≠", "the platform and libvirt disagree on this cell (host≠host: runs elsewhere)"),
    ("!", "a confirmed drift (past its grace period); the header counts them"),
    ("…", "a pending drift, still inside its grace period"),
    ("☻", "users connected right now to a desktop with a drift (header); their rows sort first"),
    ("~", "an acknowledged drift (dimmed, with its reason): known and meant, not counted"),
    ("■", "a marked row, for an action"),
    ("?", "the host's libvirt could not be read: the VM is unchecked"),
    ("—", "absent on that side"),
    ("*", "libvirt state from a dropped connection's last read (stale)"),
    ("●", "host connected (with its transport)"),
    ("◌", "host connecting or reconnecting"),
    ("✗", "host down: its libvirt cannot be read (the header names it)"),
    ("○", "host idle"),
    ("▲ ▼", "the column the table is sorted by, ascending / descending"),
    ("▶", "an action in progress (header)"),
    ("⚠", "a warning: platform data, TLS not verified, a readable password file"),
    ("READ-ONLY", "actions are disabled (--read-only)"),
)


def bindings() -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    """The app's bindings, from :data:`KEYS` (the keys without an action are the widgets')."""
    # Keys that work everywhere take priority over the focused widget's (Textual's own
    # ctrl+c, which only says how to quit, among them).
    # The footer shows bindings in their order: those it shows first, in their places.
    ordered = sorted((k for k in KEYS if k.action), key=lambda k: k.footer or len(KEYS))
    return [Binding(k.keys, k.action, k.short, show=bool(k.footer), priority=k.everywhere)
            for k in ordered]


#: Actions that only apply on the main screen (hidden from dialogs' footers, not run there).
MAIN_ONLY = frozenset(k.action for k in KEYS if k.action and not k.everywhere)
#: Actions disabled in read-only mode.
ACTING = frozenset(k.action for k in KEYS if k.acts)


def grouped() -> Iterator[tuple[str, list[Key]]]:
    """The keys by task, in :data:`GROUPS` order."""
    for g in GROUPS:
        yield g, [k for k in KEYS if k.group == g]


def markdown(legend: bool = True) -> str:
    """The key table (and the legend) as Markdown: the help screen's text and the README's."""
    lines: list[str] = []
    for group, keys in grouped():
        lines += [f"**{group}**", "", "| key | does |", "|---|---|"]
        lines += [f"| {_md(k.label)} | {_md(k.says)} |" for k in keys]
        lines.append("")
    if legend:
        lines += ["**symbols**", "", "| symbol | means |", "|---|---|"]
        lines += [f"| {_md(s)} | {_md(m)} |" for s, m in LEGEND]
        lines.append("")
    return "\n".join(lines)


def help_renderable() -> Table:
    """The help screen's text: each task's keys, then the legend of every symbol, in one
    two-column grid (narrow enough for 80 columns)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, min_width=10, style="bold cyan")
    grid.add_column(ratio=1)
    for group, keys in grouped():
        grid.add_row(Text(group, style="bold underline"), "")
        for k in keys:
            grid.add_row(k.label, k.says)
        grid.add_row("", "")
    grid.add_row(Text("symbols", style="bold underline"), "")
    for symbol, meaning in LEGEND:
        grid.add_row(symbol, meaning)
    grid.add_row("", "")
    grid.add_row("", "A confirmation lists exactly what is sent and needs a yes (y or Send). "
                 "In read-only mode (--read-only, header READ-ONLY) no action is offered.")
    return grid


START, END = "<!-- keys:start -->", "<!-- keys:end -->"


def readme_section(readme: str) -> str:
    """``readme`` with the text between :data:`START` and :data:`END` replaced by
    :func:`markdown` (what scripts/readme_keys.py writes and a test compares)."""
    head, rest = readme.split(START, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown()}{END}{tail}"


def _md(text: str) -> str:
    return text.replace("|", "\\|")
