"""Acknowledged drift: rules an operator writes for differences that are known and meant.

A rule matches drifts by VM name or glob, host, drift kind (and optionally a field); it carries
a reason (required) and may expire. An acknowledged drift stays visible, dimmed with its
reason, but does not count: not in ``check``'s exit code, not in the exporter's firing metrics,
not in ``watch``'s drift alerts. Pure: no I/O here (the config package reads and writes rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from vditui.core.models import DriftKind


@dataclass(frozen=True, slots=True)
class AckRule:
    """One acknowledgement, as written in a profile's ``[[profiles.NAME.ack]]`` table."""

    reason: str
    vm: str | None = None
    """A VM name or glob (``fnmatch``, case-sensitive); None matches every VM and host drift."""
    host: str | None = None
    """A host's VDI name or IP (or a glob); None: any host."""
    kind: DriftKind | None = None
    """None: any kind."""
    field: str | None = None
    """Optionally narrows a rule to one compared field (see the matching code)."""
    expires: date | None = None
    """The last day the rule applies; None: never expires."""
    line: int | None = None
    """Where the rule was written in its file, for messages; None when made in memory."""
