"""The header: what is wrong (drifts by status, hosts down, VMs unchecked), then the platform,
user and age of its last refresh, an action in progress, and standing warnings.

Every count comes from :func:`vditui.core.tally.tally`; each is led by a symbol and a word, so it
reads with NO_COLOR.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rich.text import Text
from textual.widgets import Static

from vditui.core.events import PlatformFailed, PlatformRefreshed
from vditui.core.present import age
from vditui.core.tally import Tally, tally
from vditui.ui.messages import EngineEvents, Snapshot

#: Cells the platform's failure cause may take, so "(data N s old, stale)" fits on 80 columns.
CAUSE_WIDTH = 44
_WHERE = re.compile(r"^(?:GET|POST|PUT|PATCH|DELETE) /\S*: ")


def platform_cause(message: str, url: str) -> str:
    """A platform failure without the platform's URL and the request (the header shows the URL
    already): what went wrong, e.g. "HTTP 500 Internal Server Error"."""
    text = message.strip()
    if url:
        if text.startswith(url):
            text = text[len(url):].lstrip(" :")
        text = text.replace(f" to {url}", "").replace(url, "the platform")
    return _WHERE.sub("", text) or message


class TopBar(Static):
    DEFAULT_CSS = "TopBar { height: auto; max-height: 5; background: $primary-background; }"

    def __init__(self, platform: str, user: str, warnings: list[str], *, read_only: bool = False,
                 **kw: Any) -> None:
        super().__init__("", **kw)
        self.platform, self.user, self.warnings = platform, user, warnings
        #: Actions are disabled (``read_only``): said first, on every redraw.
        self.read_only = read_only
        self.refreshed_at = 0.0
        self.vdi_error = ""
        #: Warnings of the last platform refresh (an inconsistent answer), shown while they last.
        self.data_warnings: list[str] = []
        self.clock = time.time
        #: The counts of the newest snapshot; None before the first (logging in).
        self.tally: Tally | None = None
        #: An action being followed up (e.g. "sync status: 3 of 5 done"), "" when none.
        self.busy = ""

    def on_snapshot(self, message: Snapshot) -> None:
        counts = tally(message.snapshot)
        if counts != self.tally:
            self.tally = counts
            self.redraw()

    def set_busy(self, text: str) -> None:
        """Say (or, with "", stop saying) that an action is in progress."""
        if text != self.busy:
            self.busy = text
            self.redraw()

    def on_mount(self) -> None:
        self.set_interval(1.0, self.redraw)
        self.redraw()

    def on_engine_events(self, message: EngineEvents) -> None:
        changed = False
        for e in message.events:
            match e:
                case PlatformFailed(message=text):
                    self.vdi_error, changed = text, True
                case PlatformRefreshed(warnings=warnings):
                    self.vdi_error, changed = "", True
                    self.refreshed_at = self.clock()
                    self.data_warnings = list(warnings)
        if changed:
            self.redraw()

    def redraw(self) -> None:
        t = self.status_line()
        t.append("\n")
        t.append_text(self._platform_line())
        if self.busy:
            t.append(f"  ▶ {self.busy}", style="bold cyan")
        for w in self.data_warnings:
            t.append(f"  ⚠ platform data: {platform_cause(w, self.platform)[:60]}",
                     style="bold yellow")
        # Standing warnings (TLS not verified, a readable password file) are about security:
        # shown whole, on lines of their own, so the advice (e.g. chmod 600 FILE) is readable.
        for w in self.warnings:
            t.append(f"\n⚠ {w}", style="bold yellow")
        self.update(t)

    def status_line(self) -> Text:
        """What is wrong, worst first: ``! 5 drifts (2 critical)  … 3 pending  ~ 1 acknowledged
        ✗ 2 of 12 hosts down: hv-a, hv-b  ? 8 VMs unchecked``; while starting, what it does."""
        t = Text.assemble(("vditui ", "bold"), self._mode())
        n = self.tally
        if n is None:
            t.append(f"logging in to {self.platform}…" if self.platform else "starting…",
                     style="bold cyan")
            return t
        parts: list[tuple[str, str]] = []
        crit = f" ({n.critical} critical)" if n.critical else ""
        parts.append((f"! {n.confirmed} drift{'' if n.confirmed == 1 else 's'}{crit}",
                      "bold red" if n.confirmed else "bold green"))
        if n.users:
            parts.append((f"☻ {n.users} user{'' if n.users == 1 else 's'} affected", "bold red"))
        if n.pending:
            parts.append((f"… {n.pending} pending", "yellow"))
        if n.acknowledged:
            parts.append((f"~ {n.acknowledged} acknowledged", "dim"))
        if n.reading:
            parts.append((f"◌ reading hosts: {n.hosts - n.reading} of {n.hosts}", "cyan"))
        if n.down:
            parts.append((f"✗ {n.down_text}", "bold red"))
        if n.unchecked:
            parts.append((f"? {n.unchecked} VM{'' if n.unchecked == 1 else 's'} unchecked",
                          "yellow"))
        for i, (text, style) in enumerate(parts):
            t.append("  " if i else "", style=None)
            t.append(text, style=style)
        return t

    def _platform_line(self) -> Text:
        if self.vdi_error:
            # Failing: the cause and the data's age first, so they fit on a narrow terminal.
            t = Text.assemble(("platform: ", "bold red"))
            cause = Text(platform_cause(self.vdi_error, self.platform), style="red")
            cause.truncate(CAUSE_WIDTH, overflow="ellipsis")
            t.append_text(cause)
            if self.refreshed_at:
                t.append(f" (data {self._age()} old, stale)", style="red")
            t.append(f"  {self.platform} as {self.user}")
        else:
            t = Text(f"{self.platform} as {self.user}")
            if self.refreshed_at:
                t.append(f"  VDI refreshed {self._age()} ago", style="dim")
        return t

    def _mode(self) -> Text:
        return Text("READ-ONLY ", style="bold reverse") if self.read_only else Text()

    def _age(self) -> str:
        return age(self.refreshed_at, self.clock())
