"""The simulated platform's records (HostVO, HostDetailVO, DomainVO, DesktopPoolVO) and the
small request vocabulary its server speaks (:class:`Request`, :class:`ApiError`, :func:`page`).

:class:`VdiState` is the mutable world the simulated OCloudView server answers from. It is not
thread-safe on its own: :class:`vditui.lab.vdi_server.VdiServer` holds one lock around every use.
Field names and types follow the vendor's OpenAPI spec (``shared/vendor/ocloudview-9.0-openapi
.json``); nothing here emits a field that the spec does not declare, and nothing emits ``null``.

The lab is the world, not the engine's mirror: nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from vditui.lab.scenario import HostSpec, Scenario, VmSpec, stable_uuid

#: The platform runs in China; its java.sql.Timestamp fields carry that zone's offset.
PLATFORM_TZ = timezone(timedelta(hours=8))
#: Deterministic record times, so two runs of a scenario serve the same bytes.
BASE_MS = int(datetime(2024, 3, 1, 8, 0, tzinfo=PLATFORM_TZ).timestamp() * 1000)


def timestamp(ms: int) -> dict[str, int]:
    """A java.sql.Timestamp as Jackson serialises it (schema ``Timestamp``): legacy
    java.util.Date fields, i.e. year since 1900, month from 0, ``day`` the weekday (0 = Sunday)."""
    dt = datetime.fromtimestamp(ms / 1000, PLATFORM_TZ)
    return {"time": ms, "year": dt.year - 1900, "month": dt.month - 1, "date": dt.day,
            "day": (dt.weekday() + 1) % 7, "hours": dt.hour, "minutes": dt.minute,
            "seconds": dt.second, "nanos": (ms % 1000) * 1_000_000,
            "timezoneOffset": -int(PLATFORM_TZ.utcoffset(None).total_seconds() // 60)}


def iso_time(ms: int) -> str:
    """HostVO.createTime is a plain ``date-time`` string in the spec, unlike DomainVO's."""
    return datetime.fromtimestamp(ms / 1000, PLATFORM_TZ).isoformat(timespec="seconds")


def now_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return int(datetime.now(UTC).timestamp() * 1000)


def guest_ip(index: int) -> str:
    """A made-up, deterministic guest address for the VM at ``index`` in the scenario."""
    return f"10.{16 + index // 62_500 % 200}.{index // 250 % 250}.{index % 250 + 2}"


def page(items: list[Any], page_num: int, page_size: int, *, short: bool = False,
         extra_total: int = 0) -> tuple[dict[str, Any], list[Any]]:
    """Slice ``items`` like the platform's PageHelper: returns the PageResult header (without
    ``list``) and the slice. ``short`` drops the page's last item and ``extra_total`` inflates
    the reported total; both are fault modes that lie to the client on purpose."""
    total = len(items) + extra_total
    start = (page_num - 1) * page_size
    chunk = items[start:start + page_size]
    if short and chunk:
        chunk = chunk[:-1]
    head = {"total": total, "pages": math.ceil(total / page_size), "pageNum": page_num,
            "pageSize": page_size}
    return head, chunk


@dataclass
class HostState:
    spec: HostSpec
    status: int
    ip: str
    pool_name: str


@dataclass
class VmState:
    spec: VmSpec
    index: int
    vdi_id: str
    host: str
    status: int
    vcpu: int
    memory_mb: int
    desk_pool_id: str
    updated_ms: int
    session_ms: int = 0  # when the bound user's session began (or ended); 0: none
    session: str = ""  # "", "connected" or "disconnected" (scenario's, then set_session's)


