"""Where a key is defined in TOML text: ``tomllib`` reports no positions, so scan for them.

Used to put a line number on configuration errors. Self-contained on purpose (standard library
only, no ``vditui`` imports) so that any reader of a TOML file can reuse it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence

__all__ = ["dotted", "find_line"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN_KEY = re.compile(r"([A-Za-z0-9_-]+)[ \t]*=")


def _parse_key(s: str, i: int) -> tuple[list[str], int] | None:
    """The dotted key starting at ``s[i]`` and the index after it, or None."""
    parts: list[str] = []
    while True:
        while i < len(s) and s[i] in " \t":
            i += 1
        if s.startswith('"', i):
            end = re.compile(r'"((?:[^"\\]|\\.)*)"').match(s, i)
            if end is None:
                return None
            try:
                parts.append(json.loads(end.group(0)))
            except ValueError:  # TOML-only escapes such as \U0001F600; close enough
                parts.append(end.group(1))
            i = end.end()
        elif s.startswith("'", i):
            j = s.find("'", i + 1)
            if j < 0:
                return None
            parts.append(s[i + 1 : j])
            i = j + 1
        else:
            bare = _BARE_KEY.match(s, i)
            if bare is None:
                return None
            parts.append(bare.group(0))
            i = bare.end()
        while i < len(s) and s[i] in " \t":
            i += 1
        if not s.startswith(".", i):
            return parts, i
        i += 1


@functools.lru_cache(maxsize=2)
def _index(text: str) -> dict[tuple[str | int, ...], int]:
    """Every table header and key path of ``text`` -> the 1-based line first defining it, in
    one pass: a config of N rules asks for ~N paths, so scanning from the top for each would
    be quadratic (1,000 rules took 93 s). Cached for the last texts: a loader asks many
    times about one."""
    found: dict[tuple[str | int, ...], int] = {}
    table: list[str | int] = []
    arrays: dict[tuple[str | int, ...], int] = {}
    open_string: str | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if open_string:  # inside a multi-line string: nothing here is a key
            if line.count(open_string) % 2:
                open_string = None
            continue
        stripped = line.lstrip()
        if stripped.startswith("["):
            is_array = stripped.startswith("[[")
            header = _parse_key(stripped, 2 if is_array else 1)
            if header is not None:
                table = list(header[0])
                if is_array:
                    # [[vm]] blocks are addressed as ("vm", 0), ("vm", 1), ...
                    n = arrays.get(tuple(header[0]), -1) + 1
                    arrays[tuple(header[0])] = n
                    table.append(n)
                found.setdefault(tuple(table), lineno)
            continue
        plain = _PLAIN_KEY.match(stripped)  # most lines: a bare key, no dots, no quotes
        if plain is not None:
            key: tuple[list[str], int] | None = ([plain.group(1)], plain.end() - 1)
        else:
            key = _parse_key(stripped, 0)
        if key is None or not stripped.startswith("=", key[1]):
            continue
        found.setdefault((*table, *key[0]), lineno)
        rest = stripped[key[1] + 1 :]
        open_string = next((q for q in ('"""', "'''") if rest.count(q) % 2), None)
    return found


def find_line(text: str, keypath: Sequence[str | int]) -> int | None:
    """The 1-based line defining ``keypath`` in TOML ``text``, else that of its nearest parent
    (which is right for inline tables), else None. An int in ``keypath`` is the index of an
    array-of-tables block: ``("vm", 3, "name")`` is ``name`` in the fourth ``[[vm]]``."""
    found = _index(text)
    for n in range(len(keypath), 0, -1):
        line = found.get(tuple(keypath[:n]))
        if line is not None:
            return line
    return None


def dotted(keypath: Sequence[str]) -> str:
    """``keypath`` as TOML spells it, quoting parts that are not bare keys."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p) for p in keypath)
