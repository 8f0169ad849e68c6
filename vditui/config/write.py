"""Writing the config file: per-host libvirt URIs saved from the probe, acknowledgement rules;
private files.

tomlkit edits the operator's document in place, so their comments, ordering and formatting
survive and only the table being added or changed differs. Every file vditui writes replaces the
old one atomically (a temp file in the same directory, then ``os.replace``) with mode 0600, as it
may hold a password; edits of the config are serialised across processes by a lock beside it and
re-read under that lock (`edit_locked`), so two writers at once both keep their change.

Where a URI goes: ``[profiles.<profile>.hosts."<host>"]``, except for the profile "default" of a
file in the legacy layout (``[vdi]`` / ``[libvirt]``), whose hosts live in
``[libvirt.hosts."<host>"]`` next to the template they override.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import AoT, Array, InlineTable, KeyType, SingleKey, Table, Whitespace

from vditui.config.errors import ConfigError
from vditui.config.load import parse_config
from vditui.config.profile import LEGACY_PROFILE
from vditui.core.acks import AckRule
from vditui.core.safefile import (
    PRIVATE_FILE,
    UnsafeFileError,
    check_not_special,
    open_fd,
    read_text,
)
from vditui.tomlpos import dotted, find_line

_Container = tomlkit.TOMLDocument | Table | InlineTable


def save_host_uri(path: Path, profile: str, host: str, uri: str) -> None:
    """Record that ``host`` (a VDI host name or IP) is reached at ``uri`` under ``profile``.

    Adds the host's table or replaces its ``uri``; where the host lists several (``uris``),
    ``uri`` goes first in that list (moved there if listed already) and the others stay after
    it, in their order, as fallbacks. Creates the file and its directory if missing. The
    result is checked with the loader before it is written, so vditui never leaves behind a
    file it cannot read.
    """
    if not profile or not host:
        raise ConfigError(expected="a profile and a host name are needed to save a URI")
    if not isinstance(uri, str) or "://" not in uri:
        raise ConfigError(None, None, "uri", "expected a libvirt URI containing ://", uri)
    edit_locked(path, lambda target, text: _with_host_uri(target, text, profile, host, uri))


def _with_host_uri(target: Path, text: str, profile: str, host: str, uri: str) -> str:
    if text:
        parse_config(text, target)  # the loader's messages, with lines, for a broken file
    try:
        doc = tomlkit.parse(text)
    except ParseError as exc:
        raise ConfigError(target, exc.line, None, f"invalid TOML: {exc}") from None
    legacy = profile == LEGACY_PROFILE and ("vdi" in doc or "libvirt" in doc)
    keypath = ("libvirt", "hosts") if legacy else ("profiles", profile, "hosts")
    hosts = _descend(doc, keypath, target, text)
    entry = hosts.get(host)
    if entry is None:
        if isinstance(hosts, InlineTable):
            new: Any = tomlkit.inline_table()
            new["uri"] = uri
        else:
            new = tomlkit.table()
            new["uri"] = uri
            new.add(tomlkit.nl())  # keeps a blank line before whatever table follows
        # Quoted always, so that names and IPs look alike and match the documented layout.
        hosts.add(SingleKey(host, KeyType.Basic), new)
    elif isinstance(entry, Table | InlineTable) and "uris" in entry:
        _put_first(entry, uri)
    elif isinstance(entry, Table | InlineTable):
        entry["uri"] = uri
    else:
        where = (*keypath, host)
        raise ConfigError(target, find_line(text, where), dotted(where), "expected a table")
    out = tomlkit.dumps(doc)
    if out.endswith("\n\n") and not text.endswith("\n\n"):
        out = out.rstrip("\n") + "\n"  # the blank line added above, when the table came last
    parse_config(out, target)
    return out


def _put_first(entry: Table | InlineTable, uri: str) -> None:
    listed = entry["uris"]
    if not isinstance(listed, list):
        return  # not an array: the loader's check below names the line
    # Edit the array in place, so that its layout and comments survive.
    while uri in listed:
        listed.remove(uri)
    listed.insert(0, uri)


def _descend(doc: tomlkit.TOMLDocument, keypath: tuple[str, ...], path: Path, text: str) -> Any:
    container: _Container = doc
    for depth, key in enumerate(keypath, 1):
        if key not in container:
            # A super table prints no header of its own: only [a.b."c"] appears.
            made = tomlkit.inline_table() if isinstance(container, InlineTable) else None
            container.add(key, made if made is not None else tomlkit.table(is_super_table=True))
        child = container[key]
        if not isinstance(child, Table | InlineTable):
            where = keypath[:depth]
            raise ConfigError(path, find_line(text, where), dotted(where), "expected a table")
        container = child
    return container


def _read(path: Path) -> str:
    try:
        return read_text(path)
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise ConfigError(path, None, None, f"cannot use: {exc.reason}") from None
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(path, None, None, f"cannot read: {reason}") from None


def edit_locked(path: Path, change: Callable[[Path, str], str]) -> None:
    """Rewrite the config at ``path`` with ``change(path, old_text)``, serialised with every
    other vditui writing it: an exclusive lock on ``.<name>.lock`` beside it, the file read
    again under the lock (so a rule another process added meanwhile is kept), then
    :func:`write_private`. The file's line endings (CRLF or LF) are kept. A link in place of
    the file is refused, not followed (vditui may run as root): pass the real path."""
    target = path.expanduser()
    _make_dir(target.parent)
    try:
        lock = open_fd(target.with_name(f".{target.name}.lock"), os.O_RDWR | os.O_CREAT,
                       PRIVATE_FILE)
    except OSError as exc:
        why = exc.reason if isinstance(exc, UnsafeFileError) else exc.strerror
        raise ConfigError(target, None, None, f"cannot lock for writing: {why}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_stale_copies(target)
        text = _read(target)
        crlf = "\r\n" in text
        out = change(target, text.replace("\r\n", "\n") if crlf else text)
        write_private(target, out.replace("\n", "\r\n") if crlf else out)
    finally:
        os.close(lock)  # releases the lock


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(directory, None, None, f"cannot create: {exc.strerror}") from None


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_stale_copies(path: Path) -> None:
    """Temporary copies left by a writer killed mid-write (they may hold the password): under
    the lock no other writer is running, so any left is stale."""
    for stale in path.parent.glob(f"{glob.escape(_temp_prefix(path))}*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600): a
    temporary copy made 0600 from the start in the same directory, written, fsynced, renamed
    over ``path``, and the directory fsynced; on any failure the copy is removed. A link,
    FIFO or directory at ``path`` is an `UnsafeFileError`, left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_not_special(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        os.fchmod(fd, PRIVATE_FILE)  # before a byte is written: mkstemp's 0600 is a detail
        # newline="" keeps the file's own line endings, which tomlkit preserved.
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def save_ack_rules(path: Path, profile: str, rules: Sequence[AckRule], note: str = "") -> None:
    """Append ``rules`` to the profile's ``[[profiles.<profile>.ack]]`` tables, the rest of the
    file (comments, layout) untouched; ``note``, if given, goes above each rule as a comment.
    Creates the file if missing; checked with the loader before it is written, atomically,
    0600. A file in the legacy layout (``[vdi]``/``[libvirt]``) has no profile table to hold
    them: that is a `ConfigError` saying so."""
    if not profile:
        raise ConfigError(expected="a profile is needed to save an acknowledgement")
    edit_locked(path, lambda target, text: _with_ack_rules(target, text, profile, rules, note))


def _with_ack_rules(target: Path, text: str, profile: str, rules: Sequence[AckRule],
                    note: str) -> str:
    if text:
        parse_config(text, target)
    try:
        doc = tomlkit.parse(text)
    except ParseError as exc:
        raise ConfigError(target, exc.line, None, f"invalid TOML: {exc}") from None
    if profile == LEGACY_PROFILE and ("vdi" in doc or "libvirt" in doc):
        raise ConfigError(target, None, None, "acknowledgement rules go in a [profiles.NAME] "
                          "table, and this file uses the older [vdi]/[libvirt] layout: move "
                          "those settings into [profiles.NAME] first")
    keypath = ("profiles", profile)
    table = _descend(doc, keypath, target, text)
    existing = table.get("ack")
    if existing is None:
        existing = tomlkit.aot()
        _end_with_blank_line(table)  # between the profile's keys and its rules
        table.append("ack", existing)
    elif isinstance(existing, AoT) and existing.body:
        _end_with_blank_line(existing.body[-1])  # between the last rule and the new ones
    elif not isinstance(existing, AoT | Array):
        where = (*keypath, "ack")
        raise ConfigError(target, find_line(text, where), dotted(where),
                          "expected [[...ack]] tables")
    for rule in rules:
        existing.append(_ack_item(rule, note, inline=isinstance(existing, Array)))
    out = tomlkit.dumps(doc)
    if out.endswith("\n\n") and not text.endswith("\n\n"):
        out = out.rstrip("\n") + "\n"  # the blank line added above, when the rule came last
    parse_config(out, target)
    return out


def _end_with_blank_line(table: Any) -> None:
    body = table.value.body if isinstance(table, Table) else []
    if body and not isinstance(body[-1][1], Whitespace):
        table.add(tomlkit.nl())


def _ack_item(rule: AckRule, note: str, inline: bool) -> Table | InlineTable:
    t: Table | InlineTable = tomlkit.inline_table() if inline else tomlkit.table()
    if note and not inline:
        t.add(tomlkit.comment(note))
    for key, value in (("vm", rule.vm), ("host", rule.host),
                       ("kind", rule.kind.value if rule.kind else None), ("field", rule.field),
                       ("reason", rule.reason)):
        if value is not None:
            t[key] = value
    if rule.expires is not None:
        t["expires"] = tomlkit.date(rule.expires.isoformat())
    if not inline:
        t.add(tomlkit.nl())  # a blank line before whatever table follows
    return t