class VdiState:
    """What the platform believes: hosts in the VDI and VMs with a VDI side, keyed for lookups
    by scenario name / UUID (chaos) and by platform id (the API)."""

    def __init__(self, scenario: Scenario, host_ips: dict[str, str]) -> None:
        pools = {p.id: p.name for p in scenario.pools}
        self.desk_pools = {p.id: stable_uuid(scenario.name, "desk-pool", p.id)
                           for p in scenario.pools}
        self.pool_names = pools
        missing = [h.name for h in scenario.hosts if h.in_vdi and h.name not in host_ips]
        if missing:
            raise ValueError(f"host_ips has no address for VDI host(s): {', '.join(missing)}")
        self.hosts: dict[str, HostState] = {
            h.name: HostState(h, h.vdi_status, host_ips.get(h.name, ""), pools.get(h.pool, ""))
            for h in scenario.hosts}
        self.host_by_id = {h.id: h.name for h in scenario.hosts if h.in_vdi}
        self.vms: dict[str, VmState] = {}
        self.vm_by_id: dict[str, str] = {}
        # Chaos may name any scenario VM; those without a VDI side are the platform's blind spot.
        self.invisible = {vm.uuid for vm in scenario.vms if vm.vdi is None}
        for i, vm in enumerate(scenario.vms):
            if vm.vdi is None:
                continue
            if vm.vdi.id in self.vm_by_id:
                raise ValueError(f"VMs {self.vms[self.vm_by_id[vm.vdi.id]].spec.name!r} and "
                                 f"{vm.name!r} share the platform id {vm.vdi.id!r}")
            pool = self.hosts[vm.vdi.host].spec.pool
            self.vms[vm.uuid] = VmState(vm, i, vm.vdi.id, vm.vdi.host, vm.vdi.status,
                                        vm.vdi.vcpu, vm.vdi.memory_mb, self.desk_pools[pool],
                                        BASE_MS + i * 60_000 + 3_600_000)
            self.vm_by_id[vm.vdi.id] = vm.uuid
        self.vm_id_by_name = {v.spec.name: v.vdi_id for v in self.vms.values()}
        started = now_ms()
        for state in self.vms.values():
            side = state.spec.vdi
            if side is not None and side.session:
                state.session = side.session
                state.session_ms = started - side.session_minutes * 60_000
        self.users = {u.login: (stable_uuid(scenario.name, "user", u.login), u)
                      for u in scenario.users}
        self.alarms = scenario.alarms
        self.list_omits = scenario.vdi.list_omits
        self.switching = {p.id for p in scenario.pools if p.switching}
        #: Platform tasks by event id (EventVO), made by the action endpoints.
        self.events: dict[str, dict[str, Any]] = {}
        # Names never change, so the stable order (name, then id) is computed once.
        self.host_order = sorted((h for h in self.hosts.values() if h.spec.in_vdi),
                                 key=lambda h: (h.spec.name, h.spec.id))
        self.vm_order = sorted(self.vms.values(), key=lambda v: (v.spec.name, v.vdi_id))

    # ----------------------------------------------------------------------- changes

    def set_vm_status(self, vm_uuid: str, status: int) -> None:
        if vm_uuid not in self.invisible:
            vm = self.vms[vm_uuid]
            vm.status, vm.updated_ms = status, now_ms()

    def set_vm_host(self, vm_uuid: str, host_name: str) -> None:
        if host_name not in self.hosts:
            raise KeyError(host_name)
        if vm_uuid not in self.invisible:
            vm = self.vms[vm_uuid]
            vm.host, vm.updated_ms = host_name, now_ms()

    def set_session(self, vm_uuid: str, connected: bool) -> None:
        """The VM's bound user connects (or disconnects) now."""
        vm = self.vms[vm_uuid]
        if vm.spec.vdi is None or not vm.spec.vdi.user:
            raise ValueError(f"{vm.spec.name}: no user is bound to it")
        vm.session, vm.session_ms = ("connected" if connected else "disconnected"), now_ms()
        vm.updated_ms = vm.session_ms

    def set_host_status(self, host_name: str, status: int) -> None:
        self.hosts[host_name].status = status

    # ----------------------------------------------------------------------- records

    def running_counts(self) -> dict[str, int]:
        """Per host name, the VMs the platform records as running there (runningDomainCount)."""
        counts = {name: h.spec.running_skew for name, h in self.hosts.items()}
        for vm in self.vms.values():
            if vm.status == 1:
                counts[vm.host] += 1
        return counts

    def _host_common(self, h: HostState) -> dict[str, Any]:
        s = h.spec
        return {"id": s.id, "name": s.name, "ip": h.ip, "cpu": s.cpu_model, "cpuSize": s.cpus,
                "memory": s.memory_gb, "physicalMemory": round(s.memory_gb + 2.5, 2),
                "status": h.status, "poolId": s.pool, "arch": "x86_64",
                "createTime": iso_time(BASE_MS), "domainLimit": 200,
                "manufacturer": "OCloudView Lab", "model": "Simulated host",
                "vmcId": stable_uuid("vmc", s.pool)}

    def host_vo(self, h: HostState, running: int) -> dict[str, Any]:
        """HostVO: a row of GET /ocloud/v1/host."""
        return {**self._host_common(h), "poolName": h.pool_name, "runningDomainCount": running}

    def host_detail_vo(self, h: HostState) -> dict[str, Any]:
        """HostDetailVO: GET /ocloud/v1/host/{id}."""
        hosts_in_pool = sum(1 for o in self.host_order if o.spec.pool == h.spec.pool)
        return {**self._host_common(h), "localIp": h.ip, "hostNum": hosts_in_pool}

    def domain_vo(self, vm: VmState) -> dict[str, Any]:
        """DomainVO: a row of GET /ocloud/v1/domain, and GET /ocloud/v1/domain/{id}."""
        host = self.hosts[vm.host]
        side = vm.spec.vdi
        assert side is not None  # only VMs with a platform side are in self.vms
        connected = 1 if vm.session == "connected" else 0
        created = BASE_MS + vm.index * 60_000
        rec: dict[str, Any] = {
            "id": vm.vdi_id, "name": vm.spec.name, "status": vm.status, "cpu": vm.vcpu,
            "sockets": 1, "cores": vm.vcpu, "threads": 1, "memory": vm.memory_mb,
            "hostId": host.spec.id, "hostName": host.spec.name,
            "lastSuccessfulHostId": host.spec.id, "ip": guest_ip(vm.index),
            "osType": "windows", "osName": "Windows 10", "systemType": "x86_64",
            "isConnected": connected, "desktopPoolId": vm.desk_pool_id,
            "poolId": host.spec.pool, "poolName": host.pool_name,
            "vmcId": stable_uuid("vmc", host.spec.pool),
            "isModel": int(side.kind == "template"), "isRecycle": int(side.kind == "recycled"),
            "freeze": side.freeze, "hasSnapshot": int(side.freeze != 0),
            "isCloneDomain": int(bool(side.mother)),
            "createTime": timestamp(created), "updateTime": timestamp(vm.updated_ms),
        }
        if side.mother in self.vm_id_by_name:  # a subset of a scenario may lack the template
            rec.update(motherId=self.vm_id_by_name[side.mother], motherName=side.mother,
                       cloneType="1")
        if side.kind == "template":
            rec["childCount"] = sum(1 for v in self.vms.values()
                                    if v.spec.vdi is not None and v.spec.vdi.mother == vm.spec.name)
        if side.user:
            rec["userId"] = self.users[side.user][0]
        if vm.session == "connected":
            rec["connectTime"] = timestamp(vm.session_ms)
        elif vm.session == "disconnected":
            rec["connectTime"] = timestamp(vm.session_ms - 3_600_000)
            rec["disconnectTime"] = timestamp(vm.session_ms)
        return rec

    def user_vos(self) -> list[dict[str, Any]]:
        """UserListVo: every user, by login. The national ID, phone and mail are made up, and
        served as a real platform does, so tests can prove vditui drops them."""
        out = []
        for n, (uid, u) in enumerate(sorted(self.users.values(), key=lambda x: x[1].login)):
            vms = [v.spec.name for v in self.vm_order if v.spec.vdi and v.spec.vdi.user == u.login]
            out.append({"id": uid, "sAMAccountName": u.login, "cn": u.login,
                        "displayName": u.display_name, "domainName": ",".join(vms),
                        "idNumber": f"11010119900101{n:04d}", "mobile": f"1380013{n:04d}",
                        "mail": f"{u.login}@lab.example.cn",
                        "lastLoginTime": iso_time(BASE_MS)})
        return out

    def alarm_vos(self) -> list[dict[str, Any]]:
        """AlarmVO: the scenario's live alarms, newest first."""
        out = []
        for n, a in enumerate(self.alarms):
            ip = self.hosts[a.host].ip if a.host in self.hosts else ""
            out.append({"id": n + 1, "level": a.level, "module": a.module, "content": a.content,
                        "hostIp": ip, "alarmTime": iso_time(BASE_MS + n * 60_000)})
        return out[::-1]

    def user_stat(self) -> dict[str, int]:
        """DomainUserStatVO: online users (all counted as internal) and offline ones."""
        online = {v.spec.vdi.user for v in self.vms.values()
                  if v.spec.vdi is not None and v.session == "connected"}
        return {"in": len(online), "out": 0, "offline": len(self.users) - len(online)}

    def desk_pool_vos(self) -> list[dict[str, Any]]:
        """DesktopPoolVO: one desktop pool per scenario resource pool, ordered by name."""
        out: list[dict[str, Any]] = []
        for pool_id, dp_id in self.desk_pools.items():
            members = [v for v in self.vms.values() if v.desk_pool_id == dp_id]
            models = sorted(v.vdi_id for v in self.vms.values()
                            if v.spec.vdi is not None and v.spec.vdi.kind == "template"
                            and self.hosts[v.host].spec.pool == pool_id)
            extra = {"curModelId": models[0], "modelId": ",".join(models)} if models else {}
            out.append({"id": dp_id, "name": self.pool_names[pool_id], "type": 0, "enabled": 1,
                        "status": 1 if pool_id in self.switching else 0, **extra,
                        "amount": len(members),
                        "usedAmount": sum(1 for v in members if v.status == 1),
                        "domainPrefix": self.pool_names[pool_id], "groupNameList": []})
        return sorted(out, key=lambda d: (d["name"], d["id"]))

    # ----------------------------------------------------------------------- queries

    def find_hosts(self, name: str | None, statuses: set[int] | None, pool_id: str | None,
                   arches: set[str] | None) -> list[HostState]:
        """Hosts in the VDI matching the filters, in the stable order."""
        return [h for h in self.host_order
                if (not name or name.casefold() in h.spec.name.casefold())
                and (statuses is None or h.status in statuses)
                and (not pool_id or h.spec.pool == pool_id)
                and (arches is None or "x86_64" in arches)]

    def find_vms(self, host_id: str | None, statuses: set[int] | None, keyword: str | None,
                 pool_id: str | None, *, kinds: set[str] | None = None,
                 **flags: str | None) -> list[VmState]:
        """VMs with a VDI side matching the filters, in the stable order. ``kinds``: which of
        desktop/template/recycled (None: what GET /ocloud/v1/domain lists, per
        ``list_omits``); ``flags``: isConnected, isBindUser, motherId as the API takes them."""
        if kinds is None:
            kinds = {"desktop"} if self.list_omits else {"desktop", "template", "recycled"}
        mother = flags.get("motherId")
        mother_name = next((n for n, i in self.vm_id_by_name.items() if i == mother), None)

        def ok(vm: VmState) -> bool:
            host = self.hosts[vm.host].spec
            side = vm.spec.vdi
            assert side is not None
            return ((not host_id or host.id == host_id)
                    and side.kind in kinds
                    and (statuses is None or vm.status in statuses)
                    and (not keyword or keyword.casefold() in vm.spec.name.casefold())
                    and (not pool_id or host.pool == pool_id)
                    and _flag_ok(flags.get("isConnected"), vm.session == "connected")
                    and _flag_ok(flags.get("isBindUser"), bool(side.user))
                    and (not mother or side.mother == mother_name))
        return [vm for vm in self.vm_order if ok(vm)]

    def vms_by_ids(self, ids: Iterable[str]) -> list[tuple[str, VmState | None]]:
        """Each platform id with its VM, or None when the platform has no such VM."""
        return [(i, self.vms.get(self.vm_by_id.get(i, ""))) for i in ids]


