"""The drift history's SQLite file: opening it (0600, WAL, busy timeout), its schema and the
forward migrations, and reading it back.

Several vditui processes (a TUI and a ``serve``) may write one file at once. SQLite's WAL mode
serialises their transactions without corrupting anything; what the schema adds is that an
*open* episode (a drift not yet resolved, a host or platform failure not yet over) is one row
whatever the number of writers: a unique index over the open rows only, and every write an
upsert against it (see :mod:`vditui.core.history`). Pure standard library (``sqlite3``); every
function here blocks, so callers run it off the event loop.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vditui.core.safefile import (
    PRIVATE_FILE,
    UnsafeFileError,
    check_not_special,
    open_fd,
    private_dir,
)

SCHEMA_VERSION = 3
"""The schema this vditui writes (``PRAGMA user_version``); older files are migrated forward."""
BUSY_TIMEOUT_MS = 5000
"""How long a writer waits for another process's transaction before giving up."""

_SCHEMA = """
CREATE TABLE drift (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,      -- the platform's URL
    key TEXT NOT NULL,           -- Drift.key: the VM's libvirt UUID / platform id, or host id
    kind TEXT NOT NULL,          -- DriftKind value
    subject TEXT NOT NULL,       -- the VM's or host's name
    host TEXT NOT NULL DEFAULT '',  -- the host's name
    message TEXT NOT NULL DEFAULT '',
    vdi_value TEXT NOT NULL DEFAULT '',
    virt_value TEXT NOT NULL DEFAULT '',
    first_seen REAL NOT NULL,    -- wall-clock seconds (Unix time), as every time here
    confirmed REAL,
    acknowledged REAL,
    ack_reason TEXT,
    resolved REAL
);
CREATE UNIQUE INDEX drift_open ON drift(platform, key, kind) WHERE resolved IS NULL;
CREATE INDEX drift_subject ON drift(subject);
CREATE INDEX drift_resolved ON drift(resolved);
CREATE INDEX drift_host ON drift(host, resolved);
CREATE TABLE incident (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    scope TEXT NOT NULL,         -- 'host' or 'platform'
    name TEXT NOT NULL,          -- the host's name, or the platform's URL
    cause TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL,
    ended REAL
);
CREATE UNIQUE INDEX incident_open ON incident(platform, scope, name) WHERE ended IS NULL;
CREATE INDEX incident_ended ON incident(ended);
CREATE INDEX incident_name ON incident(scope, name, ended);
"""


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run ``sql``'s statements one by one: ``executescript`` would commit the migration's
    transaction first (none of these statements holds a ``;`` inside)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


