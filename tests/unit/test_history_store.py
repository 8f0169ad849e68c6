"""The drift history's store: episodes, acknowledgement, incidents, migration from schema 1,
retention with an injected clock, the file's mode, and two processes writing one file."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vditui.core import history_db as hdb
from vditui.core.acks import AckRule
from vditui.core.drift import DriftChange, DriftState, DriftStatus
from vditui.core.events import (
    DriftChanged,
    HostChanged,
    HostLink,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.history import History, monotonic_time, wall_time
from vditui.core.models import (
    Comparison,
    ConnState,
    Drift,
    DriftKind,
    HostView,
    Severity,
    VdiHost,
    VdiInventory,
    VirtError,
    VirtErrorKind,
)

URL = "http://127.0.0.1:8088"
DAY = 86400.0


def drift(key: str = "uuid-1", subject: str = "vm-1", kind: DriftKind = DriftKind.STATE,
          host_id: str = "h1") -> Drift:
    return Drift(kind, Severity.WARNING, key, subject, host_id, f"{subject} differs",
                 "running", "shutoff")


def changed(d: Drift, status: DriftStatus, at: float, since_wall: float,
            rule: AckRule | None = None) -> DriftChanged:
    since = monotonic_time(since_wall, now_wall=at)
    return DriftChanged(at, DriftChange(d, status, since), rule)


def snapshot(at: float, drifts: dict[tuple[str, str], DriftState],
             acknowledged: dict[tuple[str, str], AckRule] | None = None) -> SnapshotReady:
    return SnapshotReady(at, 0, Comparison((), ()), drifts, {}, acknowledged=acknowledged or {},
                         monotonic=time.monotonic())


def inventory() -> PlatformRefreshed:
    host = VdiHost(id="h1", name="hv-1", ip="127.0.0.1", status=1, pool_id="p", pool_name="p")
    return PlatformRefreshed(time.time(), VdiInventory(hosts=(host,), vms=(), pools=()))


def link(name: str, state: ConnState, error: VirtError | None = None) -> HostLink:
    return HostLink(HostView("h1", "test+tcp://127.0.0.1/default", state, error=error), name,
                    0.0, (), True)


@pytest.fixture
def hist(tmp_path: Path):
    h = History(tmp_path / "state" / "history.sqlite3", URL, days=90)
    h.open()
    yield h
    h.close()


def read(path: Path) -> list[hdb.DriftEpisode]:
    db = hdb.connect(path, create=False)
    try:
        return hdb.drifts(db)
    finally:
        db.close()


def test_a_drift_episode_first_seen_confirmed_acknowledged_resolved(hist: History) -> None:
    hist.record(inventory())
    d, t0 = drift(), time.time() - 100
    hist.record(changed(d, DriftStatus.PENDING, t0, t0))
    hist.record(changed(d, DriftStatus.CONFIRMED, t0 + 10, t0))
    hist.record(changed(d, DriftStatus.CONFIRMED, t0 + 20, t0, AckRule("licence VM")))
    assert hist.flush(10)
    (ep,) = read(hist.path)
    assert (ep.platform, ep.key, ep.kind, ep.subject, ep.host) == (URL, "uuid-1", "state",
                                                                   "vm-1", "hv-1")
    assert (ep.vdi_value, ep.virt_value, ep.message) == ("running", "shutoff", "vm-1 differs")
    assert ep.first_seen == pytest.approx(t0, abs=0.01)
    assert ep.confirmed == t0 + 10  # the first confirmation is kept
    assert (ep.acknowledged, ep.ack_reason) == (t0 + 20, "licence VM")
    assert ep.resolved is None
    hist.record(changed(d, DriftStatus.RESOLVED, t0 + 30, t0 + 30))
    # It comes back: a second episode, the first one stays as it was.
    hist.record(changed(d, DriftStatus.CONFIRMED, t0 + 40, t0 + 40))
    assert hist.flush(10)
    first, second = read(hist.path)
    assert first.resolved == t0 + 30 and first.confirmed == t0 + 10
    assert second.first_seen == pytest.approx(t0 + 40, abs=0.01) and second.resolved is None


def test_a_pending_drift_that_heals_leaves_no_row(hist: History) -> None:
    stays, heals, t0 = drift("u-stays", "stays"), drift("u-heals", "heals"), time.time()
    for d in (stays, heals):
        hist.record(changed(d, DriftStatus.PENDING, t0, t0))
    hist.record(snapshot(t0 + 1, {stays.ident: DriftState(DriftStatus.PENDING, 0.0)}))
    assert hist.flush(10)
    assert [ep.subject for ep in read(hist.path)] == ["stays"]


def test_acknowledged_in_a_snapshot(hist: History) -> None:
    d, t0 = drift(), time.time()
    hist.record(changed(d, DriftStatus.CONFIRMED, t0, t0))
    state = DriftState(DriftStatus.CONFIRMED, 0.0)
    hist.record(snapshot(t0 + 5, {d.ident: state}, {d.ident: AckRule("known")}))
    hist.record(snapshot(t0 + 9, {d.ident: state}, {d.ident: AckRule("known")}))
    assert hist.flush(10)
    (ep,) = read(hist.path)
    assert (ep.acknowledged, ep.ack_reason) == (t0 + 5, "known")


def test_host_and_platform_incidents(hist: History) -> None:
    t0 = time.time()
    err = VirtError(VirtErrorKind.REFUSED, "test+tcp://127.0.0.1/default", "Connection refused",
                    hint="is libvirtd running?")
    hist.record(HostChanged(t0, link("hv-1", ConnState.RECONNECTING, err)))
    hist.record(HostChanged(t0 + 1, link("hv-1", ConnState.FAILED, err)))  # the same incident
    hist.record(HostChanged(t0 + 5, link("hv-1", ConnState.CONNECTED)))
    hist.record(HostChanged(t0 + 6, link("hv-2", ConnState.FAILED)))
    hist.record(PlatformFailed(t0 + 7, f"{URL}: unreachable: ConnectError"))
    hist.record(PlatformFailed(t0 + 8, f"{URL}: unreachable: ConnectError"))
    assert hist.flush(10)
    hist.record(PlatformRefreshed(t0 + 9, VdiInventory((), (), ())))
    assert hist.flush(10)
    db = hdb.connect(hist.path, create=False)
    got = [(i.scope, i.name, i.cause, i.started - t0, None if i.ended is None else i.ended - t0)
           for i in hdb.incidents(db)]
    assert hdb.incidents(db, host="hv-2")[0].name == "hv-2"
    db.close()
    assert got == [("host", "hv-1", "refused: Connection refused", 0, 5),
                   ("host", "hv-2", "", 6, None),
                   ("platform", URL, f"{URL}: unreachable: ConnectError", 7, 9)]


def test_the_file_is_private_and_in_wal_mode(hist: History) -> None:
    assert stat.S_IMODE(hist.path.stat().st_mode) == 0o600
    db = sqlite3.connect(hist.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == hdb.SCHEMA_VERSION
    db.close()
    hist.record(changed(drift(), DriftStatus.CONFIRMED, time.time(), time.time()))
    assert hist.flush(10)
    for extra in ("-wal", "-shm"):
        side = hist.path.with_name(hist.path.name + extra)
        assert stat.S_IMODE(side.stat().st_mode) == 0o600


def test_restart_finds_the_open_drifts(tmp_path: Path) -> None:
    path, t0 = tmp_path / "h.sqlite3", time.time() - 3600
    first = History(path, URL, 90)
    first.open()
    first.record(changed(drift("a", "vm-a"), DriftStatus.CONFIRMED, t0 + 10, t0))
    first.record(changed(drift("b", "vm-b"), DriftStatus.PENDING, t0, t0))
    first.record(changed(drift("c", "vm-c"), DriftStatus.CONFIRMED, t0, t0))
    first.record(changed(drift("c", "vm-c"), DriftStatus.RESOLVED, t0 + 5, t0 + 5))
    first.close()
    other = History(path, "http://127.0.0.2:8088", 90)
    assert other.open() == []  # keyed by platform
    other.close()
    again = History(path, URL, 90)
    got = {ep.subject: (ep.first_seen, ep.confirmed) for ep in again.open()}
    assert got.keys() == {"vm-a", "vm-b"}
    assert got["vm-a"][0] == pytest.approx(t0, abs=0.01) and got["vm-a"][1] == t0 + 10
    assert got["vm-b"][1] is None
    # The next run finds "a" gone and "b" still pending once every host is read.
    again.forget_missing([], t0 + 100)
    again.close()
    (a,) = [ep for ep in read(path) if ep.subject == "vm-a"]
    assert a.resolved == t0 + 100
    assert {ep.subject for ep in read(path)} == {"vm-a", "vm-c"}


def test_wall_and_monotonic_convert_both_ways() -> None:
    assert wall_time(90.0, now_wall=1000.0, now_monotonic=100.0) == 990.0
    assert monotonic_time(990.0, now_wall=1000.0, now_monotonic=100.0) == 90.0


def test_retention_prunes_what_ended_long_ago(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    path = tmp_path / "h.sqlite3"
    h = History(path, URL, days=90, clock=lambda: now)
    h.open()
    for name, start, end in (("old", now - 200 * DAY, now - 100 * DAY),
                             ("recent", now - 200 * DAY, now - 10 * DAY),
                             ("open", now - 300 * DAY, None)):
        d = drift(name, name)
        h.record(changed(d, DriftStatus.CONFIRMED, start, start))
        if end is not None:
            h.record(changed(d, DriftStatus.RESOLVED, end, end))
    h.record(HostChanged(now - 95 * DAY, link("old-host", ConnState.FAILED)))
    h.record(HostChanged(now - 91 * DAY, link("old-host", ConnState.CONNECTED)))
    h.close()
    assert {ep.subject for ep in read(path)} == {"old", "recent", "open"}
    # The next open prunes (as it does every hour after).
    h = History(path, URL, days=90, clock=lambda: now)
    h.open()
    h.close()
    assert {ep.subject for ep in read(path)} == {"recent", "open"}
    db = hdb.connect(path, create=False)
    assert hdb.incidents(db) == []
    db.close()


SCHEMA_V1 = """
CREATE TABLE drift (id INTEGER PRIMARY KEY, platform TEXT NOT NULL, key TEXT NOT NULL,
    kind TEXT NOT NULL, subject TEXT NOT NULL, first_seen REAL NOT NULL, confirmed REAL,
    resolved REAL, vdi_value TEXT, virt_value TEXT);
