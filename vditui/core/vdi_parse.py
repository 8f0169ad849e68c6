"""Parsing the platform's answers: the page wrapper and HostVO, DomainVO, desktop pool, user,
alarm and event items, with every shape problem named by its JSON path
(``data.list[3].memory: expected a number``).

Personal data stops here: a user record (UserListVo) carries a national ID, a phone number and a
mail address; :func:`parse_user` keeps only the id, the login and the display name, so nothing
downstream (screens, reports, history, logs, metrics) can ever hold the others.

Pure functions over decoded JSON; :mod:`vditui.core.vdi` turns a :class:`ShapeProblem` into a
``VdiShapeError`` naming the URL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from vditui.core.models import DesktopPool, PlatformAlarm, VdiHost, VdiUser, VdiVm

#: Where the platform runs; its date-time strings without an offset are in this zone.
PLATFORM_TZ = timezone(timedelta(hours=8))


class ShapeProblem(Exception):
    """A shape problem found while parsing; becomes a VdiShapeError where the URL is known."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def parse_page(doc: dict[str, Any]) -> tuple[list[Any], dict[str, int | None]]:
    """A PageResult's list and header (total, pageSize, pages: int or None)."""
    data = doc.get("data")
    if not isinstance(data, dict):
        raise ShapeProblem("data", f"expected an object, got {show_value(data)}"
                           if "data" in doc else "missing")
    head = {k: as_int(data.get(k), f"data.{k}") for k in ("total", "pageSize", "pages")}
    items = data.get("list")
    if items is None and head["total"] == 0:
        items = []
    if not isinstance(items, list):
        raise ShapeProblem("data.list", f"expected a list, got {show_value(items)}"
                           if "list" in data else "missing")
    return items, head


def parse_host(raw: Any, path: str) -> VdiHost:
    f = Fields(raw, path)
    return VdiHost(id=f.id("id"), name=f.name("name"), ip=f.text("ip"), status=f.int("status"),
                   pool_id=f.text("poolId"), pool_name=f.text("poolName"),
                   cpu_model=f.text("cpu"), cpus=f.int("cpuSize"), memory_gb=f.float("memory"),
                   running_count=f.int("runningDomainCount"),
                   physical_memory_gb=f.float("physicalMemory"),
                   domain_limit=f.int("domainLimit"))


def parse_vm(raw: Any, path: str) -> VdiVm:
    f = Fields(raw, path)
    return VdiVm(id=f.id("id"), name=f.name("name"), status=f.int("status"), vcpu=f.int("cpu"),
                 memory_mb=f.int("memory"), host_id=f.text("hostId"),
                 host_name=f.text("hostName"), desktop_pool_id=f.text("desktopPoolId"),
                 ip=f.text("ip"), template=f.int("isModel") == 1,
                 recycled=f.int("isRecycle") == 1, freeze=f.int("freeze") or 0,
                 mother_id=f.text("motherId"), mother_name=f.text("motherName"),
                 user_id=f.text("userId"), connected=_flag(f.int("isConnected")),
                 connect_time=f.timestamp("connectTime"),
                 disconnect_time=f.timestamp("disconnectTime"))


def parse_template(raw: Any, path: str) -> VdiVm:
    """A row of GET /ocloud/v1/model: a template, whatever its isModel says."""
    return replace(parse_vm(raw, path), template=True)


def parse_recycled(raw: Any, path: str) -> VdiVm:
    """A row of GET /ocloud/v1/recycle (RecycleDomainVO): a VM in the recycle bin."""
    return replace(parse_vm(raw, path), recycled=True)


def merge_vms(listed: list[VdiVm], templates: list[VdiVm], recycled: list[VdiVm]) -> list[VdiVm]:
    """The domain list with the templates and the recycle bin folded in, by platform id.

    A platform may list templates and recycled VMs in GET /ocloud/v1/domain or omit them (the
    spec does not say); either way each VM appears once, marked by every list that holds it.
    """
    out = {vm.id: vm for vm in listed}
    for vm in templates:
        out[vm.id] = replace(out.get(vm.id, vm), template=True)
    for vm in recycled:
        out[vm.id] = replace(out.get(vm.id, vm), recycled=True)
    return list(out.values())


def attach_users(vms: list[VdiVm], users: list[VdiUser]) -> list[VdiVm]:
    """Each VM with its bound user's login and display name (by ``userId``)."""
    by_id = {u.id: u for u in users}
    return [replace(vm, user_login=u.login, user_name=u.display_name)
            if vm.user_id and (u := by_id.get(vm.user_id)) is not None else vm for vm in vms]


def parse_pool(raw: Any, path: str) -> DesktopPool:
    f = Fields(raw, path)
    return DesktopPool(id=f.id("id"), name=f.name("name"), amount=f.int("amount"),
                       used_amount=f.int("usedAmount"), status=f.int("status"),
                       cur_model_id=f.text("curModelId"))


