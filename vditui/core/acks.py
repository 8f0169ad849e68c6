"""Acknowledged drift: rules an operator writes for differences that are known and meant.

A rule matches drifts by VM name or glob, host, drift kind (and optionally a field); it carries
a reason (required) and may expire. An acknowledged drift stays visible, dimmed with its
reason, but does not count: not in ``check``'s exit code, not in the exporter's firing metrics,
not in ``watch``'s drift alerts. Pure: no I/O here (the config package reads and writes rules).

What each key of a rule matches (every key given must match; an absent key matches anything):

* ``vm``: the VM's name (a ``fnmatch`` glob, case-sensitive). A rule with ``vm`` never matches a
  host's own drifts (unreachable, offline but reachable); one without matches both.
* ``host``: the host's VDI name or IP (a glob): the platform's host of the VM, or libvirt's for a
  VM only libvirt has; the host itself for a host drift.
* ``kind``: the drift kind (`DriftKind`).
* ``field``: one side's value, written ``SIDE=VALUE`` with SIDE ``platform`` (or ``vdi``) or
  ``libvirt`` and VALUE a glob of the value that side shows in the drift: ``libvirt=shutoff``
  acknowledges a VM only while libvirt says shutoff (if it later differs in another way, the
  rule stops applying), ``platform=4`` a vCPU drift only while the platform says 4.
* ``expires``: the last day (local date) the rule applies; from the day after, it does not.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from vditui.core.models import Drift, DriftKind
from vditui.core.present import KIND_NAMES

#: The kinds that are a host's own drifts, not a VM's.
HOST_KINDS = frozenset({DriftKind.HOST_UNREACHABLE, DriftKind.HOST_OFFLINE_BUT_REACHABLE,
                        DriftKind.HOST_RUNNING_COUNT})
#: The sides a ``field`` may name, and which value of a drift each one reads.
FIELD_SIDES: dict[str, Callable[[Drift], str]] = {
    "platform": lambda d: d.vdi_value,
    "vdi": lambda d: d.vdi_value,
    "libvirt": lambda d: d.virt_value,
}


@dataclass(frozen=True, slots=True)
class AckRule:
    """One acknowledgement, as written in a profile's ``[[profiles.NAME.ack]]`` table (see the
    module's docstring for what each key matches)."""

    reason: str
    vm: str | None = None
    """A VM name or glob (``fnmatch``, case-sensitive); None matches every VM and host drift."""
    host: str | None = None
    """A host's VDI name or IP (or a glob); None: any host."""
    kind: DriftKind | None = None
    """None: any kind."""
    field: str | None = None
    """``SIDE=VALUE``: one side's value in the drift (``libvirt=shutoff``); None: any."""
    expires: date | None = None
    """The last day the rule applies; None: never expires."""
    line: int | None = None
    """Where the rule was written in its file, for messages; None when made in memory."""

    def expired(self, today: date) -> bool:
        """True from the day after ``expires`` on."""
        return self.expires is not None and today > self.expires

    def matches(self, drift: Drift, host_name: str = "", host_ip: str = "") -> bool:
        """Whether this rule covers ``drift``, whose host is called ``host_name`` at
        ``host_ip`` on the platform (expiry is not looked at: see :meth:`expired`)."""
        if self.kind is not None and drift.kind is not self.kind:
            return False
        if self.vm is not None and (drift.kind in HOST_KINDS
                                    or not fnmatch.fnmatchcase(drift.subject, self.vm)):
            return False
        if self.host is not None and not any(
                v and fnmatch.fnmatchcase(v, self.host) for v in (host_name, host_ip)):
            return False
        if self.field is not None:
            side, _, value = self.field.partition("=")
            read = FIELD_SIDES.get(side.strip().lower())
            if read is None or not fnmatch.fnmatchcase(read(drift), value.strip()):
                return False
        return True

    def describe(self) -> str:
        """The rule's selectors in one line, e.g. ``vm=lic host=ocloud kind=only_in_vdi``."""
        parts = [f"{k}={v}" for k, v in (("vm", self.vm), ("host", self.host),
                                         ("kind", self.kind.value if self.kind else None),
                                         ("field", self.field)) if v is not None]
        return " ".join(parts) or "every drift"