CREATE TABLE platform_failure (id INTEGER PRIMARY KEY, platform TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, cause TEXT);
PRAGMA user_version = 1;
"""


def test_a_schema_1_file_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    rows = [(URL, "u1", "state", "vm-1", 100.0, 110.0, 200.0, "running", "shutoff"),
            # Two writers of schema 1 opened the same episode twice: merged into the earliest.
            (URL, "u2", "vcpu", "vm-2", 300.0, None, None, "2", "4"),
            (URL, "u2", "vcpu", "vm-2", 290.0, 320.0, None, None, None),
            (URL, "u3", "memory", "vm-3", 400.0, None, None, None, None)]
    db.executemany("INSERT INTO drift (platform, key, kind, subject, first_seen, confirmed, "
                   "resolved, vdi_value, virt_value) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    db.execute("INSERT INTO platform_failure (platform, started, ended, cause) "
               "VALUES (?, 50, 60, 'unreachable')", (URL,))
    db.commit()
    db.close()

    h = History(path, URL, days=100_000)
    opened = {ep.key: ep for ep in h.open()}
    assert opened.keys() == {"u2", "u3"}
    assert (opened["u2"].first_seen, opened["u2"].confirmed) == (290.0, 320.0)
    assert (opened["u2"].vdi_value, opened["u2"].host, opened["u2"].ack_reason) == ("", "", None)
    # The migrated file takes the current schema's writes: its open episode stays one row.
    h.record(changed(drift("u2", "vm-2", DriftKind.VCPU), DriftStatus.CONFIRMED, 500.0, 500.0))
    h.close()
    eps = read(path)
    assert [(ep.key, ep.first_seen, ep.resolved) for ep in eps] == [
        ("u1", 100.0, 200.0), ("u2", 290.0, None), ("u3", 400.0, None)]
    assert eps[1].virt_value == "shutoff"  # updated by the new write
    db = hdb.connect(path, create=False)
    assert db.execute("PRAGMA user_version").fetchone()[0] == hdb.SCHEMA_VERSION
    assert [(i.scope, i.name, i.started, i.ended, i.cause) for i in hdb.incidents(db)] == [
        ("platform", URL, 50.0, 60.0, "unreachable")]
    db.close()


HOST_QUERY = ("EXPLAIN QUERY PLAN SELECT * FROM drift WHERE (resolved IS NULL OR resolved >= ?) "
              "AND host = ? ORDER BY first_seen, id")


@pytest.mark.parametrize("old", [None, SCHEMA_V1])
def test_one_hosts_episodes_are_found_through_an_index(tmp_path: Path, old: str | None) -> None:
    # history --since 7d --host X over a year of a large estate: an index lookup, not a scan
    # of the period's episodes (benchmarks' monitor section measures it).
    path = tmp_path / "h.sqlite3"
    if old is not None:
        raw = sqlite3.connect(path)
        raw.executescript(old)
        raw.close()
    db = hdb.connect(path)
    plan = " ".join(r[-1] for r in db.execute(HOST_QUERY, (0.0, "hv1")))
    incidents = " ".join(r[-1] for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM incident WHERE (ended IS NULL OR ended >= ?) "
        "AND scope = 'host' AND name = ?", (0.0, "hv1")))
    db.close()
    assert "drift_host" in plan, plan
    assert "incident_name" in incidents, incidents


def test_a_newer_or_foreign_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {hdb.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(hdb.HistoryError, match=r"newer vditui.*upgrade"):
        hdb.connect(newer)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(hdb.HistoryError, match=r"not a vditui history.*move it away"):
        hdb.connect(garbage)
    foreign = tmp_path / "foreign.sqlite3"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(hdb.HistoryError, match="not a vditui history"):
        hdb.connect(foreign)
    with pytest.raises(hdb.HistoryError, match="no history yet"):
        hdb.connect(tmp_path / "missing.sqlite3", create=False)


_WRITER = textwrap.dedent("""
    import sys, time
    from vditui.core.drift import DriftChange, DriftStatus
    from vditui.core.events import DriftChanged
    from vditui.core.history import History
    from vditui.core.models import Drift, DriftKind, Severity

    path, me, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    h = History(__import__("pathlib").Path(path), "http://127.0.0.1:8088", 90)
    h.open()
    while not __import__("os").path.exists(go):  # both start writing together
        time.sleep(0.005)
    shared = Drift(DriftKind.STATE, Severity.WARNING, "shared", "shared-vm", "h", "m")
    for i in range(n):
        own = Drift(DriftKind.STATE, Severity.WARNING, f"{me}-{i}", f"{me}-vm-{i}", "h", "m")
        now, mono = time.time(), time.monotonic()
        h.record(DriftChanged(now, DriftChange(own, DriftStatus.CONFIRMED, mono)))
        h.record(DriftChanged(now, DriftChange(shared, DriftStatus.PENDING, mono)))
        if i % 10 == 9:
            h.record(DriftChanged(now, DriftChange(shared, DriftStatus.CONFIRMED, mono)))
        h.flush()  # one transaction per round: the two processes interleave
    h.close()
    print(h.written, h.failed)