class HistoryError(Exception):
    """The history file cannot be used; the message names the file and what to do."""


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Schema 1 had drifts without host, message or acknowledgement, no guard against a second
    open row for one drift, and platform failures in a table of their own (no host incidents).
    Duplicate open rows (two writers) are merged into the earliest, which keeps the first-seen
    time; platform failures become incidents."""
    _script(db, """
        ALTER TABLE drift ADD COLUMN host TEXT NOT NULL DEFAULT '';
        ALTER TABLE drift ADD COLUMN message TEXT NOT NULL DEFAULT '';
        ALTER TABLE drift ADD COLUMN acknowledged REAL;
        ALTER TABLE drift ADD COLUMN ack_reason TEXT;
        UPDATE drift SET vdi_value = '' WHERE vdi_value IS NULL;
        UPDATE drift SET virt_value = '' WHERE virt_value IS NULL;
        UPDATE drift SET confirmed = (
            SELECT MIN(d2.confirmed) FROM drift d2 WHERE d2.resolved IS NULL
              AND d2.platform = drift.platform AND d2.key = drift.key AND d2.kind = drift.kind)
          WHERE resolved IS NULL;
        DELETE FROM drift WHERE resolved IS NULL AND id NOT IN (
            SELECT id FROM drift d2 WHERE d2.resolved IS NULL
              AND d2.platform = drift.platform AND d2.key = drift.key AND d2.kind = drift.kind
            ORDER BY d2.first_seen, d2.id LIMIT 1);
    """)
    # The tables and indexes of the current schema that schema 1 lacks.
    _script(db, """
        CREATE UNIQUE INDEX drift_open ON drift(platform, key, kind) WHERE resolved IS NULL;
        CREATE INDEX drift_subject ON drift(subject);
        CREATE INDEX drift_resolved ON drift(resolved);
        CREATE TABLE incident (
            id INTEGER PRIMARY KEY, platform TEXT NOT NULL, scope TEXT NOT NULL,
            name TEXT NOT NULL, cause TEXT NOT NULL DEFAULT '', started REAL NOT NULL,
            ended REAL);
        CREATE UNIQUE INDEX incident_open ON incident(platform, scope, name) WHERE ended IS NULL;
        CREATE INDEX incident_ended ON incident(ended);
        INSERT INTO incident (platform, scope, name, cause, started, ended)
            SELECT platform, 'platform', platform, COALESCE(cause, ''), started, ended
            FROM platform_failure ORDER BY id;
        DROP TABLE platform_failure;
    """)


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """Schema 2 found one host's episodes (``history --host``) by scanning every episode of the
    period: over a year of 20,000 VMs that is tens of thousands of rows per query."""
    _script(db, """
        CREATE INDEX drift_host ON drift(host, resolved);
        CREATE INDEX incident_name ON incident(scope, name, ended);
    """)


#: Schema N -> N+1, in order; a file at version N runs MIGRATIONS[N:] (index 0 is unused: a new
#: file gets the current schema at once).
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None] | None, ...] = (
    None, _migrate_1_to_2, _migrate_2_to_3)


SIDE_FILES = ("-wal", "-shm", "-journal")
"""The files SQLite opens by name beside the database (it follows links; vditui checks first)."""


def _check_files(path: Path) -> None:
    """Refuse a link, FIFO, device or directory in place of the database or of a file SQLite
    opens beside it: SQLite opens them by name, following links (and would block on a FIFO).
    The directory is vditui's own (0700, the user's), so nothing can be planted after this."""
    for name in ("", *SIDE_FILES):
        check_not_special(path.with_name(path.name + name))


def _create_private(path: Path) -> None:
    """Make the file (and its directory) readable by its owner only, before SQLite opens it:
    the history names the platform, hosts and VMs. SQLite gives its -wal and -shm files the
    database's mode."""
    private_dir(path.parent)
    _check_files(path)
    os.close(open_fd(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE, private=True))


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """An open connection to the history at ``path``, migrated to :data:`SCHEMA_VERSION`.

    ``create``: make the file if missing (a writer); else a missing file is a
    :class:`HistoryError` (a reader). Raises :class:`HistoryError` for a file that is not a
    history, one from a newer vditui, or a link or special file in its place.
    """
    try:
        if create:
            _create_private(path)
        else:
            _check_files(path)
    except UnsafeFileError as exc:
        raise HistoryError(str(exc)) from None
    except OSError as exc:
        raise HistoryError(f"{path}: cannot create the history file: {exc.strerror}; check "
                           "the directory's permissions") from None
    if not create and not path.exists():
        raise HistoryError(f"{path}: no history yet (vditui records one while the TUI, "
                           "watch or serve runs)")
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                             check_same_thread=False)
    except sqlite3.Error as exc:
        raise HistoryError(f"{path}: cannot open the history: {exc}") from None
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
        _migrate(db, path)
    except sqlite3.OperationalError as exc:
        db.close()
        if not is_busy(exc):
            raise HistoryError(f"{path}: cannot use the history: {exc}") from None
        raise HistoryError(f"{path}: another process has held the history locked for over "
                           f"{BUSY_TIMEOUT_MS // 1000} s; try again") from None
    except sqlite3.DatabaseError as exc:
        db.close()
        raise HistoryError(f"{path}: not a vditui history ({exc}); move it away and vditui "
                           "starts a new one") from None
    except HistoryError:
        db.close()
        raise
    return db


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the history at ``path``, for ``vditui history`` and the
    TUI's timeline: it creates, migrates and chmods nothing, so it works on a copy in a
    read-only place (SQLite's ``immutable`` mode when the file or its directory cannot be
    written: no -wal or -shm file is made). Raises :class:`HistoryError` like
    :func:`connect`; a file of an older schema is upgraded first when it can be written."""
    try:
        _check_files(path)
    except UnsafeFileError as exc:
        raise HistoryError(str(exc)) from None
    if not path.exists():
        raise HistoryError(f"{path}: no history yet (vditui records one while the TUI, "
                           "watch or serve runs)")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    uri = f"{path.absolute().as_uri()}?mode=ro" + ("" if writable else "&immutable=1")
    try:
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                             isolation_level=None, check_same_thread=False)
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.OperationalError as exc:
        raise HistoryError(f"{path}: cannot read the history: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path}: not a vditui history ({exc})") from None
    if version > SCHEMA_VERSION:
        db.close()
        raise HistoryError(f"{path}: written by a newer vditui (history schema {version}, "
                           f"this one knows {SCHEMA_VERSION}); upgrade vditui")
    if version < SCHEMA_VERSION:
        db.close()
        if not writable:
            raise HistoryError(f"{path}: written by an older vditui (history schema "
                               f"{version}) and read-only here: copy it somewhere writable "
                               "so that it can be upgraded")
        connect(path, create=False).close()  # upgrade it once, then read it as it is
        return connect_readonly(path)
    return db


def is_busy(exc: sqlite3.Error) -> bool:
    """The error is another connection's lock (outlasting the busy timeout)."""
    return "locked" in str(exc) or "busy" in str(exc)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the file to the current schema, in one transaction (another process migrating at
    the same moment waits, then finds it done). A file already current takes no lock, so a
    reader never waits on a writer."""
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(f"{path}: written by a newer vditui (history schema {version}, "
                               f"this one knows {SCHEMA_VERSION}); upgrade vditui")
        if version == 0:
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise HistoryError(f"{path}: not a vditui history (it has tables but no schema "
                                   "version); move it away and vditui starts a new one")
            _script(db, _SCHEMA)
        else:
            for step in MIGRATIONS[version:]:
                assert step is not None
                step(db)
        if version != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (IMMEDIATE), so two writers queue on the busy
    timeout instead of failing half-way."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class DriftEpisode:
    """One drift from first seen to resolved (None while open); times are wall clock."""

    platform: str
    key: str
    kind: str
    subject: str
    host: str
    message: str
    vdi_value: str
    virt_value: str
    first_seen: float
    confirmed: float | None
    acknowledged: float | None
    ack_reason: str | None
    resolved: float | None


@dataclass(frozen=True, slots=True)
class Incident:
    """A host's connection failure or the platform's, from start to end (None while open)."""

    platform: str
    scope: str
    name: str
    cause: str
    started: float
    ended: float | None


_DRIFT_COLUMNS = ("platform, key, kind, subject, host, message, vdi_value, virt_value, "
                  "first_seen, confirmed, acknowledged, ack_reason, resolved")


def open_drifts(db: sqlite3.Connection, platform: str) -> list[DriftEpisode]:
    """The platform's drifts not resolved yet (for a restart to carry on with them)."""
    rows = db.execute(f"SELECT {_DRIFT_COLUMNS} FROM drift WHERE platform = ? "
                      "AND resolved IS NULL ORDER BY first_seen", (platform,)).fetchall()
    return [DriftEpisode(*r) for r in rows]


