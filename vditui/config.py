"""Settings: which VDI platforms to watch, how to log in, and how to reach each host's libvirt.

The file is TOML in the platformdirs user config dir (``config_dir() / "config.toml"``, e.g.
``~/.config/vditui/config.toml``), or wherever ``--config`` points. It is read with ``tomllib``
and written (``vditui.config_write``) with ``tomlkit``, so comments an operator added survive.
This module never imports Textual.

Each platform is a profile::

    default_profile = "prod"

    [profiles.prod]
    url = "https://vdi.example.com:8088"
    username = "admin"
    password_env = "OCV_PASSWORD"   # or password_command = "pass show vdi/prod",
                                    # or password = "..." (warns unless the file is chmod 600)
    verify_ssl = true
    uri_templates = ["qemu+tcp://{ip}/system", "qemu+ssh://root@{ip}/system"]
    refresh_interval = 30.0         # every setting of `Profile` may appear here
    grace = 10.0

    [profiles.prod.hosts."hv-01"]   # per-host override, by VDI host name or IP
    uri = "qemu+tcp://10.0.0.5/system"

The layout operators used before profiles is still read, as a profile named "default"::

    [vdi]
    base_url = "https://vdi.example.com:8088"
    username = "admin"
    password = "..."
    verify_ssl = false
    connect_timeout = 5

    [libvirt]
    uri = "qemu+tcp://{ip}/system"  # one URI, or a template applied to every host

    [libvirt.hosts."hv-01"]         # where vditui saves per-host URIs for a legacy file
    uri = "qemu+ssh://root@10.0.0.5/system"

Templates may use ``{ip}`` and ``{name}`` (the host's VDI name); a host's saved ``uri`` is tried
instead of the templates (``vditui.core.uris`` fills them in).
Both layouts may share a file, but then ``[profiles.default]`` is an error.

Precedence, highest first: command-line flag, then the chosen profile, then ``VDITUI_URL`` /
``VDITUI_USER`` (so an exported variable never silently retargets an explicit profile). The
password is the exception: ``VDITUI_PASSWORD`` beats every source in the file.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import platformdirs

from vditui import config_checks as checks
from vditui.config_checks import Check
from vditui.core.uris import DEFAULT_TEMPLATES
from vditui.tomlpos import dotted, find_line

APP_NAME = "vditui"
DEFAULT_URI_TEMPLATES: tuple[str, ...] = DEFAULT_TEMPLATES
"""libvirt URIs tried for a host when its profile names none; ``vditui.core.uris`` owns them."""
PASSWORD_COMMAND_TIMEOUT = 10.0
"""Seconds a ``password_command`` may run; a hung pinentry must not freeze start-up forever."""
LEGACY_PROFILE = "default"
"""Name of the profile built from the legacy ``[vdi]`` / ``[libvirt]`` tables."""


def config_dir() -> Path:
    """The directory holding ``config.toml``; tests patch this one function."""
    return Path(platformdirs.user_config_dir(APP_NAME))


def default_config_path() -> Path:
    """The file read when ``--config`` is not given."""
    return config_dir() / "config.toml"


def log_dir() -> Path:
    """Where vditui writes its logs."""
    return Path(platformdirs.user_log_dir(APP_NAME))


class Secret:
    """A password that shows as ``***`` in every repr, str, log line and traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The actual secret: call this only where it is sent to the platform."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_UNSET: Any = checks.UNSET


