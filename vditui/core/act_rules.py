"""Which actions apply to a VM row, why one must not be sent, and when the two sides agree:
the pure rules behind :mod:`vditui.core.act` (no I/O), shared by the plan (from the last
snapshot) and the re-check just before sending (from fresh reads)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vditui.core.actions import Action, ActionError, ActionPhase, ActionPlan, ActionTarget
from vditui.core.exitcodes import ExitCode
from vditui.core.models import DriftKind, VdiVmStatus, VirtState, VmRow, vdi_status_label
from vditui.core.present import action_noun

ACTIONABLE = frozenset({DriftKind.STATE, DriftKind.PLACEMENT, DriftKind.ONLY_IN_VDI})
"""The drifts an action can end: a VM's state or place, or a VM libvirt does not have."""
_OFF = frozenset({VirtState.SHUTOFF, VirtState.CRASHED})
_RUNNING = frozenset({VirtState.RUNNING, VirtState.BLOCKED})
DRIFT_GONE = "drift gone: "


def sides(row: VmRow, hosts: Mapping[str, str] | None = None) -> str:
    """``platform says off, libvirt running`` (what each side says about the VM now); with
    ``hosts`` (id -> name), each side's host too when they differ."""
    platform = "has no such VM" if row.vdi is None else f"says {vdi_status_label(row.vdi.status)}"
    virt = "has no such domain" if row.virt is None else row.virt.state.value
    if hosts is not None and row.vdi is not None and row.virt is not None \
            and row.virt_host_id and row.virt_host_id != row.vdi.host_id:
        platform += f" on {hosts.get(row.vdi.host_id, row.vdi.host_name or row.vdi.host_id)}"
        virt += f" on {hosts.get(row.virt_host_id, row.virt_host_id)}"
    return f"platform {platform}, libvirt {virt}"


def applies(action: Action, row: VmRow) -> bool:
    """True when ``action`` makes sense for ``row`` (the menu's rule, see the API notes):
    syncs for any VM the platform knows; start when a side says off; shutdown and reboot when
    a side says running."""
    vm = row.vdi
    if vm is None:
        return False
    if action in (Action.SYNC, Action.SYNC_HOST):
        return True
    virt = row.virt.state if row.virt is not None else None
    if action is Action.START:
        return vm.status == VdiVmStatus.OFF or virt in _OFF
    return vm.status == VdiVmStatus.RUNNING or virt in _RUNNING


SYNCS = frozenset({Action.SYNC, Action.SYNC_HOST})
ONLY_IN_PLATFORM = ("still only in the platform: re-create it on a host or remove it from the "
                    "platform")


def can_change(action: Action, row: VmRow) -> bool:
    """Whether ``action`` can change anything ``row`` differs in: it applies to the row, and
    the row has a drift an action can end (a vCPU- or memory-only row has none)."""
    return applies(action, row) and any(d.kind in ACTIONABLE for d in row.drifts)


def only_in_platform(row: VmRow) -> bool:
    """The platform lists the VM, libvirt has no such domain."""
    return row.vdi is not None and row.virt is None and any(
        d.kind is DriftKind.ONLY_IN_VDI for d in row.drifts)


def reach(action: Action, row: VmRow) -> str | None:
    """What ``action`` can at most do for ``row`` when that is short of agreement, for the
    plan to say; None when it may bring the two sides together."""
    if action in SYNCS and only_in_platform(row):
        return ("only in the platform: a sync can at most make the platform stop calling it "
                "running (libvirt has no domain to read); then re-create it on a host or "
                "remove it from the platform")
    return None


def done(action: Action, row: VmRow) -> str | None:
    """Why the follow-up of ``action`` may end for ``row`` short of agreement (all it could do
    is done), or None: a VM only in the platform, synced, that the platform now says is off."""
    if action in SYNCS and only_in_platform(row) and row.vdi is not None \
            and row.vdi.status == VdiVmStatus.OFF:
        return f"the platform says off now; {ONLY_IN_PLATFORM}"
    return None


def agrees(row: VmRow) -> bool:
    """The two sides agree about the VM (no drift an action could end, nothing in progress)."""
    if row.vdi is not None and row.vdi.status in (VdiVmStatus.BUSY, VdiVmStatus.UPGRADING):
        return False
    return row.checked and not any(d.kind in ACTIONABLE for d in row.drifts)


