"""``--since``, one parser for ``audit`` and ``history``: a span back from now or a moment."""

from __future__ import annotations

import re
from datetime import datetime

_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
LIMIT_YEARS = 100
"""Further back than this is a typo, not a question (and past what a date can hold)."""
EXPECTED = ("expected a span like 90m, 1.5h or 7d, or a date like 2026-12-01, or a date and "
            "time like 2026-12-01T14:00 (local time unless it gives its offset, e.g. +01:00)")


def parse_since(text: str, now: float) -> float:
    """The Unix time ``--since text`` means: a span back from ``now`` (``90m``, ``1.5h``,
    ``7d``, ``2w``, ``45s``) or a date or date and time (ISO 8601; local time unless it says
    its offset). ``ValueError`` with the one line to show otherwise (the same for every
    command)."""
    t = text.strip()
    try:
        if m := _SPAN.fullmatch(t):
            at = now - float(m.group(1)) * _UNITS[m.group(2)]
        else:
            moment = datetime.fromisoformat(t)
            at = (moment if moment.tzinfo is not None else moment.astimezone()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"--since {text!r}: {EXPECTED}") from None
    if now - at > LIMIT_YEARS * 365.25 * 86400:
        # A typo (99999999999999w) or year 1: past what the records' dates can hold.
        raise ValueError(f"--since {text!r}: more than {LIMIT_YEARS} years back; {EXPECTED}")
    return at
