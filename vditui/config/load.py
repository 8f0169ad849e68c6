"""Reading the config file: ``tomllib`` parses it, every key is checked, and each problem is a
`ConfigError` naming the file, the line and the key (``tomllib`` gives no positions, so
``vditui.tomlpos`` finds them)."""

from __future__ import annotations

import difflib
import os
import re
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from vditui.config import checks
from vditui.config.checks import Check
from vditui.config.errors import UNSET, ConfigError
from vditui.config.paths import default_config_path, display_path
from vditui.config.profile import LEGACY_PROFILE, Config, Profile
from vditui.core.acks import AckRule
from vditui.core.safefile import UnsafeFileError, read_bytes
from vditui.tomlpos import dotted, find_line


@dataclass
class _Reader:
    path: Path
    text: str

    def fail(self, keypath: Sequence[str], expected: str, got: Any = UNSET) -> NoReturn:
        line = find_line(self.text, keypath)
        raise ConfigError(self.path, line, dotted(keypath), expected, got)

    def table(self, keypath: Sequence[str], value: Any, what: str = "a table") -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(keypath, f"expected {what}", value)
        return value

    def unknown(self, keypath: Sequence[str], valid: Sequence[str]) -> NoReturn:
        close = difflib.get_close_matches(keypath[-1], valid, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        self.fail(keypath, f"unknown setting; {hint}valid: {', '.join(sorted(valid))}")

    def settings(
        self,
        keypath: tuple[str, ...],
        table: dict[str, Any],
        keys: Mapping[str, tuple[str, Check]],
        hosts: bool = True,
        acks: bool = False,
    ) -> dict[str, Any]:
        """Checked ``Profile`` keyword arguments from one table of the file; ``hosts`` and
        ``acks``: whether it may hold a ``hosts`` table and ``[[...ack]]`` rules."""
        values: dict[str, Any] = {}
        for key, value in table.items():
            where = (*keypath, key)
            if hosts and key == "hosts":
                values["host_uris"] = self.hosts(where, value)
                continue
            if acks and key == "ack":
                values["ack"] = self.acks(where, value)
                continue
            if key not in keys:
                extra = ["hosts"] * hosts + ["ack"] * acks
                self.unknown(where, [*keys, *extra])
            name, check = keys[key]
            try:
                values[name] = check(value)
            except checks.Invalid as exc:
                # Never echo what was written where a password belongs.
                got = UNSET if name == "password" else value if exc.got is UNSET else exc.got
                self.fail(where, f"expected {exc.expected}", got)
        return values

    def hosts(self, keypath: tuple[str, ...], value: Any) -> dict[str, tuple[str, ...]]:
        uris: dict[str, tuple[str, ...]] = {}
        for host, table in self.table(keypath, value, "a table of hosts").items():
            where = (*keypath, host)
            entry = self.table(
                where, table, 'a table such as { uri = "qemu+tcp://10.0.0.5/system" }'
            )
            for key in entry:
                if key not in HOST_KEYS:
                    self.unknown((*where, key), HOST_KEYS)
            if "uri" in entry and "uris" in entry:
                self.fail((*where, "uris"), "give uri or uris, not both (uris = [...] lists "
                          "every URI to try, in order)")
            if "uri" in entry:
                try:
                    uris[host] = (checks.template(entry["uri"]),)
                except checks.Invalid as exc:
                    self.fail((*where, "uri"), f"expected {exc.expected}", entry["uri"])
            elif "uris" in entry:
                try:
                    uris[host] = checks.uri_list(entry["uris"])
                except checks.Invalid as exc:
                    got = entry["uris"] if exc.got is UNSET else exc.got
                    self.fail((*where, "uris"), f"expected {exc.expected}", got)
            else:
                self.fail(where, 'missing uri (or uris = ["...", "..."], tried in order)')
        return uris


    def acks(self, keypath: tuple[str, ...], value: Any) -> tuple[AckRule, ...]:
        """The ``[[profiles.NAME.ack]]`` rules; a rule's key in messages is ``...ack[N].KEY``,
        N counting the rules from 1 in file order."""
        expected = ("an array of tables, each written [[" + dotted(keypath) + "]] with a "
                    "reason and any of " + ", ".join(k for k in checks.ACK_KEYS if k != "reason"))
        if not isinstance(value, list):
            self.fail(keypath, f"expected {expected}", value)
        rules = []
        for i, table in enumerate(value):
            name = f"{dotted(keypath)}[{i + 1}]"
            line = find_line(self.text, (*keypath, i))
            if not isinstance(table, dict):
                raise ConfigError(self.path, line, name, f"expected {expected}", table)
            got: dict[str, Any] = {}
            for key, v in table.items():
                where = find_line(self.text, (*keypath, i, key)) or line
                if key not in checks.ACK_KEYS:
                    close = difflib.get_close_matches(key, list(checks.ACK_KEYS), n=1)
                    hint = f"did you mean {close[0]}? " if close else ""
                    raise ConfigError(self.path, where, f"{name}.{key}",
                                      f"unknown key; {hint}valid: "
                                      f"{', '.join(sorted(checks.ACK_KEYS))}")
                try:
                    got[key] = checks.ACK_KEYS[key](v)
                except checks.Invalid as exc:
                    raise ConfigError(self.path, where, f"{name}.{key}",
                                      f"expected {exc.expected}", v) from None
            if "reason" not in got:
                raise ConfigError(self.path, line, f"{name}.reason",
                                  "missing: every acknowledgement needs a reason "
                                  '(reason = "why this difference is known and meant")')
            rules.append(AckRule(line=line, **got))
        return tuple(rules)


HOST_KEYS = ("uri", "uris")
"""The keys of a ``hosts."NAME"`` table: one URI, or several tried in order."""


def load_config(path: Path | None) -> Config:
    """Read the config file: ``path`` (from ``--config``) or the default file.

    A missing default file gives an empty `Config`; a missing explicit file is a `ConfigError`,
    since the operator named it and surely expected it to exist.
    """
    explicit = path is not None
    file = (path if path is not None else default_config_path()).expanduser()
    try:
        data = read_bytes(file)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(file, None, None, "config file not found") from None
        return Config(path=file)
    except UnsafeFileError as exc:
        raise ConfigError(file, None, None, f"cannot use: {exc.reason}") from None
    except OSError as exc:
        raise ConfigError(file, None, None, f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(file, None, None, "not a UTF-8 text file") from None
    return parse_config(text, file)


def parse_config(text: str, path: Path) -> Config:
    """Check the TOML ``text`` read from ``path`` and build its `Config`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        line = int(found.group(1)) if found else text.rstrip().count("\n") + 1
        column = f" (column {found.group(2)})" if found else ""
        raise ConfigError(path, line, None, f"invalid TOML: {message}{column}") from None
    reader = _Reader(path, text)
    for key in raw:
        if key not in checks.TOP_KEYS:
            reader.unknown((key,), checks.TOP_KEYS)

    profiles: dict[str, Profile] = {}
    for name, table in reader.table(("profiles",), raw.get("profiles", {})).items():
        keypath = ("profiles", name)
        values = reader.settings(keypath, reader.table(keypath, table), checks.PROFILE_KEYS,
                                 acks=True)
        profiles[name] = Profile(name=name, **values)

    if "vdi" in raw or "libvirt" in raw:
        if LEGACY_PROFILE in profiles:
            reader.fail(
                ("profiles", LEGACY_PROFILE),
                'profile "default" is already defined by the [vdi]/[libvirt] tables; '
                "rename one of them",
            )
        vdi_table = reader.table(("vdi",), raw.get("vdi", {}))
        vdi = reader.settings(("vdi",), vdi_table, checks.LEGACY_VDI_KEYS, hosts=False)
        libvirt_table = reader.table(("libvirt",), raw.get("libvirt", {}))
        libvirt = reader.settings(("libvirt",), libvirt_table, checks.LEGACY_LIBVIRT_KEYS)
        profiles[LEGACY_PROFILE] = Profile(name=LEGACY_PROFILE, **vdi, **libvirt)

    default = raw.get("default_profile")
    if default is None and list(profiles) == [LEGACY_PROFILE]:
        default = LEGACY_PROFILE
    if default is not None and default not in profiles:
        names = ", ".join(profiles) or "none defined"
        reader.fail(("default_profile",), f"expected the name of a profile ({names})", default)

    warnings = []
    if any(p.password is not None for p in profiles.values()):
        warnings.extend(_permission_warnings(path))
    return Config(profiles, default, path, True, warnings)


def _permission_warnings(path: Path) -> list[str]:
    if os.name != "posix":  # the mode bits mean nothing elsewhere
        return []
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if not mode & 0o077:
        return []
    return [
        f"{display_path(path)} holds a password and other users can read it: "
        f"run chmod 600 {shlex.quote(str(path))}"
    ]
