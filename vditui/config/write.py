"""Writing the config file: per-host libvirt URIs saved from the probe, acknowledgement rules;
private files.

tomlkit edits the operator's document in place, so their comments, ordering and formatting
survive and only the table being added or changed differs. Every file vditui writes replaces the
old one atomically (a temp file in the same directory, then ``os.replace``) with mode 0600, as it
may hold a password.

Where a URI goes: ``[profiles.<profile>.hosts."<host>"]``, except for the profile "default" of a
file in the legacy layout (``[vdi]`` / ``[libvirt]``), whose hosts live in
``[libvirt.hosts."<host>"]`` next to the template they override.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import AoT, Array, InlineTable, KeyType, SingleKey, Table, Whitespace

from vditui.config.errors import ConfigError
from vditui.config.load import parse_config
from vditui.config.profile import LEGACY_PROFILE
from vditui.core.acks import AckRule
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
    target = _real_path(path)
    text = _read(target)
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
    write_private(target, out)


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


def _real_path(path: Path) -> Path:
    # Write through a symlink (dotfile managers) instead of replacing the link with a file.
    return Path(os.path.realpath(path.expanduser()))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(path, None, None, f"cannot read: {reason}") from None


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # newline="" keeps the file's own line endings, which tomlkit preserved.
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # mkstemp's 0600 is a CPython detail worth not relying on
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_ack_rules(path: Path, profile: str, rules: Sequence[AckRule], note: str = "") -> None:
    """Append ``rules`` to the profile's ``[[profiles.<profile>.ack]]`` tables, the rest of the
    file (comments, layout) untouched; ``note``, if given, goes above each rule as a comment.
    Creates the file if missing; checked with the loader before it is written, atomically,
    0600. A file in the legacy layout (``[vdi]``/``[libvirt]``) has no profile table to hold
    them: that is a `ConfigError` saying so."""
    if not profile:
        raise ConfigError(expected="a profile is needed to save an acknowledgement")
    target = _real_path(path)
    text = _read(target)
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
    write_private(target, out)


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