class ConfigError(Exception):
    """A setting that cannot be used; the message reads ``FILE:LINE: KEY: EXPECTED, got VALUE``.

    Every part but ``expected`` is optional, so the same class also reports problems that have
    no file position (an unknown ``--profile``, a failing ``password_command``). ``got`` must
    never be given a secret.
    """

    def __init__(
        self,
        path: Path | None = None,
        line: int | None = None,
        key: str | None = None,
        expected: str = "invalid configuration",
        got: Any = _UNSET,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.expected = expected
        self.got = None if got is _UNSET else _describe(got)
        where = ""
        if path is not None:
            where = display_path(path) + (f":{line}" if line is not None else "") + ": "
        what = f"{key}: " if key else ""
        tail = f", got {self.got}" if self.got is not None else ""
        super().__init__(f"{where}{what}{expected}{tail}")


def display_path(path: Path) -> str:
    """``path`` with the home directory shown as ``~``, as operators type it."""
    try:
        return "~/" + path.expanduser().relative_to(Path.home()).as_posix()
    except (ValueError, RuntimeError):
        return str(path)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Profile:
    """Everything needed to watch one platform; built by `load_config`, finished by
    `vditui.config_resolve.resolve_profile`."""

    name: str = LEGACY_PROFILE
    """The profile's name in the file (``[profiles.NAME]``), or "default"."""
    url: str | None = None
    """The platform's base URL, ``http(s)://host[:port]``; required once resolved."""
    username: str | None = None
    """The platform account to log in as; required once resolved."""
    password: Secret | None = field(default=None, repr=False)
    """A password written in the file; the last resort before prompting."""
    password_env: str | None = None
    """Name of an environment variable holding the password."""
    password_command: str | None = None
    """A command (split with shlex, run without a shell) whose first output line is the
    password, e.g. ``pass show vdi/prod``."""
    verify_ssl: bool = True
    """Check the platform's TLS certificate; ``--insecure`` turns this off."""
    uri_templates: tuple[str, ...] = DEFAULT_URI_TEMPLATES
    """libvirt URIs to try for a host, in order; ``{ip}`` and ``{name}`` are filled in."""
    host_uris: dict[str, str] = field(default_factory=dict, hash=False)
    """A fixed libvirt URI per host, keyed by the host's VDI name or IP; beats the templates."""
    refresh_interval: float = 30.0
    """Seconds between re-reads of the platform's API."""
    grace: float = 10.0
    """Seconds a disagreement must persist before it is reported as drift, so that
    operations in flight are not flagged."""
    connect_timeout: float = 5.0
    """Seconds allowed to open a libvirt connection or the platform's HTTP connection."""
    call_timeout: float = 10.0
    """Seconds allowed for one libvirt call or one platform request."""
    page_size: int = 100
    """Items asked for per page of the platform's list endpoints."""
    page_concurrency: int = 4
    """Pages of one list fetched at the same time."""
    keepalive_interval: int = 2
    """Seconds between libvirt keepalive probes; 0 turns keepalives off."""
    keepalive_count: int = 2
    """Unanswered keepalive probes before a libvirt connection counts as dead."""
    reread_interval: float = 300.0
    """Seconds between full re-reads of libvirt, a safety net behind its events; 0 never."""
    max_backoff: float = 4.0
    """Longest wait, in seconds, between reconnection attempts to a lost host."""

    def host_uri(self, name: str, ip: str) -> str | None:
        """The URI saved for this host, looked up by VDI name and then by IP, if any."""
        return self.host_uris.get(name) or self.host_uris.get(ip)


@dataclass(frozen=True)
class Config:
    """What `load_config` found."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    """Profiles by name."""
    default_profile: str | None = None
    """The profile used when ``--profile`` is not given."""
    path: Path = field(default_factory=default_config_path)
    """The file read, or the default file that vditui would create."""
    found: bool = False
    """Whether ``path`` existed."""
    warnings: list[str] = field(default_factory=list)
    """Problems that do not stop vditui, for the operator to read."""


# --- loading ---------------------------------------------------------------------------------


@dataclass
class _Reader:
    path: Path
    text: str

    def fail(self, keypath: Sequence[str], expected: str, got: Any = _UNSET) -> NoReturn:
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
    ) -> dict[str, Any]:
        """Checked ``Profile`` keyword arguments from one table of the file."""
        values: dict[str, Any] = {}
        for key, value in table.items():
            where = (*keypath, key)
            if hosts and key == "hosts":
                values["host_uris"] = self.hosts(where, value)
                continue
            if key not in keys:
                self.unknown(where, [*keys, "hosts"] if hosts else list(keys))
            name, check = keys[key]
            try:
                values[name] = check(value)
            except checks.Invalid as exc:
                # Never echo what was written where a password belongs.
                got = _UNSET if name == "password" else value if exc.got is _UNSET else exc.got
                self.fail(where, f"expected {exc.expected}", got)
        return values

    def hosts(self, keypath: tuple[str, ...], value: Any) -> dict[str, str]:
        uris: dict[str, str] = {}
        for host, table in self.table(keypath, value, "a table of hosts").items():
            where = (*keypath, host)
            entry = self.table(
                where, table, 'a table such as { uri = "qemu+tcp://10.0.0.5/system" }'
            )
            for key in entry:
                if key != "uri":
                    self.unknown((*where, key), ["uri"])
            if "uri" not in entry:
                self.fail(where, "missing uri")
            try:
                uris[host] = checks.template(entry["uri"])
            except checks.Invalid as exc:
                self.fail((*where, "uri"), f"expected {exc.expected}", entry["uri"])
        return uris


def load_config(path: Path | None) -> Config:
    """Read the config file: ``path`` (from ``--config``) or the default file.

    A missing default file gives an empty `Config`; a missing explicit file is a `ConfigError`,
    since the operator named it and surely expected it to exist.
    """
    explicit = path is not None
    file = (path if path is not None else default_config_path()).expanduser()
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(file, None, None, "config file not found") from None
        return Config(path=file)
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
        values = reader.settings(keypath, reader.table(keypath, table), checks.PROFILE_KEYS)
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
