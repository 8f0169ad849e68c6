"""The types a config file becomes: a `Profile` per platform, the `Config` holding them, and the
`Secret` a password is kept in.

`Profile` is `vditui.core.settings.Settings` (every tunable, its default and docstring defined
there, once) plus what only the config file knows: the profile's name, the platform's URL and
user, and where the password comes from. Each of those fields names its check's ``kind`` in its
metadata, as the core's settings do, so `vditui.config.checks` derives every check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vditui.config.paths import default_config_path
from vditui.core.settings import Settings

LEGACY_PROFILE = "default"
"""Name of the profile built from the legacy ``[vdi]`` / ``[libvirt]`` tables."""


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


def _own(kind: str, doc: str, **kw: Any) -> Any:
    return field(default=None, metadata={"doc": doc, "kind": kind}, **kw)


@dataclass(frozen=True, kw_only=True)
class Profile(Settings):
    """Everything needed to watch one platform; built by ``load_config``, finished by
    ``vditui.config.resolve.resolve_profile``."""

    name: str = field(default=LEGACY_PROFILE, metadata={
        "doc": 'The profile\'s name in the file (``[profiles.NAME]``), or "default".'})
    url: str | None = _own("url", "The platform's base URL, ``http(s)://host[:port]``; "
                                  "required once resolved.")
    username: str | None = _own("text", "The platform account to log in as; required once "
                                        "resolved.")
    password: Secret | None = _own(  # noqa: RUF009 - a Field whose default is None
        "secret", "A password written in the file; the last resort before prompting.",
        repr=False)
    password_env: str | None = _own("env_name", "Name of an environment variable holding the "
                                                "password.")
    password_command: str | None = _own(
        "command", "A command (split with shlex, run without a shell) whose first output line "
                   "is the password, e.g. ``pass show vdi/prod``.")


@dataclass(frozen=True)
class Config:
    """What ``load_config`` found."""

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
