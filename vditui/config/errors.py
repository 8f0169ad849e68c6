"""`ConfigError`: every configuration problem, as one line naming the file, line and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vditui.config.paths import display_path
from vditui.core.uris import redact_uri

UNSET: Any = object()
"""Marks an argument that was not given, where None is a value someone could have written."""


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
        got: Any = UNSET,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.expected = expected
        self.got = None if got is UNSET else _describe(got)
        where = ""
        if path is not None:
            where = display_path(path) + (f":{line}" if line is not None else "") + ": "
        what = f"{key}: " if key else ""
        tail = f", got {self.got}" if self.got is not None else ""
        super().__init__(f"{where}{what}{expected}{tail}")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        value = redact_uri(value)  # a URI typed with a password or passphrase in it
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"
