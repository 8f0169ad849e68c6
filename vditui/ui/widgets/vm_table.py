"""The VM table: rows keyed by a stable VM key, cells updated in place.

A refresh only touches cells whose text changed, inside one batch; the table is rebuilt only
when the set of visible rows changes (a filter, a VM appearing or leaving), and then the cursor
goes back to the same VM and the scroll position is kept.

The table follows the engine by itself: snapshots and events only queue work and mark it dirty;
one flush, at most every ``FLUSH_DELAY`` seconds, applies them in a single batch, so an event
storm never floods Textual.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.text import Span, Text
from textual.geometry import Size
from textual.timer import Timer
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from vditui.core.drift import DriftStatus
from vditui.core.events import DomainChanged, DriftChanged, SnapshotReady
from vditui.core.models import Comparison, VmRow
from vditui.core.present import stale_hosts
from vditui.core.tally import worst_first
from vditui.ui.messages import EngineEvents, Snapshot
from vditui.ui.view import COLUMN_INDEX, COLUMNS, NO_ACKS, ROW_MARK, Acked, Filter, marked, vm_cells

FLUSH_DELAY = 0.03
#: The default order (:func:`vditui.core.tally.worst_first`), before any column's.
WORST = "worst"
RESORT_EVERY = 1.0
"""Worst first, the most often the order changes (seconds): under an event storm ranks change
many times a second and every re-sort rebuilds the table; the cells change at once, the order
at most this often (a timer brings the re-sort that was held back)."""
SORT_LABELS = {WORST: "worst first", **{key: label for key, label, _w in COLUMNS}}

Cells = tuple[Text | str, ...]


#: What a cell looks like (see `_sig`).
Sig = str | tuple[str, str, tuple[Span, ...]]


def _sig(cell: Text | str) -> Sig:
    """What a cell looks like: its text *and* style (a drift going from pending to confirmed
    keeps the text but changes the style, and the cell must be redrawn). Not ``Text.markup``,
    which renders the cell to a string: at 5,000 VMs under 500 changes/s that was 26,000 calls
    and 0.65 s of a 17 s storm on the loop (cProfile, benchmarks/README.md, session 5)."""
    if isinstance(cell, str):
        return cell
    if not cell.spans and not cell.style:
        return cell.plain
    return (cell.plain, str(cell.style), tuple(cell.spans))


def _plain(cells: Cells) -> tuple[Sig, ...]:
    return tuple(_sig(c) for c in cells)


def _sort_value(cell: Text | str) -> tuple[int, object]:
    s = cell.plain if isinstance(cell, Text) else cell
    s = s.removeprefix(ROW_MARK)  # a marked row sorts where it would unmarked
    head = s.split("≠")[0].strip()
    try:
        return (0, float(head))
    except ValueError:
        return (1, s.lower())


class VmTable(DataTable[Text | str]):
    """All VMs, or those the filter lets through."""

    DEFAULT_CSS = "VmTable { height: 1fr; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.rows_by_key: dict[str, VmRow] = {}
        self._shown: dict[str, tuple[Sig, ...]] = {}
        #: The order in force: :data:`WORST` or a column's key.
        self.sort_column: str = WORST
        self.sort_reverse = False
        # Row key -> its worst-first rank, for the rows shown (to tell when one must move).
        self._ranks: dict[str, tuple[int, str]] = {}
        self._order_checked: SnapshotReady | None = None
        self._last_resort = 0.0
        self._resort_timer: Timer | None = None
        self.rebuilds = 0
        self.cell_updates = 0
        self._cache: dict[str, tuple[tuple[object, ...], Cells]] = {}
        self._applied: dict[str, Cells] = {}
        self._host_names: dict[str, str] = {}
        #: What the table shows of the snapshots (the app's actions change it).
        self.filter = Filter()
        self.flushes = 0
        self.last_flush_at = 0.0
        self._snap: SnapshotReady | None = None
        self._dirty = False
        self._flush_pending = False
        # Rows changed since the last render (key -> new row, or None: same row, its drift
        # status moved); None when a full pass may have changed any row.
        self._touched: dict[str, VmRow | None] | None = None
        # Lifecycle events newer than the snapshot: key -> (event seq, libvirt state).
        self._fast_states: dict[str, tuple[int, str]] = {}
        self._stale_shown: frozenset[str] = frozenset()
        #: The keys of the rows the operator marked (kept across updates, filters and sorts;
        #: a VM that leaves the comparison loses its mark).
        self.marks: set[str] = set()
        self._marked_cells: dict[str, tuple[Cells, Cells]] = {}  # key -> (cells, marked)

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self._show_sort()

    # ------------------------------------------------------------------ following the engine
    @property
    def pending(self) -> bool:
        """Something the engine sent is not in the table yet."""
        return self._flush_pending

    def on_snapshot(self, message: Snapshot) -> None:
        before = self._snap.acknowledged if self._snap is not None else NO_ACKS
        snap = self._snap = message.snapshot
        if message.rows is None:
            self._touched = None  # a full pass: any row may have changed
        elif self._touched is not None:
            self._touched.update(message.rows)
            if before or snap.acknowledged:  # a rule added or expired restyles its rows
                after = snap.acknowledged
                for ident in {*before, *after}:
                    if before.get(ident) != after.get(ident):
                        self._touched.setdefault(ident[0], None)
        if self._fast_states:  # those this snapshot includes need no fast path any more
            self._fast_states = {k: v for k, v in self._fast_states.items() if v[0] > snap.seq}
        self._dirty = True
        self._schedule()

    def on_engine_events(self, message: EngineEvents) -> None:
        seen = self._snap.seq if self._snap is not None else 0
        for e in message.events:
            match e:
                case DomainChanged(seq=seq, event=ev) if seq > seen:
                    self._fast_states[ev.uuid] = (seq, ev.new.state.value if ev.new else "—")
                    self._schedule()
                case DriftChanged(change=ch) if self._touched is not None:
                    # The row's look follows its drift's status.
                    self._touched.setdefault(ch.drift.key, None)
                    self._order_checked = None  # its rank may have changed with it
                    self._dirty = True
                    self._schedule()

    def set_filter(self, flt: Filter) -> None:
        """Show the rows ``flt`` lets through, now."""
        self.filter = flt
        self._touched = None  # every row is judged again
        self._dirty = True
        self.flush()

    def _schedule(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.set_timer(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Apply everything queued since the last flush, in one batch."""
        self._flush_pending = False
        if not self.is_attached:  # the app is closing
            return
        self.flushes += 1
        with self.app.batch_update():
            snap = self._snap
            if snap is not None and self._dirty:
                self._dirty = False
                touched, self._touched = self._touched, {}
                if touched is None or not self._render_rows(snap, touched):
                    self._render_all(snap)
                elif self._order_stale(snap) and self._resort_due():
                    self._rebuild({k: self._cells_of(k) for k in self._shown}, follow_top=True)
                self._show_title()
            if self._fast_states:
                # Events newer than the snapshot: show the new state now; the next reconcile
                # (which the engine paces by its own cost) restyles the row and its drift.
                # Kept until a snapshot includes them: a re-render from an older comparison
                # must not put the old state back.
                self.show_states({k: state for k, (_seq, state) in self._fast_states.items()})
        self.last_flush_at = time.monotonic()

    def _show_title(self) -> None:
        snap = self._snap
        total = len(snap.comparison.vms) if snap is not None else len(self.rows_by_key)
        hidden = self.hidden_marks()
        marks = (f" · {len(self.marks)} marked" + (
            f", {hidden} hidden by the filter" if hidden else "")) if self.marks else ""
        order = SORT_LABELS[self.sort_column] + (" (reversed)" if self.sort_reverse else "")
        title = f"VMs {self.row_count}/{total}" + (
            " drift only" if self.filter.drift_only else "") + f" · {order}" + marks
        if self.border_title != title:  # setting it, even unchanged, repaints
            self.border_title = title

    def _resort_due(self) -> bool:
        """Whether worst first may re-sort now (see :data:`RESORT_EVERY`); if not, a timer
        re-sorts when it may."""
        wait = self._last_resort + RESORT_EVERY - time.monotonic()
        if wait <= 0:
            return True
        if self._resort_timer is None:
            self._resort_timer = self.set_timer(wait, self._late_resort)
        return False

    def _late_resort(self) -> None:
        self._resort_timer = None
        self._order_checked = None  # judge the order again, on the snapshot then
        self._dirty = True
        self.flush()

    def _order_stale(self, snap: SnapshotReady) -> bool:
        """Worst first: whether a row must move (its drift's status changed with no change to
        the row itself). Checked once per snapshot or drift change, not per flush."""
        if self.sort_column != WORST or snap is self._order_checked:
            return False
        self._order_checked = snap
        rows = self.rows_by_key
        ranks = self._ranks = {k: worst_first(rows[k], snap) for k in self._shown if k in rows}
        return sorted(ranks, key=ranks.__getitem__, reverse=self.sort_reverse) != list(
            self._shown)

    def _render_all(self, snap: SnapshotReady) -> None:
        cmp = snap.comparison
        names, pools = host_maps(cmp)
        self._stale_shown = stale_hosts(list(cmp.hosts))
        self.show(list(cmp.vms), self.filter, pools, names, snap.statuses(), self._stale_shown,
                  snap.acknowledged)
        if self.marks - self.rows_by_key.keys():
            self.marks &= self.rows_by_key.keys()
            self._marked_cells = {k: v for k, v in self._marked_cells.items() if k in self.marks}

    # ------------------------------------------------------------------ marks
    @property
    def marked_keys(self) -> list[str]:
        """The marked rows' keys, in the table's order (then those the filter hides)."""
        shown = [k for k in self._shown if k in self.marks]
        return shown + sorted(self.marks.difference(shown))

    def hidden_marks(self) -> int:
        """How many marked rows the filter hides (counted on screen, so none is sent unseen)."""
        return sum(1 for k in self.marks if k not in self._shown)

    def toggle_mark(self, key: str) -> bool:
        """Mark the row ``key``, or unmark it if marked; True if it is marked now."""
        if key in self.marks:
            self.marks.discard(key)
        else:
            self.marks.add(key)
        self._show_marks([key])
        return key in self.marks

    def mark(self, keys: Iterable[str]) -> int:
        """Mark the rows ``keys``; returns how many were not marked before."""
        new = [k for k in keys if k not in self.marks]
        self.marks.update(new)
        self._show_marks(new)
        return len(new)

    def clear_marks(self) -> int:
        """Unmark every row; returns how many were marked."""
        old, self.marks = list(self.marks), set()
        self._show_marks(old)
        return len(old)

    def confirmed_keys(self) -> list[str]:
        """The rows shown (the current filter) with a confirmed drift that is not acknowledged,
        in the table's order."""
        snap = self._snap
        if snap is None:
            return []
        # "Confirmed" as everywhere else: an acknowledged drift does not count, so a row whose
        # only confirmed drifts are acknowledged is not marked.
        return [k for k in self._shown if (r := self.rows_by_key.get(k)) is not None
                and any(snap.counts(d) for d in r.drifts)]

    def _show_marks(self, keys: Iterable[str]) -> None:
        """Redraw the name cells of ``keys`` (their mark changed) and the title."""
        snap = self._snap
        updates: list[tuple[str, str, Text | str]] = []
        for key in keys:
            r = self.rows_by_key.get(key)
            if snap is not None and r is not None and key in self._shown:
                self._diff(key, self._cells(r, snap.statuses(r.drifts), self._stale_shown,
                                       snap.acknowledged), updates)
        with self.app.batch_update():
            self._set_cells(updates)
            self._show_title()

    def _render_rows(self, snap: SnapshotReady, touched: dict[str, VmRow | None]) -> bool:
        """Show only the rows the engine's passes changed (and those whose drift status moved):
        under an event storm or after a refresh, a few rows per flush instead of thousands.
        False when the table needs a full :meth:`_render_all` instead."""
        cmp = snap.comparison
        stale = stale_hosts(list(cmp.hosts))
        if stale != self._stale_shown:  # a host's rows all change their look
            return False
        rows = [r for key, new in touched.items()
                if (r := new or self.rows_by_key.get(key)) is not None]
        status = snap.statuses(tuple(d for r in rows for d in r.drifts))
        names, pools = host_maps(cmp)
        return self.show_rows(rows, self.filter, pools, names, status, stale, snap.acknowledged)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - an empty or shrinking table has no cursor row
            return None

    def show(self, rows: list[VmRow], flt: Filter, pool_of: dict[str, str],
             host_names: dict[str, str], status: dict[tuple[str, str], DriftStatus],
             stale: frozenset[str] = frozenset(), acked: Acked = NO_ACKS) -> None:
        """Bring the table to ``rows`` filtered by ``flt``, touching as little as possible;
        ``acked``: the acknowledged drifts, dimmed."""
        self.rows_by_key = {r.key: r for r in rows}
        if host_names != self._host_names:
            self._host_names, self._cache = dict(host_names), {}
        wanted: dict[str, Cells] = {}
        everything = flt == Filter()
        for r in rows:
            if everything or flt.matches(r, pool_of):
                wanted[r.key] = self._cells(r, status, stale, acked)
        if len(self._cache) > 2 * len(rows) + 1000:
            self._cache = {k: v for k, v in self._cache.items() if k in self.rows_by_key}
        if self.sort_column == WORST and self._snap is not None:
            snap = self._snap
            self._ranks = {k: worst_first(self.rows_by_key[k], snap) for k in wanted}
            if sorted(wanted, key=self._ranks.__getitem__, reverse=self.sort_reverse) != list(
                    self._shown) and (wanted.keys() != self._shown.keys() or self._resort_due()):
                self._rebuild(wanted, follow_top=True)
                return
        if wanted.keys() != self._shown.keys():
            self._rebuild(wanted)
            return
        updates: list[tuple[str, str, Text | str]] = []
        for key, cells in wanted.items():
            self._diff(key, cells, updates)
        self._set_cells(updates)

    def show_rows(self, rows: list[VmRow], flt: Filter, pool_of: dict[str, str],
                  host_names: dict[str, str], status: dict[tuple[str, str], DriftStatus],
                  stale: frozenset[str] = frozenset(), acked: Acked = NO_ACKS) -> bool:
        """Like :meth:`show`, for ``rows`` only: the rows an incremental reconcile re-judged
        (or whose drift status moved), every other row unchanged. Costs those rows, not the
        table. Returns False, having changed nothing on screen, when :meth:`show` is needed:
        a row enters or leaves the filter, or a host was renamed."""
        if host_names != self._host_names:
            return False
        everything = flt == Filter()
        for r in rows:
            if (everything or flt.matches(r, pool_of)) != (r.key in self._shown):
                return False
        if self.sort_column == WORST and self._snap is not None:
            snap = self._snap
            if any(r.key in self._shown and worst_first(r, snap) != self._ranks.get(r.key)
                   for r in rows) and self._resort_due():
                return False  # a row moves: the full pass puts it in its place
        updates: list[tuple[str, str, Text | str]] = []
        for r in rows:
            self.rows_by_key[r.key] = r
            if r.key in self._shown:
                self._diff(r.key, self._cells(r, status, stale, acked), updates)
        self._set_cells(updates)
        return True

    def _cells(self, r: VmRow, status: dict[tuple[str, str], DriftStatus],
               stale: frozenset[str], acked: Acked = NO_ACKS) -> Cells:
        """The row's cells, its mark included."""
        cells = self._row_cells(r, status, stale, acked)
        if r.key not in self.marks:
            return cells
        hit = self._marked_cells.get(r.key)
        if hit is None or hit[0] is not cells:  # the same tuple for as long as the row is
            hit = self._marked_cells[r.key] = (cells, marked(cells))
        return hit[1]

    def _row_cells(self, r: VmRow, status: dict[tuple[str, str], DriftStatus],
                   stale: frozenset[str], acked: Acked = NO_ACKS) -> Cells:
        """The row's cells without the mark, recomputed only when the row changed: with
        thousands of VMs and an event storm, building every row's cells on every flush was
        most of the cost."""
        hit = self._cache.get(r.key)
        is_stale = (r.virt_host_id or r.host_id) in stale
        if hit is not None and hit[0][0] is r and not r.drifts and hit[0][2] == is_stale:
            # The very same row object as last time (an incremental pass keeps unchanged
            # rows), with no drift whose status could have moved: nothing to recompute.
            return hit[1]
        sig = (r, tuple((status.get(d.ident), acked.get(d.ident)) for d in r.drifts), is_stale)
        if hit is None or hit[0] != sig:
            hit = (sig, vm_cells(r, self._host_names, status, stale, acked))
            self._cache[r.key] = hit
        return hit[1]

    def _diff(self, key: str, cells: Cells, updates: list[tuple[str, str, Text | str]]) -> None:
        """Queue the cells of ``key`` that differ from what the table shows."""
        if self._applied.get(key) is cells:
            return
        self._applied[key] = cells
        plain = _plain(cells)
        old = self._shown[key]
        if plain == old:
            return
        for (col, _label, _w), new, was in zip(COLUMNS, cells, old, strict=True):
            if _sig(new) != was:
                updates.append((key, col, new))
        self._shown[key] = plain

    def _set_cells(self, updates: list[tuple[str, str, Text | str]]) -> None:
        """Change cells and drop only their rows' cached renders.

        DataTable.update_cell bumps one global counter that every render cache is keyed on,
        so each update re-renders every visible row and re-walks all rows (O(n) per frame);
        with thousands of VMs under an event storm that was most of the TUI's time. Here the
        data changes the same way, and only the touched rows leave the caches. Falls back to
        update_cell if this Textual lacks the internals."""
        if not updates:
            return
        self.cell_updates += len(updates)
        caches = ("_data", "_row_locations", "_row_renderable_cache", "_cell_render_cache",
                  "_row_render_cache", "_line_cache")
        if not all(hasattr(self, c) for c in (*caches, "_update_count")):
            for key, col, value in updates:
                self.update_cell(key, col, value)
            return
        if len(updates) > 200:
            # Most visible rows change: drop every cache at once, by one bump of the counter
            # they are keyed on, as update_cell does. Not update_cell itself: one bump and one
            # refresh per cell, 15,940 calls and 1.2 s of a 5,000-VM storm at 500/s, and each
            # bump re-walks every row for the offsets (cProfile, benchmarks/README.md, session 5).
            for key, col, value in updates:
                self._data[RowKey(key)][ColumnKey(col)] = value
            self._update_count += 1
            self.refresh()
            return
        rows: set[RowKey] = set()
        for key, col, value in updates:
            rk = RowKey(key)
            self._data[rk][ColumnKey(col)] = value
            rows.add(rk)
        indexes = {self._row_locations.get(rk) for rk in rows}
        for k in list(self._row_renderable_cache.keys()):
            if k[1] in indexes:
                self._row_renderable_cache.discard(k)
        for ck in list(self._cell_render_cache.keys()):
            if ck[0] in rows:
                self._cell_render_cache.discard(ck)
        for rck in list(self._row_render_cache.keys()):
            if rck[0] in rows:
                self._row_render_cache.discard(rck)
        # Every rendered line goes: keeping the untouched rows' lines was measured (session 2)
        # to lengthen the garbage collector's pauses (cached strips live on into gen 0
        # collections) more than it saved in rendering, storm p99 ~95 -> ~120 ms.
        self._line_cache.clear()
        self.refresh()

    def show_states(self, states: dict[str, str]) -> int:
        """Put libvirt states straight into rows' cells, ahead of the next reconcile (which
        then restyles them); returns how many shown rows changed."""
        updates: list[tuple[str, str, Text | str]] = []
        at = COLUMN_INDEX["virt"]
        for key, state in states.items():
            old = self._shown.get(key)
            if old is None or old[at] == state:
                continue
            updates.append((key, "virt", state))
            self._shown[key] = (*old[:at], state, *old[at + 1:])
            self._applied.pop(key, None)
        self._set_cells(updates)
        return len(updates)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every cell of every new row to size auto-width columns: 35,000
        measurements (~0.5 s, the screen frozen) after a rebuild of 5,000 rows. Here every
        column has a fixed width and every row one line, so only the virtual size changes."""
        if any(c.auto_width for c in self.columns.values()) or any(
                self.rows[k].auto_height or self.rows[k].label is not None
                for k in new_rows if k in self.rows):
            super()._update_dimensions(new_rows)
            return
        width = sum(c.get_render_width(self) for c in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width + self._row_label_column_width,
                                 self._total_row_height + header)

    def _rebuild(self, wanted: dict[str, Cells], follow_top: bool = False) -> None:
        keep_key = self.selected_key
        scroll_y = self.scroll_y
        # Worst first, the operator not having moved: the worst rows stay in sight.
        at_top = follow_top and self.cursor_row == 0 and scroll_y == 0
        self.rebuilds += 1
        if self.sort_column == WORST:
            self._last_resort = time.monotonic()
        self.clear()
        items = list(wanted.items())
        if self.sort_column == WORST:
            snap = self._snap
            if snap is not None:
                ranks = self._ranks = {k: self._ranks.get(k) or worst_first(
                    self.rows_by_key[k], snap) for k in wanted if k in self.rows_by_key}
                items.sort(key=lambda kv: ranks.get(kv[0], (9, kv[0])),
                           reverse=self.sort_reverse)
        else:
            idx = [c[0] for c in COLUMNS].index(self.sort_column)
            items.sort(key=lambda kv: _sort_value(kv[1][idx]), reverse=self.sort_reverse)
        for key, cells in items:
            self.add_row(*cells, key=key)
        self._shown = {k: _plain(c) for k, c in items}
        self._applied = dict(items)
        if at_top:
            self.move_cursor(row=0, scroll=False)
        elif keep_key is not None and keep_key in wanted:
            self.move_cursor(row=self.get_row_index(keep_key), scroll=False)
        self.scroll_to(y=scroll_y, animate=False)

    def sort_by(self, column: str) -> None:
        """Sort by ``column`` (a column's key, or :data:`WORST`); sorting by the same column
        again reverses the order."""
        if self.sort_column == column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        wanted = {k: self._cells_of(k) for k in self._shown}
        self._shown = {}
        self._rebuild(wanted)
        self._show_sort()

    def sort_next(self) -> str:
        """Sort by the next order (worst first, then each column, ascending); returns its
        label."""
        keys = list(SORT_LABELS)
        nxt = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_column, self.sort_reverse = "", False
        self.sort_by(nxt)
        return SORT_LABELS[nxt]

    def _show_sort(self) -> None:
        """The sorted column's header carries ▲ (▼ reversed); the title names the order."""
        arrow = " ▼" if self.sort_reverse else " ▲"
        for key, label, _w in COLUMNS:
            column = self.columns.get(ColumnKey(key))
            if column is not None:
                column.label = Text(label + (arrow if key == self.sort_column else ""))
        self._show_title()
        self.refresh()

    def _cells_of(self, key: str) -> Cells:
        return tuple(self.get_row(key))


def host_maps(cmp: Comparison) -> tuple[dict[str, str], dict[str, str]]:
    """Host id -> name, and host id -> pool id."""
    return (cmp.host_names(),
            {h.host.id: h.host.pool_id for h in cmp.hosts})