def exact(name: str) -> str:
    """A ``vm`` or ``host`` pattern matching ``name`` only: its glob characters (``*``, ``?``,
    ``[``) bracketed, as fnmatch reads them (``class-a-0*`` becomes ``class-a-0[*]``). For
    rules written from a drift (``baseline``, the TUI's ``k``), so that a VM named like a glob
    never hides another VM's drift."""
    return glob.escape(name)


def parse_kind(text: str) -> DriftKind | None:
    """A drift kind from its machine name (``only_in_vdi``) or its words on screen
    (``only in VDI``), case and spacing aside; None if it is neither."""
    want = " ".join(text.replace("_", " ").split()).lower()
    for kind, words in KIND_NAMES.items():
        if want in (kind.value.replace("_", " "), words.lower()):
            return kind
    return None


def valid_field(text: str) -> bool:
    """Whether ``text`` is a ``field`` a rule can use: ``SIDE=VALUE`` with a known side."""
    side, eq, value = text.partition("=")
    return bool(eq) and side.strip().lower() in FIELD_SIDES and bool(value.strip())


def active_rules(rules: Iterable[AckRule], today: date) -> tuple[list[AckRule], list[AckRule]]:
    """``rules`` split into those that apply on ``today`` and those that have expired."""
    live: list[AckRule] = []
    gone: list[AckRule] = []
    for r in rules:
        (gone if r.expired(today) else live).append(r)
    return live, gone


def acknowledge(drifts: Iterable[Drift], rules: list[AckRule],
                hosts: Mapping[str, tuple[str, str]]) -> dict[tuple[str, str], AckRule]:
    """Drift ident -> the first rule (in file order) that covers it, for the drifts some rule
    covers; ``hosts``: host id -> (VDI name, IP)."""
    if not rules:
        return {}
    out: dict[tuple[str, str], AckRule] = {}
    for d in drifts:
        name, ip = hosts.get(d.host_id, ("", ""))
        for r in rules:
            if r.matches(d, name, ip):
                out[d.ident] = r
                break
    return out


class AckBook:
    """The rules in force for an engine: the profile's, plus those added live; applies them to
    each comparison and tells which rules expired since the last time (each rule once)."""

    def __init__(self, rules: Iterable[AckRule]) -> None:
        self.rules: list[AckRule] = list(rules)
        self._said_expired: set[AckRule] = set()
        self._live: list[AckRule] = []
        self._hosts: Mapping[str, tuple[str, str]] = {}

    def add(self, rule: AckRule) -> None:
        self.rules.append(rule)

    def apply(self, drifts: Iterable[Drift], hosts: Callable[[], Mapping[str, tuple[str, str]]],
              today: date) -> tuple[dict[tuple[str, str], AckRule], list[AckRule]]:
        """(drift ident -> rule, for the drifts a rule in force on ``today`` covers; the rules
        newly expired). ``hosts``: host id -> (VDI name, IP), called only when there are
        rules."""
        if not self.rules:
            self._live = []
            return {}, []
        self._live, expired = active_rules(self.rules, today)
        newly = [r for r in expired if r not in self._said_expired]
        self._said_expired.update(newly)
        self._hosts = hosts()
        return acknowledge(drifts, self._live, self._hosts), newly

    def rule_for(self, drift: Drift, acked: Mapping[tuple[str, str], AckRule]) -> AckRule | None:
        """The rule covering ``drift`` at the last :meth:`apply`, for a drift that may not be
        in that comparison any more (one just resolved)."""
        if not self._live:
            return None
        if drift.ident in acked:
            return acked[drift.ident]
        return acknowledge([drift], self._live, self._hosts).get(drift.ident)
