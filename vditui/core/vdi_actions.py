"""The platform's action endpoints: one VM re-read, status syncs, and the batch start / close /
reboot (``DomainBatchTaskDto`` answered by ``DomainBatchTaskVO``).

:class:`VdiActionClient` is the read client (:class:`~vditui.core.vdi.VdiClient`) plus these
calls, on the same login, error classes and scrubbing. An action request is sent **once**: a
transport failure, a timeout or an error answer is raised, never retried, since the platform
may have acted already: an HTTP-level 401 too (a gateway or proxy in front of the platform may
answer so after the platform acted), raised as :class:`~vditui.core.vdi.VdiAmbiguousAnswer`.
The one exception is the platform's own refusal of the token in the answer's body (a non-zero
status whose message says the token is expired or invalid,
:func:`~vditui.core.vdi_errors.is_token_refusal`): the platform checks the token before it
acts, so the client logs in again and sends it once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vditui.core.actions import Action, ActionPlan
from vditui.core.models import VdiVm
from vditui.core.vdi import DOMAIN_PATH, HOST_PATH, VdiClient
from vditui.core.vdi_parse import Fields, ShapeProblem, parse_vm, show_value

BATCH_PATHS = {Action.START: f"{DOMAIN_PATH}/start", Action.SHUTDOWN: f"{DOMAIN_PATH}/close",
               Action.REBOOT: f"{DOMAIN_PATH}/reboot"}
"""The batch endpoint of each batch action."""
SYNC_MANUAL = 1
"""``DomainSyncStatusDto.syncType``: 1 manual (asked by an operator), 0 automatic."""


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request an action makes, exactly as sent (no token: it goes in a header)."""

    method: str
    path: str
    body: dict[str, Any] | None
    vm_ids: tuple[str, ...]
    """The platform ids of the VMs it is about (a host sync: every VM of the plan there)."""

    def describe(self) -> str:
        """``POST /ocloud/v1/domain/close {"idList": [...], "isForce": 1}``."""
        import json

        body = "" if self.body is None else " " + json.dumps(self.body, ensure_ascii=False)
        return f"{self.method} {self.path}{body}"


@dataclass(frozen=True, slots=True)
class BatchError:
    """An ``errorList`` entry (ErrorInfo): the platform did not act on this VM."""

    vm_id: str
    vm_name: str
    message: str


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """A ``DomainBatchTaskVO``, and the wrapper's message."""

    errors: tuple[BatchError, ...]
    event_ids: tuple[str, ...]
    msg: str = ""


def batch_body(ids: Sequence[str], force: bool, host_id: str | None = None) -> dict[str, Any]:
    """A ``DomainBatchTaskDto``: ``isForce`` only when forcing (the spec's default is 0)."""
    body: dict[str, Any] = {"idList": list(ids)}
    if host_id:
        body["hostId"] = host_id
    if force:
        body["isForce"] = 1
    return body


def requests_for(plan: ActionPlan) -> list[Request]:
    """Every request ``plan`` makes, in order: one batch for start / close / reboot (never one
    per VM), one sync per VM, or one sync per platform host of the VMs for SYNC_HOST."""
    sent = [t for t in plan.send if t.vm_id]
    if not sent:
        return []
    if plan.action.batch:
        ids = tuple(t.vm_id for t in sent if t.vm_id)
        return [Request("POST", BATCH_PATHS[plan.action], batch_body(ids, plan.force), ids)]
    if plan.action is Action.SYNC:
        return [Request("POST", f"{DOMAIN_PATH}/{t.vm_id}/sync-status",
                        {"syncType": SYNC_MANUAL}, (t.vm_id,)) for t in sent if t.vm_id]
    hosts: dict[str, list[str]] = {}
    for t in sent:
        if t.vm_id:
            hosts.setdefault(t.host_id, []).append(t.vm_id)
    return [Request("POST", f"{HOST_PATH}/{hid}/sync-status", None, tuple(ids))
            for hid, ids in hosts.items()]


def parse_batch(doc: dict[str, Any]) -> BatchAnswer:
    """The ``data`` of a ``ResponseVO«DomainBatchTaskVO»``; a ShapeProblem names the field."""
    data = doc.get("data")
    if data is None:
        return BatchAnswer((), (), doc.get("msg", ""))
    if not isinstance(data, dict):
        raise ShapeProblem("data", f"expected an object, got {show_value(data)}")
    errors_raw = data.get("errorList")
    events_raw = data.get("eventIdList")
    errors_raw = [] if errors_raw is None else errors_raw
    events_raw = [] if events_raw is None else events_raw
    if not isinstance(errors_raw, list):
        raise ShapeProblem("data.errorList", f"expected a list, got {show_value(errors_raw)}")
    if not isinstance(events_raw, list):
        raise ShapeProblem("data.eventIdList", f"expected a list, got {show_value(events_raw)}")
    errors = []
    for i, raw in enumerate(errors_raw):
        f = Fields(raw, f"data.errorList[{i}]")
        errors.append(BatchError(f.text("domainId"), f.text("domainName"),
                                 f.text("errorMsg") or "(no message)"))
    events = []
    for i, raw in enumerate(events_raw):
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise ShapeProblem(f"data.eventIdList[{i}]",
                               f"expected a string, got {show_value(raw)}")
        events.append(str(raw))
    return BatchAnswer(tuple(errors), tuple(events), doc.get("msg", ""))


class VdiActionClient(VdiClient):
    """:class:`VdiClient` plus the calls that act (see the module's docstring)."""

    async def vm(self, vm_id: str) -> VdiVm:
        """``GET /domain/{id}``: one VM as the platform has it now (DomainVO)."""
        path = f"{DOMAIN_PATH}/{vm_id}"
        doc = await self._get(path, {})
        try:
            return parse_vm(doc.get("data"), "data")
        except ShapeProblem as bad:
            raise self._shape(f"GET {path}", bad) from None

    async def send(self, request: Request) -> BatchAnswer:
        """Send one of :func:`requests_for`'s requests, once (see the module's docstring).
        A sync's answer has no ``data``: its BatchAnswer is empty."""
        # A transport failure, a timeout or an HTTP 401 propagates: the platform may have
        # acted. Only its own refusal of the token (it did nothing) sends it once more.
        doc = await self._call("POST", request.path, None, request.body, acts=True)
        if not request.path.endswith(tuple(BATCH_PATHS.values())):
            return BatchAnswer((), (), doc.get("msg", ""))
        try:
            return parse_batch(doc)
        except ShapeProblem as bad:
            raise self._shape(f"POST {request.path}", bad) from None
