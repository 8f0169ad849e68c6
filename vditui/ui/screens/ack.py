"""Acknowledge the selected VM's drift: ask for the reason (required) and an optional expiry
date, then the app saves the rules to the config file and applies them live."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from vditui.core.acks import AckRule, exact
from vditui.core.models import Drift, VmRow
from vditui.core.present import kinds_text


def rules_for(row: VmRow, host_names: Mapping[str, str],
              acked: Mapping[tuple[str, str], AckRule], reason: str,
              expires: date | None) -> list[AckRule]:
    """One rule per kind of the row's drifts not yet acknowledged: the VM by its exact name, on
    its host (the platform's, or libvirt's for a VM only libvirt has)."""
    kinds = dict.fromkeys(d.kind for d in unacknowledged(row, acked))
    host = host_names.get(row.host_id) or None
    return [AckRule(reason, vm=exact(row.name), host=exact(host) if host else None, kind=k,
                    expires=expires) for k in kinds]


def unacknowledged(row: VmRow, acked: Mapping[tuple[str, str], AckRule]) -> list[Drift]:
    return [d for d in row.drifts if d.ident not in acked]


def save_rules(path: Path | None, profile: str, rules: list[AckRule], today: date) -> str:
    """Save ``rules`` under ``profile`` in the config file at ``path`` (blocking: call it in a
    thread); returns where they went, for :func:`notice`. Never raises: a rule that could not
    be saved still applies for this session, and the operator is told why."""
    if path is None:
        return "this session only: no config file"
    from vditui.config.write import save_ack_rules

    try:
        save_ack_rules(path, profile, rules, note=f"acknowledged in vditui, {today.isoformat()}")
    except Exception as exc:  # noqa: BLE001 - shown to the operator, never a traceback
        return f"this session only: could not save: {exc}"
    return f"saved in {path}"


def notice(rules: list[AckRule], where: str) -> tuple[str, SeverityLevel]:
    """What the operator reads once rules are applied: which VM and kinds, and where saved."""
    kinds = ", ".join(r.kind.value for r in rules if r.kind)
    vm = rules[0].vm if rules else ""
    return (f"acknowledged {vm} ({kinds}); {where}",
            "warning" if "could not" in where else "information")


def parse_day(text: str, today: date) -> date | None:
    """``YYYY-MM-DD`` as a date from ``today`` on; None for an empty text; ValueError saying
    what is wrong otherwise."""
    text = text.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: write it as YYYY-MM-DD, e.g. "
                         f"{(today + timedelta(days=365)).isoformat()}") from None
    if len(text) != 10 or day < today:
        raise ValueError(f"{text}: give a day from today on, as YYYY-MM-DD"
                         if len(text) == 10 else f"{text!r}: write the date as YYYY-MM-DD")
    return day


class AckScreen(ModalScreen[tuple[str, date | None] | None]):
    """Dismissed with (reason, expiry or None), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, vm: str, drifts: list[Drift], today: date) -> None:
        super().__init__()
        self.vm, self.drifts, self.today = vm, drifts, today

    def compose(self) -> ComposeResult:
        with Vertical(id="ack"):
            yield Label(f"[b]Acknowledge {self.vm}[/b]: {kinds_text(d.kind for d in self.drifts)}")
            for d in self.drifts:
                yield Static(f"  {d.message}", classes="dim")
            yield Label("Why is this difference known and meant? (required)")
            yield Input(placeholder="e.g. licence server kept out of the platform on purpose",
                        id="ack-reason")
            yield Label("Until when (YYYY-MM-DD, the last day it applies; empty: no expiry)")
            yield Input(placeholder="YYYY-MM-DD", id="ack-expires", max_length=10)
            yield Static("", id="ack-error")
            yield Label("enter: next / save   esc: cancel", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#ack-reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        reason = self.query_one("#ack-reason", Input)
        error = self.query_one("#ack-error", Static)
        if not reason.value.strip():
            error.update("a reason is required")
            reason.focus()
            return
        if event.input is reason:
            self.query_one("#ack-expires", Input).focus()
            return
        try:
            expires = parse_day(self.query_one("#ack-expires", Input).value, self.today)
        except ValueError as exc:
            error.update(str(exc))
            return
        self.dismiss((reason.value.strip(), expires))

    def action_cancel(self) -> None:
        self.dismiss(None)
