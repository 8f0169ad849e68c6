"""Acting on a drift, through the platform only: the vocabulary of actions.

The platform owns the desktops; vditui never changes libvirt behind its back. Each action is
one of the platform's own endpoints (``shared/vendor/README.md``): a VM's or a host's
``sync-status`` (the platform re-reads the real state), or ``start`` / ``close`` / ``reboot``
(``DomainBatchTaskDto {idList, hostId?, isForce?}``, answered by ``DomainBatchTaskVO
{errorList, eventIdList}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from vditui.core.exitcodes import ExitCode


class Action(StrEnum):
    """What an operator may ask the platform to do to VMs."""

    SYNC = "sync"
    """``POST /ocloud/v1/domain/{id}/sync-status``: the platform re-reads the VM's state."""
    SYNC_HOST = "sync-host"
    """``POST /ocloud/v1/host/{id}/sync-status``: the same for every VM of the VM's host."""
    START = "start"
    """``POST /ocloud/v1/domain/start``."""
    SHUTDOWN = "shutdown"
    """``POST /ocloud/v1/domain/close`` (the platform's word for a shutdown)."""
    REBOOT = "reboot"
    """``POST /ocloud/v1/domain/reboot``."""

    @property
    def forceable(self) -> bool:
        """True when the platform's API has a force variant (``isForce``) for this action:
        shutdown (a power-off) and reboot (a reset); the spec names none for start or sync."""
        return self in (Action.SHUTDOWN, Action.REBOOT)

    @property
    def batch(self) -> bool:
        """True for the actions sent as one ``DomainBatchTaskDto`` for every VM at once."""
        return self in (Action.START, Action.SHUTDOWN, Action.REBOOT)


class ActionPhase(StrEnum):
    """Where one VM stands in an action."""

    REFUSED = "refused"
    """Not sent: the fresh re-read showed a reason (drift gone, busy, unknown to the platform)."""
    SENT = "sent"
    ACCEPTED = "accepted"
    """The platform took it (no ``errorList`` entry for this VM)."""
    FAILED = "failed"
    """The platform refused it for this VM, or could not be reached; nothing is re-sent."""
    RESOLVED = "resolved"
    """The platform and libvirt agree about the VM."""
    UNRESOLVED = "unresolved"
    """Still differing when ``action_timeout`` ran out."""


@dataclass(frozen=True, slots=True)
class ActionTarget:
    """A VM an action is meant for, as the operator sees it."""

    key: str
    """The VM row's key (``VmRow.key``)."""
    name: str
    vm_id: str | None
    """The platform's id; None for a VM only libvirt knows (no action can name it)."""
    host_id: str
    host_name: str


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What an action would send, judged from a snapshot: ``send`` in order, and each target
    that would not be sent with the reason (see :meth:`vditui.core.engine.Engine.plan`)."""

    action: Action
    force: bool
    send: tuple[ActionTarget, ...]
    """What would be sent, in order."""
    refused: tuple[tuple[ActionTarget, str], ...] = ()
    """Not sent, each with its reason (and what the operator can do instead)."""
    notes: tuple[tuple[ActionTarget, str], ...] = ()
    """Sent, but the action can do less than bring the sides together: what it can at most
    do (a sync of a VM only in the platform), for the plan to say."""

    def hosts(self) -> tuple[str, ...]:
        """The names of the hosts of the VMs to be sent, in order, once each."""
        return tuple(dict.fromkeys(t.host_name for t in self.send))

    def targets(self) -> tuple[ActionTarget, ...]:
        """Every target, sent or refused."""
        return self.send + tuple(t for t, _ in self.refused)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """How an action ended (see :meth:`vditui.core.engine.Engine.act`)."""

    action_id: str
    """Ties the action's :class:`~vditui.core.events.ActionUpdate` events and audit lines."""
    plan: ActionPlan
    """The plan as re-checked just before sending (fresh reads): what was really sent."""
    outcomes: Mapping[str, tuple[ActionPhase, str]]
    """VM key -> its final phase and message, for every target of the plan."""
    exit_code: ExitCode
    """0 every VM reached agreement, 1 some did not, 2 the platform refused or could not be
    reached."""


class ActionError(Exception):
    """An action that cannot be asked at all; the message says why (read-only mode, nothing to
    act on, no audit trail to record it in)."""
