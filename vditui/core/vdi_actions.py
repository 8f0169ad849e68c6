"""The platform's action endpoints: one VM re-read, status syncs, and the batch start / close /
reboot (``DomainBatchTaskDto`` answered by ``DomainBatchTaskVO``).

:class:`VdiActionClient` is the read client (:class:`~vditui.core.vdi.VdiClient`) plus these
calls, on the same login, error classes and scrubbing. An action request is sent **once**: a
transport failure, a timeout or an error answer is raised, never retried, since the platform
may have acted already. The one exception is an answer saying the token expired (HTTP 401, or
a non-zero status whose message names the token): the platform refused before acting, so the
client logs in again and sends it once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vditui.core.actions import Action, ActionPlan
from vditui.core.models import VdiVm
from vditui.core.vdi import DOMAIN_PATH, HOST_PATH, VdiAuthError, VdiClient, VdiStatusError
from vditui.core.vdi_parse import Fields, ShapeProblem, parse_vm, show_value

BATCH_PATHS = {Action.START: f"{DOMAIN_PATH}/start", Action.SHUTDOWN: f"{DOMAIN_PATH}/close",
               Action.REBOOT: f"{DOMAIN_PATH}/reboot"}
"""The batch endpoint of each batch action."""
SYNC_MANUAL = 1
"""``DomainSyncStatusDto.syncType``: 1 manual (asked by an operator), 0 automatic."""
# Stricter than the read path's expiry words: re-sending an action is only safe when the answer
# plainly says the token was refused, not on any message that mentions logging in.
_TOKEN_WORDS = ("token",)


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
        doc = await self._post_once(request.path, request.body)
        if not request.path.endswith(tuple(BATCH_PATHS.values())):
            return BatchAnswer((), (), doc.get("msg", ""))
        try:
            return parse_batch(doc)
        except ShapeProblem as bad:
            raise self._shape(f"POST {request.path}", bad) from None

    async def _post_once(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        where = f"POST {path}"
        for attempt in (1, 2):
            if self._token is None:
                await self._relogin(self._login_seq)
            token, seq = self._token, self._login_seq
            # A transport failure or a timeout propagates: the platform may have acted.
            resp = await self._send("POST", path, None, body, token)
            if resp.status_code == 401:
                status, msg = 401, f"HTTP 401 {resp.reason_phrase}".strip()
            else:
                doc = await self._decode(resp, where)
                if doc["status"] == 0:
                    return doc
                status, msg = doc["status"], doc["msg"]
                if not any(w in msg.casefold() for w in _TOKEN_WORDS):
                    raise self._fail(VdiStatusError, where, f"platform refused: error {status}: "
                                     f"{msg or '(no message)'}", status=status, msg=msg)
            if attempt == 2:
                raise self._fail(VdiAuthError, where, f"token rejected even after logging in "
                                 f"again: {msg} (status {status})", status=status, msg=msg)
            # Refused before acting (the token): safe to send once more after logging in.
            await self._relogin(seq)
        raise AssertionError("unreachable")  # pragma: no cover
