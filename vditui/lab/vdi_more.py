"""The simulated platform's read-only endpoints beyond hosts and VMs (issue 20): templates
(``GET /ocloud/v1/model``), the recycle bin (``/recycle``), online users
(``/domain/active-user``, ``/domain/user-stat``), users (``/user``), live alarms (``/alarm``) and
the tasks the action endpoints started (``/event/{id}``), answered from
:class:`~vditui.lab.vdi_data.VdiState` under the server's lock.

The lab is the world, not the engine's mirror: nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from vditui.lab.vdi_data import E_NOT_FOUND, ApiError, Request, VdiState, ok_answer, page


class MoreEndpoints:
    """The handlers; ``lock`` is the server's, ``state`` its current records, ``page_args``
    the page number and size a request asks for (clamped as the server clamps them)."""

    def __init__(self, lock: threading.Lock, state: Callable[[], VdiState],
                 page_args: Callable[[Request], tuple[int, int]]) -> None:
        self.lock, self.state, self.page_args = lock, state, page_args

    def vm_page(self, r: Request, kinds: set[str]) -> dict[str, Any]:
        """GET /ocloud/v1/model (templates) and /ocloud/v1/recycle (the recycle bin)."""
        with self.lock:
            page_num, size = self.page_args(r)
            vms = self.state().find_vms(None, None, r.query.get("keyword"),
                                        r.query.get("poolId"), kinds=kinds)
            head, chunk = page(vms, page_num, size)
            rows = [self.state().domain_vo(vm) for vm in chunk]
        return ok_answer({**head, "list": rows})

    def active_users(self, r: Request) -> dict[str, Any]:
        """GET /ocloud/v1/domain/active-user: the VMs whose user is connected now."""
        with self.lock:
            page_num, size = self.page_args(r)
            vms = self.state().find_vms(None, None, None, None, isConnected="1")
            user = r.query.get("userId")
            rows = [self.state().domain_vo(vm) for vm in vms]
        rows = [d for d in rows if not user or d.get("userId") == user]
        head, chunk = page(rows, page_num, size)
        return ok_answer({**head, "list": chunk})

    def user_stat(self, r: Request) -> dict[str, Any]:
        """GET /ocloud/v1/domain/user-stat (DomainUserStatVO)."""
        with self.lock:
            return ok_answer(self.state().user_stat())

    def users(self, r: Request) -> dict[str, Any]:
        """GET /ocloud/v1/user: UserListVo, by login; ``keyword`` matches login or name."""
        with self.lock:
            page_num, size = self.page_args(r)
            users = self.state().user_vos()
        keyword = r.query.get("keyword")
        if keyword:
            users = [u for u in users if keyword.casefold() in u["displayName"].casefold()
                     or keyword.casefold() in u["sAMAccountName"].casefold()]
        head, chunk = page(users, page_num, size)
        return ok_answer({**head, "list": chunk})

    def alarms(self, r: Request) -> dict[str, Any]:
        """GET /ocloud/v1/alarm: the live alarms, newest first (AlarmVO)."""
        with self.lock:
            page_num, size = self.page_args(r)
            head, chunk = page(self.state().alarm_vos(), page_num, size)
        return ok_answer({**head, "list": chunk})

    def event(self, r: Request) -> dict[str, Any]:
        """GET /ocloud/v1/event/{id}: a task the action endpoints started (EventVO)."""
        with self.lock:
            found = self.state().events.get(r.params["id"])
            if found is None:
                raise ApiError(E_NOT_FOUND, f"事件不存在 (no such event: {r.params['id']})")
            return ok_answer(dict(found))
