"""Every setting an operator may give, defined once: its default, its docstring, its bounds.

`Settings` is the one definition. The rest is derived from it: the config file's profile
(``vditui.config.Profile`` subclasses it), the file's checks (``vditui.config.checks`` reads each
field's ``kind`` and bounds), the engine's settings (`EngineSettings` subclasses it), a host
session's settings (`SessionSettings`, below, too) and the platform client's defaults
(`DEFAULTS`). Adding a setting is one field here.

Each field is declared with one of the helpers below, which record in the field's metadata:
``doc`` (what the operator reads), ``kind`` (how the file checks it: ``flag``, ``seconds``,
``count``, ``templates``, ``hosts`` or ``acks``) and, for numbers, ``minimum`` and ``inclusive``.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from vditui.core.acks import AckRule
from vditui.core.shard import Shard
from vditui.core.uris import DEFAULT_TEMPLATES


def flag(default: bool, doc: str) -> bool:
    """A true/false setting."""
    return field(default=default, metadata={"doc": doc, "kind": "flag"})


def seconds(default: float, doc: str, *, minimum: float = 0.0, inclusive: bool) -> float:
    """A duration: a finite number of seconds, at least (or above) ``minimum``."""
    meta = {"doc": doc, "kind": "seconds", "minimum": minimum, "inclusive": inclusive}
    return field(default=default, metadata=meta)


def count(default: int, doc: str, *, minimum: int) -> int:
    """A whole number, at least ``minimum``."""
    return field(default=default, metadata={"doc": doc, "kind": "count", "minimum": minimum})


def templates(default: tuple[str, ...], doc: str) -> tuple[str, ...]:
    """A non-empty list of libvirt URI templates."""
    return field(default=default, metadata={"doc": doc, "kind": "templates"})


def host_table(doc: str) -> dict[str, tuple[str, ...]]:
    """URIs per host, tried in order; the file spells it as a ``hosts`` table of
    ``{ uri = "..." }`` or ``{ uris = ["...", "..."] }``."""
    return field(default_factory=dict, hash=False, metadata={"doc": doc, "kind": "hosts"})


def ack_rules(doc: str) -> tuple[AckRule, ...]:
    """Acknowledgement rules; the file spells them as ``[[profiles.NAME.ack]]`` tables (see
    `vditui.core.acks`)."""
    return field(default=(), metadata={"doc": doc, "kind": "acks"})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The settings a profile may set, each with its default and its docstring."""

    verify_ssl: bool = flag(True, "Check the platform's TLS certificate; ``--insecure`` turns "
                                  "this off.")
    uri_templates: tuple[str, ...] = templates(
        DEFAULT_TEMPLATES,
        "libvirt URIs to try for a host, in order; ``{ip}`` and ``{name}`` are filled in.")
    host_uris: dict[str, tuple[str, ...]] = host_table(  # noqa: RUF009 - a default_factory
        "Fixed libvirt URIs per host, keyed by the host's VDI name or IP, tried in order "
        "before the templates; the first that connects is kept.")
    refresh_interval: float = seconds(
        30.0, "Seconds between re-reads of the platform's API.", inclusive=False)
    grace: float = seconds(
        10.0, "Seconds a disagreement must persist before it is reported as drift, so that "
              "operations in flight are not flagged.", inclusive=True)
    connect_timeout: float = seconds(
        5.0, "Seconds allowed to open a libvirt connection or the platform's HTTP connection.",
        inclusive=False)
    call_timeout: float = seconds(
        10.0, "Seconds allowed for one libvirt call or one platform request.", inclusive=False)
    page_size: int = count(100, "Items asked for per page of the platform's list endpoints.",
                           minimum=1)
    page_concurrency: int = count(4, "Pages of one list fetched at the same time.", minimum=1)
    keepalive_interval: int = count(
        2, "Seconds between libvirt keepalive probes; 0 turns keepalives off.", minimum=0)
    keepalive_count: int = count(
        2, "Unanswered keepalive probes before a libvirt connection counts as dead.", minimum=1)
    reread_interval: float = seconds(
        300.0, "Seconds between full re-reads of libvirt, a safety net behind its events; "
               "0 never.", inclusive=True)
    max_backoff: float = seconds(
        4.0, "Longest wait, in seconds, between reconnection attempts to a lost host.",
        inclusive=False)
    read_only: bool = flag(
        False, "Disable every action on VMs (start, shut down, reboot, sync): hidden from the "
               "TUI's menus, refused by ``vditui act``; ``--read-only`` sets it too.")
    action_timeout: float = seconds(
        60.0, "Seconds vditui follows a VM after an action, until the platform and libvirt "
              "agree; then it says the VM still differs.", inclusive=False)
    history_days: int = count(
        90, "Days of drift history kept in the history database; older rows are pruned.",
        minimum=1)
    ack: tuple[AckRule, ...] = ack_rules(
        "Acknowledged drift: rules (VM name or glob, host, kind, field, a reason, an expiry "
        "date) for differences that are known and meant; they stay shown, dimmed with their "
        "reason, but do not count (check's exit code, watch's alerts).")

    def fixed_uris(self, name: str, ip: str) -> tuple[str, ...]:
        """The URIs set for this host, looked up by VDI name and then by IP; empty if none."""
        return self.host_uris.get(name) or self.host_uris.get(ip) or ()


