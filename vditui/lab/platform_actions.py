"""The simulated platform's action endpoints: start, close, reboot (a batch of VMs), and
sync-status of a VM or a host, acting on the lab's real libvirtd hosts.

How the platform acts, as a real OCloudView does: a batch request is answered at once with
``DomainBatchTaskVO {errorList, eventIdList}``; every accepted VM shows status 5 (an operation
in progress) meanwhile; :attr:`PlatformActions.delay` seconds later the platform changes the
real libvirt domain through :class:`Hypervisors` (the lab's own connections; start: create, or
resume a suspended VM; close: shutdown or, with ``isForce``, destroy; reboot: reboot or, with
``isForce``, reset), and its record follows libvirt's real state afterwards. When the libvirt
call fails (start on a running domain, a host it cannot reach, a domain that host does not
have) the VM's status goes back to what it was and the failure is kept in
:attr:`PlatformActions.outcomes`; a later sync-status fixes the record. A VM already busy (5)
or upgrading (6) gets an errorList entry instead. A graceful close asks the guest to shut down
(ACPI); a diskless qemu guest has no OS to answer, so it never goes off: after
:attr:`PlatformActions.close_timeout` seconds the platform gives up, records it as running
again and notes the failure (``isForce`` destroys instead). Likewise a graceful reboot of such
a guest "succeeds" and changes nothing.

sync-status of a VM: after the delay the platform adopts libvirt's real state (status, and the
host where libvirt has it). Of a host: the same for every VM the platform puts there or that
host's libvirt has, and the host's own status (offline or shut down -> enabled when its libvirt
answers, enabled -> offline when it does not).

Without :class:`Hypervisors` (a bare :class:`~vditui.lab.vdi_server.VdiServer`) the platform
flips its own record after the delay, as a simulator with no hosts behind it.

Faults on request: :mod:`vditui.lab.action_faults`.

Nothing here imports ``vditui.core``: the lab is the world, not the engine's mirror.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vditui.lab.action_faults import E_ACTION, ActionFault, ActionFaults
from vditui.lab.vdi_data import (
    E_BAD_REQUEST,
    OK_MSG,
    ApiError,
    HostState,
    Request,
    VdiState,
    VmState,
    iso_time,
    now_ms,
    ok_answer,
)

log = logging.getLogger("vditui.lab.platform")
#: The most requests and outcomes kept (a long `vditui lab up` must not grow without bound).
KEEP = 10_000

#: libvirt state name -> the DomainVO.status the platform records for it
VDI_STATUS_FOR = {"running": 1, "shutoff": 0, "paused": 2}
BUSY, UPGRADING = 5, 6
#: The spec's DomainBatchTaskDto and DomainSyncStatusDto fields; anything else is refused.
BATCH_FIELDS = frozenset({"idList", "hostId", "isForce"})
SYNC_FIELDS = frozenset({"syncType"})
MSG_BUSY = "虚机正在执行其他任务 (an operation is already in progress on this VM)"
MSG_UPGRADING = "虚机正在升级 (the VM is being upgraded)"
MSG_STOPPED = "平台已停止 (the platform stopped before acting)"


class HypervisorError(Exception):
    """A libvirt operation the platform asked for failed; the message says why."""


class Hypervisors(Protocol):
    """What the platform needs of the lab's libvirt hosts (:class:`vditui.lab.lab.Lab` has
    it). Every method raises :class:`HypervisorError` on failure."""

    def platform_op(self, host: str, vm_uuid: str, op: str) -> str:
        """Do ``op`` (start, shutdown, destroy, reboot, reset) to the VM on ``host``; returns
        libvirt's state name afterwards. A start on a host without the (shut-off) domain
        moves its definition there first, as a start with ``hostId`` does."""
        ...

    def platform_locate(self, vm_uuid: str, hint: str) -> tuple[str, str]:
        """(host name, state name) where libvirt has the VM now, ``hint`` tried first."""
        ...

    def platform_host_domains(self, host: str) -> dict[str, str]:
        """UUID -> state name of every domain that host's libvirt has."""
        ...


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """An action request as received: ``action`` (one of :data:`ACTIONS`), the path's id (VM
    or host; "" for a batch) and the parsed JSON body (``{}`` when there was none)."""

    action: str
    target: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What the platform did to one VM (or, with ``vm_id`` "", to a host) after the delay."""

    action: str
    vm_id: str
    vm_name: str
    host: str
    ok: bool
    message: str
    status: int  # the platform's record afterwards (VM status, or the host's for a host)


@dataclass(frozen=True, slots=True)
class _Task:
    uuid: str
    vm_id: str
    name: str
    host: str
    prior: int
    event: str = ""  # the platform task (EventVO id) a batch answer named
    fail: str = ""  # a task_fail fault: the errorReason the task ends with


class PlatformActions:
    """The action endpoints of one simulated platform. ``lock`` guards ``state`` (the server's
    lock); libvirt is never called under it."""

    def __init__(self, lock: threading.Lock, state: Callable[[], VdiState],
                 stopping: threading.Event) -> None:
        self._lock, self._state, self._stopping = lock, state, stopping
        #: Seconds between the request and the libvirt change (tests set ~0.2).
        self.delay = 1.0
        #: Seconds a graceful close waits for the guest to go off before giving up.
        self.close_timeout = 10.0
        #: The lab's hosts; None: the platform only flips its own record.
        self.hypervisors: Hypervisors | None = None
        #: Every action request, in arrival order (before faults).
        self.requests: list[ActionRequest] = []
        #: What the platform did, per VM, in completion order.
        self.outcomes: list[ActionOutcome] = []
        #: The fault in force (:mod:`vditui.lab.action_faults`).
        self.faults = ActionFaults(lock, stopping)
        self._busy = 0
        self._idle = threading.Condition()

    # ----------------------------------------------------------------------- endpoints

    def batch(self, r: Request, action: str, host_state: Callable[[str], HostState]) -> \
            dict[str, Any]:
        """POST /ocloud/v1/domain/{start,close,reboot}: DomainBatchTaskDto in,
        DomainBatchTaskVO out."""
        doc = self._record(action, "", r, required=True)
        ids, host_id, force = _batch_args(doc)
        fault = self.faults.take(action)
        self.faults.before_acting(fault)
        errors: list[dict[str, str]] = []
        events: list[str] = []
        tasks: list[_Task] = []
        with self._lock:
            state = self._state()
            target = host_state(host_id).spec.name if host_id and action == "start" else None
            for vm_id, vm in state.vms_by_ids(ids):
                why = self._refusal(vm, fault)
                if vm is None or why:
                    errors.append({"domainId": vm_id, "domainName": vm.spec.name if vm else "",
                                   "errorMsg": why or f"虚机不存在 (no such VM: {vm_id})"})
                    continue
                event = secrets.token_hex(16)
                fail = fault.msg if fault is not None and fault.fails(_names(vm)) else ""
                tasks.append(_Task(vm.spec.uuid, vm_id, vm.spec.name, target or vm.host,
                                   vm.status, event, fail))
                state.set_vm_status(vm.spec.uuid, BUSY)
                state.events[event] = event_vo(event, vm, target or vm.host, state)
                if len(state.events) > KEEP:
                    del state.events[next(iter(state.events))]
                events.append(event)
        if tasks:
            self._spawn(self._run_batch, action, tasks, force)
        self.faults.after_acting(fault)
        return ok_answer({"errorList": errors, "eventIdList": events})

    def domain_sync(self, r: Request, vm_state: Callable[[str], VmState]) -> dict[str, Any]:
        """POST /ocloud/v1/domain/{id}/sync-status: DomainSyncStatusDto in, BaseResponseVO."""
        doc = self._record("sync", r.params["id"], r, required=False)
        if unknown := set(doc) - SYNC_FIELDS:
            raise ApiError(E_BAD_REQUEST, f"参数错误 (unknown field(s) {sorted(unknown)})")
        sync = doc.get("syncType", 1)
        if type(sync) is not int or sync not in (0, 1):  # not True, not 1.0
            raise ApiError(E_BAD_REQUEST, f"参数错误 (syncType must be 0 or 1, got {sync!r})")
        fault = self.faults.take("sync")
        self.faults.before_acting(fault)
        with self._lock:
            vm = vm_state(r.params["id"])
            task = _Task(vm.spec.uuid, vm.vdi_id, vm.spec.name, vm.host, vm.status)
        if fault is not None and fault.refuses(_names(vm)):
            raise ApiError(E_ACTION, fault.msg)
        self._spawn(self._run_sync, "sync", [task])
        self.faults.after_acting(fault)
        return {"status": 0, "msg": OK_MSG}

    def host_sync(self, r: Request, host_state: Callable[[str], HostState]) -> dict[str, Any]:
        """POST /ocloud/v1/host/{id}/sync-status (no body in the spec): BaseResponseVO."""
        self._record("host_sync", r.params["id"], r, required=False)
        fault = self.faults.take("host_sync")
        self.faults.before_acting(fault)
        with self._lock:
            name = host_state(r.params["id"]).spec.name
        self._spawn(self._run_host_sync, name)
        self.faults.after_acting(fault)
        return {"status": 0, "msg": OK_MSG}

    def _record(self, action: str, target: str, r: Request, required: bool) -> dict[str, Any]:
        try:
            doc = r.json(required=required)
        finally:
            with self._lock:
                _keep(self.requests, ActionRequest(action, target, _peek(r.body)))
        return doc

    @staticmethod
    def _refusal(vm: VmState | None, fault: ActionFault | None) -> str:
        if vm is None:
            return ""
        if fault is not None and fault.refuses(_names(vm)):
            return fault.msg
        return {BUSY: MSG_BUSY, UPGRADING: MSG_UPGRADING}.get(vm.status, "")

    # ----------------------------------------------------------------------- the work

    def _spawn(self, fn: Callable[..., None], *args: Any) -> None:
        with self._idle:
            self._busy += 1
        threading.Thread(target=self._work, args=(fn, *args), daemon=True,
                         name="vdi-action").start()

    def _work(self, fn: Callable[..., None], *args: Any) -> None:
        accepted = time.monotonic()
        try:
            # The delay is read live, so a test can hold actions (a long delay) and let them
            # go (a short one) without racing the clock.
            while (left := accepted + self.delay - time.monotonic()) > 0:
                if self._stopping.wait(min(left, 0.05)):
                    break
            if not self._stopping.is_set():
                fn(*args)
            elif fn == self._run_batch:
                action, tasks, _force = args
                for t in tasks:  # a platform that stops forgets its queue: nothing was done
                    self._finish(action, t, False, t.prior, MSG_STOPPED)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every accepted action has been carried out; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _finish(self, action: str, t: _Task, ok: bool, status: int, message: str = "",
                host: str | None = None) -> None:
        with self._lock:
            state = self._state()
            if t.event in state.events:
                # EventVO.isSuccess: the schema's reading (0 success, 1 failure).
                done = {"isSuccess": 0} if ok else {"isSuccess": 1,
                                                    "errorReason": message or "failed"}
                state.events[t.event].update(done, updateTime=iso_time(now_ms()))
            if host is not None and host in state.host_by_id.values():
                state.set_vm_host(t.uuid, host)
            state.set_vm_status(t.uuid, status)
            where = state.vms[t.uuid].host if t.uuid in state.vms else t.host
            self._outcome(ActionOutcome(action, t.vm_id, t.name, where, ok, message or "ok",
                                        status))

    def _outcome(self, o: ActionOutcome) -> None:
        """Keep an outcome (under the lock) and log it for `vditui lab up`'s operator."""
        _keep(self.outcomes, o)
        log.info("platform %s %s on %s: %s (status %s)", o.action, o.vm_name or "host", o.host,
                 o.message, o.status)

    def _run_batch(self, action: str, tasks: list[_Task], force: bool) -> None:
        hv = self.hypervisors
        op = {"start": "start", "close": "destroy" if force else "shutdown",
              "reboot": "reset" if force else "reboot"}[action]
        waiting: list[_Task] = []
        for t in tasks:
            if t.fail:
                self._finish(action, t, False, t.prior, t.fail)
                continue
            if hv is None:
                status = {"start": 1, "close": 0}.get(action, t.prior)
                self._finish(action, t, True, status, host=t.host)
                continue
            try:
                now = hv.platform_op(t.host, t.uuid, op)
            except Exception as exc:  # noqa: BLE001 - any failure is the VM's outcome
                self._finish(action, t, False, t.prior, _why(exc))
                continue
            if op == "shutdown" and now == "running":
                waiting.append(t)  # the guest was asked; it may take its time, or never
                continue
            self._finish(action, t, True, VDI_STATUS_FOR.get(now, t.prior), host=t.host)
        if waiting and hv is not None:
            self._wait_shutdown(hv, waiting)

    def _wait_shutdown(self, hv: Hypervisors, waiting: list[_Task]) -> None:
        deadline = time.monotonic() + self.close_timeout
        while waiting and not self._stopping.is_set():
            for t in list(waiting):
                try:
                    host, now = hv.platform_locate(t.uuid, t.host)
                except Exception:  # noqa: BLE001 - gone from libvirt: keep waiting, then fail
                    continue
                if now != "running":
                    waiting.remove(t)
                    self._finish("close", t, True, VDI_STATUS_FOR.get(now, t.prior), host=host)
            if not waiting or time.monotonic() >= deadline:
                break
            self._stopping.wait(0.05)
        for t in waiting:
            self._finish("close", t, False, VDI_STATUS_FOR["running"],
                         f"关机超时 (the guest did not shut down within {self.close_timeout:g} s:"
                         " it ignored the ACPI request; use force)")

    def _run_sync(self, action: str, tasks: list[_Task]) -> None:
        hv = self.hypervisors
        for t in tasks:
            if t.fail:
                self._finish(action, t, False, t.prior, t.fail)
                continue
            if hv is None:
                self._finish(action, t, True, t.prior)
                continue
            try:
                host, now = hv.platform_locate(t.uuid, t.host)
            except Exception as exc:  # noqa: BLE001 - the record stays as it was
                self._finish(action, t, False, t.prior, _why(exc))
                continue
            self._finish(action, t, True, VDI_STATUS_FOR.get(now, t.prior), host=host)

    def _run_host_sync(self, name: str) -> None:
        hv = self.hypervisors
        with self._lock:
            state = self._state()
            mine = {u: _Task(u, vm.vdi_id, vm.spec.name, vm.host, vm.status)
                    for u, vm in state.vms.items() if vm.host == name}
            host = state.hosts[name]
        if hv is None:
            self._run_sync("host_sync", list(mine.values()))
            return
        try:
            there = hv.platform_host_domains(name)
        except Exception as exc:  # noqa: BLE001 - an unreachable host goes offline
            with self._lock:
                if host.status == 1:
                    host.status = 3
                self._outcome(ActionOutcome("host_sync", "", "", name, False, _why(exc),
                                            host.status))
            return
        with self._lock:
            if host.status in (2, 3):
                host.status = 1
            for u in there:
                vm = state.vms.get(u)
                if vm is not None and u not in mine:
                    mine[u] = _Task(u, vm.vdi_id, vm.spec.name, vm.host, vm.status)
            self._outcome(ActionOutcome("host_sync", "", "", name, True, "ok", host.status))
        for t in mine.values():
            if t.uuid in there:
                self._finish("host_sync", t, True, VDI_STATUS_FOR.get(there[t.uuid], t.prior),
                             host=name)
            else:
                self._run_sync("host_sync", [t])


