"""Parsing the platform's answers: the page wrapper and HostVO, DomainVO and desktop pool items,
with every shape problem named by its JSON path (``data.list[3].memory: expected a number``).

Pure functions over decoded JSON; :mod:`vditui.core.vdi` turns a :class:`ShapeProblem` into a
``VdiShapeError`` naming the URL.
"""

from __future__ import annotations

import math
from typing import Any

from vditui.core.models import DesktopPool, VdiHost, VdiVm


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
                   running_count=f.int("runningDomainCount"))


def parse_vm(raw: Any, path: str) -> VdiVm:
    f = Fields(raw, path)
    return VdiVm(id=f.id("id"), name=f.name("name"), status=f.int("status"), vcpu=f.int("cpu"),
                 memory_mb=f.int("memory"), host_id=f.text("hostId"),
                 host_name=f.text("hostName"), desktop_pool_id=f.text("desktopPoolId"),
                 ip=f.text("ip"))


def parse_pool(raw: Any, path: str) -> DesktopPool:
    f = Fields(raw, path)
    return DesktopPool(id=f.id("id"), name=f.name("name"), amount=f.int("amount"))


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