DEFAULTS = Settings()
"""Every setting at its default, for code that takes settings one by one (the platform client)."""

SETTINGS: tuple[Field[Any], ...] = fields(Settings)
"""The settings' fields, in the order they are declared."""


SLACK = 5.0
"""Seconds granted beyond the timeouts before a one-shot wait gives up on a host (thread start,
a busy loop): a host that is merely slow must not be judged unreachable."""


def values(settings: Settings) -> dict[str, Any]:
    """The settings of ``settings`` (a `Settings` or any subclass) by name, to build another
    subclass from: ``EngineSettings(url=..., **values(profile))``."""
    return {f.name: getattr(settings, f.name) for f in SETTINGS}


@dataclass(frozen=True, kw_only=True)
class EngineSettings(Settings):
    """Everything the engine needs: where the platform is and how to log in, plus `Settings`.

    Built by the launch module (``vditui.launch``) from the config, the flags and the
    environment, or from a lab for ``--demo``.
    """

    url: str
    username: str
    password: str = field(repr=False)
    debounce: float = 0.05
    """Least seconds between two reconciles; not an operator's setting."""
    history_path: Path | None = None
    """The drift history database (SQLite); None keeps no history. Set by ``vditui.launch``
    (the platformdirs state dir); not an operator's setting."""
    audit_path: Path | None = None
    """The audit trail of actions (JSON lines); None: actions are refused, since they could not
    be audited. Set by ``vditui.launch`` (the platformdirs state dir)."""
    shard: Shard = field(default_factory=Shard)
    """The share of the estate this process reads (``serve --pool``/``--hosts``); empty: all
    of it (see `vditui.core.shard`)."""

    def session_settings(self) -> SessionSettings:
        """What a host session needs; subclasses may adjust it (tests slow the backoff)."""
        return SessionSettings(**values(self))

    @property
    def settle_timeout(self) -> float:
        """Seconds a one-shot command waits for every host to be read or to fail once: a
        connect and a call, plus :data:`SLACK`."""
        return self.connect_timeout + self.call_timeout + SLACK

    @property
    def reread_timeout(self) -> float:
        """Seconds a re-read of connected hosts may take before they count as unread: a call,
        plus :data:`SLACK`."""
        return self.call_timeout + SLACK


@dataclass(frozen=True, kw_only=True)
class SessionSettings(Settings):
    """`Settings` plus a host session's own knobs, which are not an operator's settings."""

    min_backoff: float = 0.5
    """First wait, in seconds, before reconnecting to a lost host; doubles up to max_backoff."""
    info_concurrency: int = 8
    """Per-domain reads in flight per host, for the first read."""
    reread_info_concurrency: int = 2
    """The same for re-reads of a connected host (a refresh), whose data is already on screen:
    gentler, so that 50 hosts re-reading at once do not hold hundreds of threads that starve the
    event loop of the GIL (drivers with bulk stats need no per-domain reads at all)."""
