"""What kind of VM the platform says it is, and the comparison rule true for each kind.

A VDI platform keeps more than desktops in its records: templates (``isModel``), VMs in the
recycle bin (``isRecycle``), restore-point ("frozen") desktops (``freeze``) and linked clones
(``motherId``). Comparing them all as plain desktops gives a false alarm on every real site
(every site has templates). The rules, decided from the vendor spec's fields:

* **Template** (``isModel = 1``, or listed by ``GET /ocloud/v1/model``): a golden image that
  desktops are cloned from, normally off and never a desktop. A template that libvirt lacks, has
  off, or defines on another host (or several) is no drift; its vCPU/memory are the defaults for
  new desktops, not a running guest's, so they are not compared. Only a template that libvirt
  *runs* while the platform says it is off is a STATE drift: WARNING, CRITICAL when linked clones
  use it (their disks are overlays on its disk, which a running template may change).
* **Recycle bin** (``isRecycle = 1``, or listed by ``GET /ocloud/v1/recycle``): deleted but
  restorable. Libvirt may have dropped it or may still define it: neither is a drift, and a
  recycled VM still defined in libvirt is not "only in libvirt" (it is matched to its record).
  Only one that libvirt runs is a STATE drift (WARNING): a deleted desktop still in use.
* **Restore point** (``freeze`` not 0): every reset returns the disk to the restore point; the
  platform does it by destroying and re-creating the domain, which may be transient (gone from
  libvirt while off). So a frozen desktop the platform has off and libvirt lacks is no drift,
  and one the platform has running while libvirt has it shut off or absent is INFO (a reset in
  progress; the engine's grace period lets a reset pass unreported, and an INFO drift that
  lasts is still shown: a desktop that never came back). Everything else is compared as usual.
* **Linked clone** (``motherId`` set): a desktop, compared in full like any desktop; its
  template is named on its row, and its existence makes a running template CRITICAL.
* **A desktop in a pool switching template** (DesktopPoolVO.status = 1): its desktops are being
  rebuilt, so state, presence and size differences are INFO (explained, not confirmed drift)
  while the switch lasts.
"""

from __future__ import annotations

from collections.abc import Iterable

from vditui.core.models import DriftKind, Severity, VdiVm, VdiVmStatus, VirtState

Spec = tuple[DriftKind, Severity, str, str, str]  # kind, severity, message, vdi/virt values

_OFF = frozenset({VirtState.SHUTOFF, VirtState.CRASHED})
_TEMPLATE_MAY_RUN = frozenset({VdiVmStatus.RUNNING, VdiVmStatus.BUSY, VdiVmStatus.UPGRADING})
#: Drift kinds a pool's template switch explains.
_SWITCH_EXPLAINS = frozenset({DriftKind.STATE, DriftKind.ONLY_IN_VDI, DriftKind.VCPU,
                              DriftKind.MEMORY})


def kind_label(vm: VdiVm | None) -> str:
    """What the platform says the VM is, in a few words ("" for a plain desktop)."""
    if vm is None:
        return ""
    if vm.recycled:
        return "in the recycle bin"
    if vm.template:
        return "template"
    parts = []
    if vm.frozen:
        parts.append("restore point")
    if vm.mother_id:
        parts.append(f"linked clone of {vm.mother_name or vm.mother_id}")
    return ", ".join(parts)


def compared_as_desktop(vm: VdiVm) -> bool:
    """False for templates and the recycle bin: records that are not desktops in use."""
    return not (vm.template or vm.recycled)


def clone_counts(vms: Iterable[VdiVm]) -> dict[str, int]:
    """Per template id, how many linked clones the platform records on it."""
    counts: dict[str, int] = {}
    for vm in vms:
        if vm.mother_id and compared_as_desktop(vm):
            counts[vm.mother_id] = counts.get(vm.mother_id, 0) + 1
    return counts


def judge(vm: VdiVm, state: VirtState | None, active: bool, specs: list[Spec], *,
          clones: int = 0, switching_pool: str = "") -> list[Spec]:
    """The drifts of one platform VM once its kind's rule is applied (see the module).

    ``state`` is libvirt's state for it (None: libvirt has no such domain), ``active`` whether a
    QEMU process exists, ``specs`` the drifts a plain desktop would have, ``clones`` how many
    linked clones use it, ``switching_pool`` the name of its pool when that pool is switching
    template.
    """
    running = state.value if state is not None else "absent"
    if vm.recycled:
        if not active:
            return []
        return [(DriftKind.STATE, Severity.WARNING,
                 f"in the recycle bin, but libvirt runs it ({running})", "recycle bin", running)]
    if vm.template:
        if not active or vm.status in _TEMPLATE_MAY_RUN:
            return []
        message = f"template, but libvirt runs it ({running})"
        if clones:
            message += (f"; {clones} linked clone{'s' if clones != 1 else ''} "
                        "use its disk as their base")
        return [(DriftKind.STATE, Severity.CRITICAL if clones else Severity.WARNING, message,
                 "template", running)]
    out = specs
    if vm.frozen:
        platform_running = vm.status == VdiVmStatus.RUNNING
        if state is None and not platform_running:
            out = [s for s in out if s[0] is not DriftKind.ONLY_IN_VDI]
        elif platform_running and (state is None or state in _OFF):
            why = "restore-point desktop: a reset re-creates its domain"
            out = [_soften(s, why) if s[0] in (DriftKind.STATE, DriftKind.ONLY_IN_VDI) else s
                   for s in out]
    if switching_pool:
        why = f"pool {switching_pool} is switching template"
        out = [_soften(s, why) if s[0] in _SWITCH_EXPLAINS else s for s in out]
    return out


def _soften(spec: Spec, why: str) -> Spec:
    kind, _severity, message, ours, theirs = spec
    return (kind, Severity.INFO, f"{message} ({why})", ours, theirs)
