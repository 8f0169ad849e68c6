"""The header: platform, user, age of the last platform refresh, and standing warnings."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static


class TopBar(Static):
    DEFAULT_CSS = "TopBar { height: 1; background: $primary-background; }"

    def __init__(self, platform: str, user: str, warnings: list[str], **kw: object) -> None:
        super().__init__("", **kw)  # type: ignore[arg-type]
        self.platform, self.user, self.warnings = platform, user, warnings
        self.refreshed_at = 0.0
        self.vdi_error = ""
        self.clock = time.time

    def on_mount(self) -> None:
        self.set_interval(1.0, self.redraw)
        self.redraw()

    def redraw(self) -> None:
        t = Text.assemble(("vditui ", "bold"), f"{self.platform} as {self.user}")
        if self.vdi_error:
            t.append("  platform: ", style="bold red")
            t.append(self.vdi_error[:80], style="red")
            if self.refreshed_at:
                t.append(f" (data {self._age()} old, stale)", style="red")
        elif self.refreshed_at:
            t.append(f"  VDI refreshed {self._age()} ago", style="dim")
        for w in self.warnings:
            t.append(f"  ⚠ {w[:60]}", style="bold yellow")
        self.update(t)

    def _age(self) -> str:
        s = max(0, int(self.clock() - self.refreshed_at))
        return f"{s} s" if s < 120 else f"{s // 60} min"
