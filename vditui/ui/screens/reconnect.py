"""Reconnect a host: every candidate URI probed, why each failed, try another, keep the one
that works (for this session, or saved in the config file with comments preserved)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static
from textual.worker import Worker

from vditui.core.events import HostLink
from vditui.core.face import EngineFace
from vditui.core.models import ConnState, VdiHost
from vditui.core.probe import ProbeResult
from vditui.core.uris import UriError, alternatives, parse, redact_uri

Prober = Callable[[list[str]], Awaitable[list[ProbeResult]]]
Adopter = Callable[[str], Awaitable[None]]
Saver = Callable[[str], None]


class ReconnectScreen(ModalScreen[str | None]):
    """Dismissed with the adopted URI, or None."""

    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("p", "probe_all", "probe all"),
        Binding("a", "adopt", "adopt selected"),
        Binding("w", "save", "save to config"),
        Binding("slash,i", "focus_input", "type a URI"),
    ]

    def __init__(self, host: VdiHost, current: str, status: str, uris: list[str],
                 prober: Prober, adopter: Adopter, saver: Saver | None,
                 config_path: Path | None) -> None:
        super().__init__()
        self.host, self.current, self.status = host, current, status
        self.uris = list(dict.fromkeys(uris))
        self.prober, self.adopter, self.saver = prober, adopter, saver
        self.config_path = config_path
        self.results: dict[str, ProbeResult] = {}
        self.adopted: str | None = None

    @classmethod
    def for_host(cls, engine: EngineFace, host: VdiHost, link: HostLink, config_path: Path | None,
                 profile: str) -> ReconnectScreen:
        """The screen for ``host`` as ``link`` shows it, probing and adopting through the
        engine's commands; ``w`` saves to ``config_path`` (if any) under ``profile``."""
        view = link.view
        status = view.state.value + (f": {view.error.kind.value}" if view.error and (
            view.state is not ConnState.CONNECTED) else "")
        saver: Saver | None = None
        if config_path is not None:
            from vditui.config.write import save_host_uri

            def saver(uri: str) -> None:
                save_host_uri(config_path, profile, host.name, uri)

        async def adopter(uri: str) -> None:
            await engine.use_uri(link.host_id, uri)

        uris = [*link.uris, *(a for u in link.uris for a in alternatives(u))]
        return cls(host, view.uri, status, uris, engine.probe_uris, adopter, saver, config_path)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app's one handler says what failed (a screen's workers report to the screen).
        self.app.post_message(Worker.StateChanged(event.worker, event.state))

    def compose(self) -> ComposeResult:
        with Vertical(id="reconnect"):
            yield Label(f"[b]Reconnect {self.host.name}[/b] ({self.host.ip})")
            now = tell_apart(self.current, [u for u in self.uris if u != self.current],
                             max(30, self.app.size.width - 30)) if self.current else "—"
            yield Static(Text(f"now: {now}  {self.status}"), id="rc-status")
            yield DataTable(id="rc-table", cursor_type="row")
            yield Static("", id="rc-detail")
            yield Input(placeholder="type a libvirt URI, e.g. qemu+ssh://root@10.0.0.5/system, "
                        "then enter to try it", id="rc-input")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#rc-table", DataTable)
        # The URI gets the room the result and timing leave (the hint, cut to a sliver at 80
        # columns, is said whole under the table); the info column only where it is readable.
        room = max(40, self.app.size.width - 4 - 6 - 2 - 16 - 6 - 4)
        self.uri_width = min(room, 60) if room >= 60 + INFO_MIN else room
        table.add_column("URI", key="uri", width=self.uri_width)
        table.add_column("result", key="result", width=16)
        table.add_column("ms", key="ms", width=6)
        self.has_info = room >= 60 + INFO_MIN
        if self.has_info:
            table.add_column("libvirt / hint", key="info", width=room - self.uri_width - 2)
        for uri in self.uris:
            table.add_row(*self._cells(uri), key=uri)
        table.focus()
        self.action_probe_all()

    def _cells(self, uri: str) -> tuple[str, ...]:
        cells = (self._uri_cell(uri), "probing…", "")
        return (*cells, "") if self.has_info else cells

    def _uri_cell(self, uri: str) -> str:
        return tell_apart(redact_uri(uri), [redact_uri(u) for u in self.uris if u != uri],
                          self.uri_width)

    # ------------------------------------------------------------------ probing
    def action_probe_all(self) -> None:
        self._probe(list(self.uris))

    @work(group="probe", exclusive=True, exit_on_error=False)
    async def _probe(self, uris: list[str]) -> None:
        table = self.query_one("#rc-table", DataTable)
        for uri in uris:
            table.update_cell(uri, "result", "probing…")
        results = await self.prober(uris)
        for r in results:
            self.results[r.uri] = r
            if r.ok:
                res = Text("OK " + r.transport, style="bold green")
                info = f"libvirt {r.libvirt_version} on {r.hostname or '?'}"
            else:
                assert r.error is not None
                res = Text("✗ " + r.error.kind.value, style="bold red")
                info = r.error.hint
            table.update_cell(r.uri, "result", res)
            table.update_cell(r.uri, "ms", f"{r.latency * 1000:.0f}")
            if self.has_info:
                table.update_cell(r.uri, "info", info)
        self._show_detail()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _selected(self) -> str | None:
        table = self.query_one("#rc-table", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _show_detail(self) -> None:
        uri = self._selected()
        r = self.results.get(uri or "")
        detail = self.query_one("#rc-detail", Static)
        if r is None:
            detail.update("")
        elif r.ok:
            detail.update(Text(f"{redact_uri(uri or '')} works. a: adopt it now   "
                               f"w: save it for {self.host.name}",
                               style="green"))
        else:
            assert r.error is not None
            detail.update(Text.assemble((f"{r.error.kind.value}: ", "bold red"),
                                        r.error.message, "\nhint: ", r.error.hint))

    # ------------------------------------------------------------------ typing a URI
    def action_focus_input(self) -> None:
        self.query_one("#rc-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        uri = event.value.strip()
        try:
            parse(uri)
        except UriError as exc:
            self.notify(str(exc), title="invalid URI", severity="error")
            if "***" in str(exc):  # it held a password: do not leave it on the screen
                event.input.value = ""
            return
        table = self.query_one("#rc-table", DataTable)
        if uri not in self.uris:
            self.uris.insert(0, uri)
            table.add_row(*self._cells(uri), key=uri)
        table.move_cursor(row=table.get_row_index(uri))
        table.focus()
        event.input.value = ""
        self._probe([uri])

    # ------------------------------------------------------------------ keeping one
    def action_adopt(self) -> None:
        uri = self._selected()
        if uri is None:
            return
        r = self.results.get(uri)
        if r is not None and not r.ok:
            self.notify(f"{redact_uri(uri)} failed its probe; adopting it anyway, vditui will "
                        "keep retrying",
                        severity="warning")
        self._adopt(uri)

    @work(group="adopt", exclusive=True, exit_on_error=False)
    async def _adopt(self, uri: str) -> None:
        await self.adopter(uri)
        self.adopted = uri
        self.notify(f"{self.host.name} now uses {uri} (this session)")
        self.query_one("#rc-status", Static).update(Text(f"now: {uri}  (adopted)"))

    def action_save(self) -> None:
        uri = self._selected()
        if uri is None:
            return
        if self.saver is None or self.config_path is None:
            self.notify("no config file to save to (demo or --url without --config)",
                        severity="warning")
            return
        self._save(uri)

    @work(group="save", exclusive=True, exit_on_error=False, thread=True)
    def _save(self, uri: str) -> None:
        assert self.saver is not None
        try:
            self.saver(uri)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, never a traceback
            self.app.call_from_thread(self.notify, f"could not save: {exc}", severity="error")
            return
        self.app.call_from_thread(
            self.notify, f"saved {uri} for {self.host.name} in {self.config_path}")

    def action_close(self) -> None:
        self.dismiss(self.adopted)


#: The narrowest the libvirt / hint column is worth showing.
INFO_MIN = 24


def tell_apart(uri: str, others: list[str], width: int) -> str:
    """``uri`` in ``width`` cells, keeping in sight where it differs from the most similar of
    ``others`` (two URIs that differ only in their query must not look the same when cut)."""
    if len(uri) <= width:
        return uri
    same = max((_common(uri, o) for o in others), default=0)
    keep = width - 2  # an ellipsis at each end, at most
    start = max(0, min(same - keep // 3, len(uri) - keep))
    body = uri[start:start + keep]
    return ("…" if start else "") + body + ("…" if start + keep < len(uri) else "")


def _common(a: str, b: str) -> int:
    """How many first characters ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
