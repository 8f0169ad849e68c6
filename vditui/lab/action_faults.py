"""Faults of the simulated platform's action endpoints, for testing every outcome a client
must handle (:meth:`vditui.lab.vdi_server.VdiServer.set_action_fault`):

* ``error_list`` (``vms=`` uuids, names or platform ids; ``msg=``): those VMs get an errorList
  entry and are not acted on (on a VM's sync-status: a non-zero status, :data:`E_ACTION`);
* ``status`` (``code=``, ``msg=``): a non-zero status answer, nothing done;
* ``hang`` (``seconds=``, ``act=``): never answered until cleared or ``seconds`` pass; then
  the connection is dropped with nothing done, or with ``act=True`` the request is processed
  (the platform acts and answers, perhaps to a client that has given up);
* ``drop_after_act``: the platform accepts and acts, then drops the connection unanswered;
* ``task_fail`` (``vms=``, ``msg=``): a batch accepts those VMs (their event ids are in
  ``eventIdList``) but the task fails, untouched, with ``msg`` as its EventVO ``errorReason``;
* ``unauthorized_after_act``: the platform acts, then the answer is an HTTP 401 (as a gateway
  or proxy in front of a platform may give; a client must not take it for a refused token).

Every kind takes ``actions=`` (which of :data:`ACTIONS` it hits, all by default) and
``times=N`` (it clears itself after N requests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from vditui.lab.vdi_data import E_INTERNAL, ApiError

ACTIONS = ("start", "close", "reboot", "sync", "host_sync")
ACTION_FAULTS = ("error_list", "status", "hang", "drop_after_act", "task_fail",
                 "unauthorized_after_act")
E_ACTION = 2001  # a platform-side refusal of one VM (mimics a real platform; the spec has none)
MSG_REFUSED = "虚机状态异常，操作失败 (the platform refused to act on this VM)"
MSG_INTERNAL = "系统内部错误 (internal error)"
MSG_TASK_FAILED = "存储空间不足，启动失败 (not enough storage space on the host)"
MSG_GATEWAY_401 = "Unauthorized (gateway)"


class DropConnection(Exception):
    """Close the client's connection without an answer."""


@dataclass
class ActionFault:
    """One fault as set; ``released`` is set when it is cleared or replaced."""

    kind: str
    actions: frozenset[str]
    vms: frozenset[str]
    code: int
    msg: str
    seconds: float | None
    act: bool
    times: int | None
    released: threading.Event = field(default_factory=threading.Event)

    def refuses(self, names: set[str]) -> bool:
        """Whether an ``error_list`` fault names a VM known by any of ``names``."""
        return self.kind == "error_list" and bool(self.vms & names)

    def fails(self, names: set[str]) -> bool:
        """Whether a ``task_fail`` fault makes the task of a VM known by ``names`` fail."""
        return self.kind == "task_fail" and bool(self.vms & names)


class ActionFaults:
    """The fault in force, if any; ``lock`` is the server's."""

    def __init__(self, lock: threading.Lock, stopping: threading.Event) -> None:
        self._lock, self._stopping = lock, stopping
        self.current: ActionFault | None = None

    def set(self, kind: str | None, *, vms: Iterable[str] = (),
            actions: Iterable[str] = ACTIONS, code: int = E_INTERNAL, msg: str | None = None,
            seconds: float | None = None, act: bool = False, times: int | None = None) -> None:
        """Set the fault (see the module doc); None clears it, releasing a hang."""
        acts, names = frozenset(actions), frozenset(vms)
        if kind is not None and kind not in ACTION_FAULTS:
            raise ValueError(f"unknown action fault {kind!r}; use one of {ACTION_FAULTS}")
        if unknown := acts - set(ACTIONS):
            raise ValueError(f"unknown actions {sorted(unknown)}; use some of {ACTIONS}")
        if kind in ("error_list", "task_fail") and not names:
            raise ValueError(f"action fault {kind!r} needs vms=[uuid or name, ...]")
        if not isinstance(code, int) or isinstance(code, bool):
            raise ValueError("code= takes an int")
        if seconds is not None and not isinstance(seconds, int | float):
            raise ValueError("seconds= takes a number")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times= takes a positive int")
        default = {"error_list": MSG_REFUSED, "task_fail": MSG_TASK_FAILED}.get(kind or "",
                                                                                MSG_INTERNAL)
        new = None if kind is None else ActionFault(kind, acts, names, code, msg or default,
                                                    seconds, act, times)
        with self._lock:
            old, self.current = self.current, new
        if old is not None:
            old.released.set()

    def take(self, action: str) -> ActionFault | None:
        """The fault that hits this request of ``action``, counted against ``times``."""
        with self._lock:
            f = self.current
            if f is None or action not in f.actions:
                return None
            if f.times is not None:
                f.times -= 1
                if f.times <= 0:
                    self.current = None
            return f

    def before_acting(self, f: ActionFault | None) -> None:
        """Strike with a fault that hits before anything is done: raise the non-zero status,
        or hold the request (then drop it, or return to let it be processed)."""
        if f is None:
            return
        if f.kind == "status":
            raise ApiError(f.code, f.msg)
        if f.kind == "hang":
            deadline = None if f.seconds is None else time.monotonic() + f.seconds
            while not (f.released.is_set() or self._stopping.is_set()
                       or (deadline is not None and time.monotonic() >= deadline)):
                self._stopping.wait(0.05)
            if not f.act or self._stopping.is_set():
                raise DropConnection

    @staticmethod
    def after_acting(f: ActionFault | None) -> None:
        """Strike with a fault that hits once the platform has acted."""
        if f is not None and f.kind == "drop_after_act":
            raise DropConnection
        if f is not None and f.kind == "unauthorized_after_act":
            raise ApiError(401, MSG_GATEWAY_401, http=401)