def drifts(db: sqlite3.Connection, *, since: float | None = None, vm: str | None = None,
           host: str | None = None, platform: str | None = None) -> list[DriftEpisode]:
    """Drift episodes still open at or after ``since`` (every one when None), of VM ``vm``
    and of host ``host`` when given, oldest first."""
    where: list[str] = ["1"]
    args: list[float | str] = []
    if since is not None:
        where.append("(resolved IS NULL OR resolved >= ?)")
        args.append(since)
    for column, value in (("subject", vm), ("host", host), ("platform", platform)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    rows = db.execute(f"SELECT {_DRIFT_COLUMNS} FROM drift WHERE {' AND '.join(where)} "
                      "ORDER BY first_seen, id", args).fetchall()
    return [DriftEpisode(*r) for r in rows]


def incidents(db: sqlite3.Connection, *, since: float | None = None, host: str | None = None,
              platform: str | None = None) -> list[Incident]:
    """Host and platform incidents still open at or after ``since``; with ``host``, only that
    host's, oldest first."""
    where: list[str] = ["1"]
    args: list[float | str] = []
    if since is not None:
        where.append("(ended IS NULL OR ended >= ?)")
        args.append(since)
    if host is not None:
        where.append("scope = 'host' AND name = ?")
        args.append(host)
    if platform is not None:
        where.append("platform = ?")
        args.append(platform)
    rows = db.execute("SELECT platform, scope, name, cause, started, ended FROM incident "
                      f"WHERE {' AND '.join(where)} ORDER BY started, id", args).fetchall()
    return [Incident(*r) for r in rows]


def prune(db: sqlite3.Connection, before: float) -> int:
    """Delete the episodes and incidents that ended before ``before``; open ones stay, however
    old. Returns how many rows went."""
    with transaction(db):
        n = db.execute("DELETE FROM drift WHERE resolved < ?", (before,)).rowcount
        n += db.execute("DELETE FROM incident WHERE ended < ?", (before,)).rowcount
    return int(n)
