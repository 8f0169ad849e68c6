"""Acting on a drift, through the platform only: the vocabulary of actions.

The platform owns the desktops; vditui never changes libvirt behind its back. Each action is
one of the platform's own endpoints (``shared/vendor/README.md``): a VM's or a host's
``sync-status`` (the platform re-reads the real state), or ``start`` / ``close`` / ``reboot``
(``DomainBatchTaskDto {idList, hostId?, isForce?}``, answered by ``DomainBatchTaskVO
{errorList, eventIdList}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