def parse_user(raw: Any, path: str) -> VdiUser:
    """A UserListVo reduced to id, login and display name (see the module docstring)."""
    f = Fields(raw, path)
    login = f.text("sAMAccountName") or f.text("cn") or f.text("distinguishedName")
    return VdiUser(id=f.id("id"), login=login, display_name=f.text("displayName"))


def parse_alarm(raw: Any, path: str) -> PlatformAlarm:
    """An AlarmVO; ``alarmTime`` is a date-time string (RFC 3339 or the platform's
    ``yyyy-MM-dd HH:mm:ss``)."""
    f = Fields(raw, path)
    return PlatformAlarm(id=f.id("id"), level=f.text("level"), module=f.text("module"),
                         content=one_line(f.text("content"), 300), host_ip=f.text("hostIp"),
                         at=f.date_time("alarmTime"))


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A platform task (EventVO): ``failed`` with the platform's ``reason``, or not."""

    id: str
    failed: bool
    reason: str
    vm_id: str = ""
    vm_name: str = ""
    done: bool = False  # the platform has given its verdict (isSuccess or errorReason)


def parse_event(raw: Any, path: str) -> TaskEvent:
    """An EventVO. The spec contradicts itself on ``isSuccess`` (the schema: 0 success,
    1 failure; the event list's filter: 0 failure, 1 success), so a task counts as failed only
    when the platform gives an ``errorReason``: its own words are the verdict."""
    f = Fields(raw, path)
    reason = one_line(f.text("errorReason"), 300)
    return TaskEvent(id=f.id("id"), failed=bool(reason), reason=reason,
                     vm_id=f.text("domainId"), vm_name=f.text("domainName"),
                     done=bool(reason) or f.int("isSuccess") is not None)


def _flag(value: int | None) -> bool | None:
    return None if value is None else value == 1


class Fields:
    """Typed reads from one list item; every problem is a ShapeProblem naming ``path.field``."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, dict):
            raise ShapeProblem(path, f"expected an object, got {show_value(raw)}")
        self.raw, self.path = raw, path

    def id(self, key: str) -> str:
        if self.raw.get(key) in (None, ""):
            raise ShapeProblem(f"{self.path}.{key}", "missing")
        return self.text(key)

    def name(self, key: str) -> str:
        if self.raw.get(key) is None:
            raise ShapeProblem(f"{self.path}.{key}", "missing")
        return self.text(key)

    def text(self, key: str) -> str:
        """A string; ints (and integral floats) are converted, as ids sometimes come as ints."""
        value = self.raw.get(key)
        if value is None or isinstance(value, str):
            return value or ""
        if (isinstance(value, int) and not isinstance(value, bool)) \
                or (isinstance(value, float) and value.is_integer()):
            try:
                return str(int(value))
            except ValueError:  # more digits than Python will print
                pass
        raise ShapeProblem(f"{self.path}.{key}", f"expected a string, got {show_value(value)}")

    def int(self, key: str) -> int | None:
        return as_int(self.raw.get(key), f"{self.path}.{key}")

    def timestamp(self, key: str) -> float | None:
        """A java.sql.Timestamp object (its ``time``, epoch ms) as epoch seconds."""
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ShapeProblem(f"{self.path}.{key}", f"expected an object, got "
                                                     f"{show_value(value)}")
        ms = as_int(value.get("time"), f"{self.path}.{key}.time")
        return None if ms is None else ms / 1000

    def date_time(self, key: str) -> float | None:
        """A date-time string as epoch seconds (no zone: the platform's, UTC+8)."""
        text = self.text(key)
        if not text:
            return None
        try:
            stamp = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            raise ShapeProblem(f"{self.path}.{key}",
                               f"expected a date-time, got {show_value(text)}") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=PLATFORM_TZ)
        return stamp.timestamp()

    def float(self, key: str) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        try:
            if not isinstance(value, bool) and isinstance(value, int | float | str):
                number = float(value)
                if math.isfinite(number):
                    return number
        except (ValueError, OverflowError):
            pass
        raise ShapeProblem(f"{self.path}.{key}", f"expected a number, got {show_value(value)}")


def as_int(value: Any, path: str) -> int | None:
    """An integer from an int, an integral float or a numeric string; None if absent or null."""
    if value is None:
        return None
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                value = float(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    except (ValueError, OverflowError):
        pass
    raise ShapeProblem(path, f"expected integer, got {show_value(value)}")


def show_value(value: Any) -> str:
    """A short, safe rendering of a bad value for a message."""
    if value is None or isinstance(value, dict | list):
        return {type(None): "null", dict: "an object", list: "a list"}[type(value)]
    try:
        return one_line(repr(value), 40)
    except ValueError:  # an int too long to print
        return "a huge integer"


def one_line(text: str, limit: int) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in " ".join(text.split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"