def _batch_args(doc: dict[str, Any]) -> tuple[list[str], str | None, bool]:
    """DomainBatchTaskDto's fields, checked as the spec types them (and idList required)."""
    if unknown := set(doc) - BATCH_FIELDS:
        raise ApiError(E_BAD_REQUEST, f"参数错误 (unknown field(s) {sorted(unknown)}; "
                                      f"DomainBatchTaskDto has {sorted(BATCH_FIELDS)})")
    ids, host_id, force = doc.get("idList"), doc.get("hostId"), doc.get("isForce", 0)
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ApiError(E_BAD_REQUEST, "参数错误：idList必填 (idList must be a list of ids)")
    if "hostId" in doc and not isinstance(host_id, str):
        raise ApiError(E_BAD_REQUEST, "参数错误 (hostId must be a string)")
    if type(force) is not int or force not in (0, 1):  # not True, not 1.0: JSON integers only
        raise ApiError(E_BAD_REQUEST, f"参数错误 (isForce must be 0 or 1, got {force!r})")
    return ids, host_id or None, force == 1


def event_vo(event: str, vm: VmState, host: str, state: VdiState) -> dict[str, Any]:
    """A task as the platform records it when it starts (EventVO; no verdict yet)."""
    return {"id": event, "domainId": vm.vdi_id, "domainName": vm.spec.name,
            "hostId": state.hosts[host].spec.id, "eventType": 0, "isAsc": 1,
            "createTime": iso_time(now_ms()), "description": vm.spec.name}


def _names(vm: VmState) -> set[str]:
    return {vm.spec.uuid, vm.spec.name, vm.vdi_id}


def _peek(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return {"<unparsed>": body[:200].decode(errors="replace")}
    return doc if isinstance(doc, dict) else {"<not an object>": doc}


def _keep(items: list[Any], item: Any) -> None:
    items.append(item)
    if len(items) > KEEP:
        del items[: len(items) - KEEP]


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, HypervisorError) else f"{type(exc).__name__}: {exc}"