""")


def test_two_processes_writing_one_file(tmp_path: Path) -> None:
    path, go, n = tmp_path / "h.sqlite3", tmp_path / "go", 150
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), me, str(n), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
             for me in ("a", "b")]
    time.sleep(0.3)  # both opened (and migrated) the file; now they race
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        written, failed = map(int, out.split())
        assert failed == 0 and written == 2 * n + n // 10
    db = hdb.connect(path, create=False)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    eps = hdb.drifts(db)
    db.close()
    own = [ep for ep in eps if ep.key != "shared"]
    assert sorted(ep.key for ep in own) == sorted(f"{me}-{i}" for me in "ab" for i in range(n))
    (shared,) = [ep for ep in eps if ep.key == "shared"]  # one episode, not one per writer
    assert shared.confirmed is not None and shared.resolved is None


def test_a_writer_held_off_by_another_process_keeps_its_rows(tmp_path: Path,
                                                              monkeypatch) -> None:
    import vditui.core.history as history_mod

    monkeypatch.setattr(hdb, "BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(history_mod, "WRITE_ATTEMPTS", 10_000)  # wait as long as it takes
    path = tmp_path / "h.sqlite3"
    h = History(path, URL, 90)
    h.open()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long transaction
    now = time.time()
    for i in range(100):
        h.record(changed(drift(f"k{i}", f"vm{i}"), DriftStatus.CONFIRMED, now, now))
    assert not h.flush(0.5)  # queued, not written: the writer waits, the caller does not
    assert read(path) == []  # a reader is not held up by the lock either
    other.execute("COMMIT")
    other.close()
    assert h.flush(30)
    h.close()
    assert len(read(path)) == 100 and h.failed == 0


def test_a_file_locked_past_the_busy_timeout_at_open_says_so(tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.setattr(hdb, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "h.sqlite3"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a new file: opening it must create the schema
    with pytest.raises(hdb.HistoryError, match="another process has held the history locked"):
        History(path, URL, 90).open()
    other.execute("ROLLBACK")
    other.close()


def test_a_history_opened_late_records_the_drifts_as_they_stand(tmp_path: Path) -> None:
    # serve's history was locked at start: when the retry opens it, the drifts already seen
    # (whose changes went by unrecorded) are written from the next snapshot.
    h = History(tmp_path / "state" / "history.sqlite3", URL, days=90)
    h.open()
    try:
        d, t0 = drift(), time.time()
        first_seen = time.monotonic() - 30
        snap = SnapshotReady(t0, 0, Comparison((), (), (d,)),
                             {d.ident: DriftState(DriftStatus.CONFIRMED, first_seen)},
                             {"h1": link("hv-1", ConnState.CONNECTED)}, monotonic=time.monotonic())
        h.record(snap)
        assert h.flush(10)
        assert read(h.path) == []  # an ordinary snapshot writes no drift
        h.catch_up()
        h.record(snap)
        h.record(snap)  # once only
        assert h.flush(10)
        (ep,) = read(h.path)
        assert (ep.subject, ep.host, ep.confirmed) == ("vm-1", "hv-1", t0)
        assert ep.first_seen == pytest.approx(t0 - 30, abs=1)
    finally:
        h.close()