def _flag_ok(wanted: str | None, have: bool) -> bool:
    """A 0/1 filter: absent or blank matches all; a bad value is the caller's ApiError."""
    if wanted is None or not wanted.strip():
        return True
    if wanted.strip() not in ("0", "1"):
        raise ApiError(E_BAD_REQUEST, f"参数错误 (expected 0 or 1, got {wanted!r})")
    return have == (wanted.strip() == "1")


# --------------------------------------------------------------------------- requests

OK_MSG = "操作成功"


def ok_answer(data: Any) -> dict[str, Any]:
    """A successful answer wrapping ``data`` (ResponseVO)."""
    return {"status": 0, "msg": OK_MSG, "data": data}


# Error codes the simulator answers with; the spec documents none, these mimic a real platform.
E_BAD_REQUEST, E_TOKEN, E_NOT_FOUND, E_INTERNAL, E_LOGIN = 400, 401, 404, 500, 1001


class ApiError(Exception):
    """An answer with a non-zero ``status`` (HTTP 200 unless ``http`` says otherwise)."""

    def __init__(self, status: int, msg: str, http: int = 200) -> None:
        super().__init__(msg)
        self.status, self.msg, self.http = status, msg, http


@dataclass
class Request:
    """One API call as a handler sees it: path parameters, first value of each query
    parameter, raw body."""

    params: dict[str, str]
    query: dict[str, str]
    body: bytes

    def json(self, required: bool = True) -> dict[str, Any]:
        """The body as a JSON object, or an :class:`ApiError` saying what is wrong with it."""
        if not self.body.strip():
            if required:
                raise ApiError(E_BAD_REQUEST, "请求体为空 (empty request body)")
            return {}
        try:
            doc = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(E_BAD_REQUEST, "请求体不是合法JSON (body is not valid JSON)") from None
        if not isinstance(doc, dict):
            raise ApiError(E_BAD_REQUEST, "请求体格式错误 (request body must be a JSON object)")
        return doc

    def int_arg(self, name: str, default: int) -> int:
        """An integer query parameter; absent or blank gives ``default``."""
        raw = self.query.get(name, "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(E_BAD_REQUEST, f"参数错误 (bad parameter {name}={raw!r})") from None

    def int_set(self, name: str) -> set[int] | None:
        """A comma list of integers (``status=0,1``); None when absent, meaning no filter."""
        raw = self.query.get(name, "").strip()
        if not raw:
            return None
        try:
            return {int(x) for x in raw.split(",") if x.strip()}
        except ValueError:
            raise ApiError(E_BAD_REQUEST, f"参数错误 (bad parameter {name}={raw!r})") from None


def str_set(raw: str | None) -> set[str] | None:
    """A comma list of strings; None when absent or blank, meaning no filter."""
    if not raw or not raw.strip():
        return None
    return {x.strip() for x in raw.split(",") if x.strip()}