def judge(action: Action, row: VmRow | None, host_name: str,
          hosts: Mapping[str, str] | None = None) -> str | None:
    """Why ``action`` must not be sent for ``row``, or None when it may; ``hosts``: host id ->
    name, for the messages."""
    if row is None:
        return "gone: neither the platform nor libvirt lists it any more"
    if row.vdi is None:
        return (f"only in libvirt (on {host_name}): the platform has no id for it, so it cannot "
                "act on it; import it into the platform, or shut it down / undefine it on "
                f"{host_name} by hand (virsh)")
    if not row.checked:
        return f"libvirt on {host_name} could not be read: no verdict to act on"
    if row.vdi.status == VdiVmStatus.BUSY:
        return "busy: the platform has an operation in progress on it (status 5); wait for it"
    if row.vdi.status == VdiVmStatus.UPGRADING:
        return "upgrading (status 6): wait until the platform has finished"
    if not any(d.kind in ACTIONABLE for d in row.drifts):
        other = [d.kind.value for d in row.drifts]
        if other:
            return (f"no drift an action can end: only {', '.join(other)} differ(s), which "
                    "sync, start, shutdown and reboot do not change")
        return f"{DRIFT_GONE}{sides(row, hosts)}"
    if not applies(action, row):
        side = "off" if action is Action.START else "running"
        return (f"{action_noun(action)} does not apply: neither side says {side} "
                f"({sides(row, hosts)})")
    return None


def target_of(row: VmRow, host_name: str) -> ActionTarget:
    """The :class:`ActionTarget` for a row."""
    return ActionTarget(row.key, row.name, row.vdi.id if row.vdi is not None else None,
                        row.host_id, host_name)


def _drift_gone(message: str) -> bool:
    # An action's outcome says "NAME: drift gone: ..." (the re-check's refusal); a plan's
    # refusal says the reason alone.
    return message.startswith(DRIFT_GONE) or f": {DRIFT_GONE}" in message


def exit_code(outcomes: Mapping[str, tuple[ActionPhase, str]],
              platform_failed: bool) -> ExitCode:
    """OK every VM agrees (resolved, or refused because the drift had gone), DIFFERS some do
    not, FAILED the platform refused or could not be reached."""
    if platform_failed:
        return ExitCode.FAILED
    ok = all(phase is ActionPhase.RESOLVED
             or (phase is ActionPhase.REFUSED and _drift_gone(message))
             for phase, message in outcomes.values())
    return ExitCode.OK if ok else ExitCode.DIFFERS


def applicable(rows: Iterable[VmRow | None]) -> tuple[Action, ...]:
    """The actions that apply to at least one of ``rows`` (with a drift an action can end):
    what the action menu offers, for the real engine and the scripted one alike."""
    live = [r for r in rows if r is not None and judge(Action.SYNC, r, "") is None]
    return tuple(a for a in Action if any(applies(a, r) for r in live))


def make_plan(action: Action, force: bool, rows: Iterable[tuple[str, VmRow | None]],
              names: Mapping[str, str], in_flight: Mapping[str, str]) -> ActionPlan:
    """What ``action`` would send for ``rows`` (row key, the row or None when gone), judged
    from the comparison they come from (no I/O): each row sent or refused with its reason,
    and what a sent one can at most change. ``names``: host id -> name; ``in_flight``: VM id
    -> the action already running on it. An ActionError when ``force`` does not apply."""
    if force and not action.forceable:
        raise ActionError(f"{action.value} has no force variant in the platform's API "
                          "(only shutdown and reboot take isForce)")
    send: list[ActionTarget] = []
    refused: list[tuple[ActionTarget, str]] = []
    notes: list[tuple[ActionTarget, str]] = []
    for key, row in rows:
        if row is None:
            refused.append((ActionTarget(key, key, None, "", ""),
                            "gone: no such VM in the last comparison"))
            continue
        host = names.get(row.host_id) or (row.vdi.host_name if row.vdi else "") or row.host_id
        target = target_of(row, host)
        why = judge(action, row, target.host_name, names)
        running = in_flight.get(target.vm_id or "")
        if why is None and running is not None:
            why = f"an action is already in progress on it ({running})"
        if why is None:
            send.append(target)
            if (note := reach(action, row)) is not None:
                notes.append((target, note))
        else:
            refused.append((target, why))
    return ActionPlan(action, force, tuple(send), tuple(refused), tuple(notes))
