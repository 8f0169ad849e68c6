"""Lab scenarios: what the simulated VDI platform believes and what libvirt really has.

A scenario declares both sides of every VM, so drift is declared, not accidental. It is read from
TOML (see ``scenarios/default.toml`` for the format) or made by :func:`generate` for benchmarks.

The lab is the world, not the engine's mirror: nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import random
import re
import tomllib
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from vditui.lab.specs import (
    DRIVERS,
    HOST_DRIFTS,
    HOST_FAULTS,
    HOST_STATUS,
    QEMU_RUNNING_MB,
    SESSIONS,
    TRANSPORTS,
    VIRT_STATES,
    VM_DRIFTS,
    VM_KINDS,
    VM_STATUS,
    AlarmSpec,
    HostSpec,
    PoolSpec,
    Scenario,
    ScenarioError,
    UserSpec,
    VdiSettings,
    VdiSide,
    VirtSide,
    VmSpec,
    stable_uuid,
)
from vditui.tomlpos import find_line

# Re-exported: what a scenario is made of lives in vditui.lab.specs.
__all__ = [
    "DRIVERS",
    "HOST_DRIFTS",
    "HOST_FAULTS",
    "HOST_STATUS",
    "QEMU_RUNNING_MB",
    "SESSIONS",
    "TRANSPORTS",
    "VIRT_STATES",
    "VM_DRIFTS",
    "VM_KINDS",
    "VM_STATUS",
    "AlarmSpec",
    "HostSpec",
    "PoolSpec",
    "Scenario",
    "ScenarioError",
    "UserSpec",
    "VdiSettings",
    "VdiSide",
    "VirtSide",
    "VmSpec",
    "generate",
    "load",
    "load_default",
    "parse",
    "stable_uuid",
]


# --------------------------------------------------------------------------- loading


def load(path: str | Path) -> Scenario:
    """Read a scenario TOML file; raises :class:`ScenarioError` naming file, line and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(p), None, "file", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(p), None, "file", f"cannot read: {exc}") from None
    return parse(text, str(p))


def load_default() -> Scenario:
    ref = resources.files("vditui.lab").joinpath("scenarios/default.toml")
    return parse(ref.read_text(encoding="utf-8"), "vditui/lab/scenarios/default.toml")


def parse(text: str, path: str = "<scenario>") -> Scenario:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
        raise ScenarioError(path, line, "toml", str(exc)) from None
    return _Parser(text, path).scenario(doc)


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path

    def _line(self, table: str, index: int | None, key: str | None) -> int | None:
        path: list[str | int] = [table] if index is None else [table, index]
        return find_line(self.text, [*path, key] if key else path)

    def err(self, table: str, index: int | None, key: str, msg: str) -> ScenarioError:
        label = f"{table}[{index}].{key}" if index is not None else f"{table}.{key}"
        return ScenarioError(self.path, self._line(table, index, key), label, msg)

    def _get(self, d: dict[str, Any], key: str, kind: type | tuple[type, ...], table: str,
             index: int | None, default: Any = ..., ) -> Any:
        if key not in d:
            if default is ...:
                raise self.err(table, index, key, "is required")
            return default
        val = d[key]
        if isinstance(val, bool) and kind in (int, float, (int, float)):
            raise self.err(table, index, key, f"expected {_kname(kind)}, got a boolean")
        if not isinstance(val, kind):
            raise self.err(table, index, key, f"expected {_kname(kind)}, got {type(val).__name__}")
        return val

    def _code(self, d: dict[str, Any], key: str, codes: dict[str, int], table: str,
              index: int | None, default: Any) -> int:
        val = d.get(key, default)
        if isinstance(val, str) and val in codes:
            return codes[val]
        if isinstance(val, int) and not isinstance(val, bool) and val in codes.values():
            return val
        raise self.err(table, index, key,
                       f"expected one of {', '.join(codes)} (or its code), got {val!r}")

    def _check_keys(self, d: dict[str, Any], allowed: set[str], table: str,
                    index: int | None) -> None:
        for k in d:
            if k not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.err(table, index, k, f"unknown field (known: {known})")

    def scenario(self, doc: dict[str, Any]) -> Scenario:
        top = {"name", "description", "vdi", "pool", "host", "vm", "user", "alarm"}
        self._check_keys(doc, top, "scenario", None)
        name = doc.get("name", Path(self.path).stem)
        if not isinstance(name, str):
            raise ScenarioError(self.path, 1, "name", "expected a string")
        vdi = self.vdi(doc.get("vdi", {}))
        pools = tuple(self.pool(i, p) for i, p in enumerate(self._list(doc, "pool")))
        pool_ids = {p.id for p in pools}
        hosts = tuple(self.host(i, h, pool_ids, name)
                      for i, h in enumerate(self._list(doc, "host")))
        host_names = [h.name for h in hosts]
        for i, h in enumerate(hosts):
            if host_names.count(h.name) > 1:
                raise self.err("host", i, "name", f"host {h.name!r} is declared twice")
        vms = tuple(self.vm(i, v, set(host_names), name)
                    for i, v in enumerate(self._list(doc, "vm")))
        on_host: dict[tuple[str, str], int] = {}
        for i, v in enumerate(vms):
            if v.virt is not None:
                k = (v.virt.host, v.name)
                if k in on_host:
                    raise self.err("vm", i, "name", f"libvirt host {v.virt.host!r} already has a "
                                   f"domain named {v.name!r} (vm[{on_host[k]}])")
                on_host[k] = i
        qemu_hosts = {h.name for h in hosts if h.driver == "qemu"}
        low, high = QEMU_RUNNING_MB
        for i, v in enumerate(vms):
            if (v.virt is not None and v.virt.host in qemu_hosts and v.virt.state != "shutoff"
                    and not low <= v.virt.memory_mb <= high):
                raise self.err("vm", i, "memory_mb", f"{v.virt.memory_mb} MiB for a {v.virt.state} "
                               f"guest on qemu host {v.virt.host!r}: real guests run with "
                               f"{low} to {high} MiB in the lab (shut-off ones may be larger)")
        seen: dict[str, int] = {}
        for i, v in enumerate(vms):
            if v.uuid in seen:
                raise self.err("vm", i, "uuid", f"uuid {v.uuid} already used by vm[{seen[v.uuid]}]")
            seen[v.uuid] = i
        users = tuple(self.user(i, u) for i, u in enumerate(self._list(doc, "user")))
        logins = {u.login for u in users}
        templates = {v.name for v in vms if v.vdi is not None and v.vdi.kind == "template"}
        for i, v in enumerate(vms):
            if v.vdi is not None and v.vdi.user and v.vdi.user not in logins:
                raise self.err("vm", i, "user", f"unknown user {v.vdi.user!r} (declare it in "
                                                "a [[user]] table)")
            if v.vdi is not None and v.vdi.mother and v.vdi.mother not in templates:
                raise self.err("vm", i, "mother", f"{v.vdi.mother!r} is not a template VM "
                                                  "(kind = \"template\") of this scenario")
        alarms = tuple(self.alarm(i, a, set(host_names))
                       for i, a in enumerate(self._list(doc, "alarm")))
        return Scenario(name=name, description=str(doc.get("description", "")), pools=pools,
                        hosts=hosts, vms=vms, vdi=vdi, users=users, alarms=alarms)

    def user(self, i: int, d: dict[str, Any]) -> UserSpec:
        self._check_keys(d, {"login", "name"}, "user", i)
        login = self._get(d, "login", str, "user", i)
        return UserSpec(login=login, display_name=self._get(d, "name", str, "user", i, login))

    def alarm(self, i: int, d: dict[str, Any], hosts: set[str]) -> AlarmSpec:
        self._check_keys(d, {"level", "module", "content", "host"}, "alarm", i)
        host = self._get(d, "host", str, "alarm", i, "")
        if host and host not in hosts:
            raise self.err("alarm", i, "host", f"unknown host {host!r}")
        return AlarmSpec(level=self._get(d, "level", str, "alarm", i),
                         module=self._get(d, "module", str, "alarm", i, "host"),
                         content=self._get(d, "content", str, "alarm", i), host=host)

    def _side_err(self, i: int, side: str, over: dict[str, Any], key: str,
                  msg: str) -> ScenarioError:
        """An error in a VM field, pointing at the ``vdi``/``virt`` override when it set it."""
        if key in over:
            return ScenarioError(self.path, self._line("vm", i, side), f"vm[{i}].{side}.{key}",
                                 msg)
        return self.err("vm", i, key, msg)

    def _list(self, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
        val = doc.get(key, [])
        if not isinstance(val, list) or not all(isinstance(x, dict) for x in val):
            raise ScenarioError(self.path, self._line(key, None, None), key,
                                f"expected [[{key}]] tables")
        return val

    def vdi(self, d: Any) -> VdiSettings:
        if not isinstance(d, dict):
            raise ScenarioError(self.path, None, "vdi", "expected a [vdi] table")
        keys = {"username", "password", "token_ttl", "max_page_size", "lag", "list_omits"}
        self._check_keys(d, keys, "vdi", None)
        base = VdiSettings()
        s = VdiSettings(
            username=self._get(d, "username", str, "vdi", None, base.username),
            password=self._get(d, "password", str, "vdi", None, base.password),
            token_ttl=float(self._get(d, "token_ttl", (int, float), "vdi", None, base.token_ttl)),
            max_page_size=self._get(d, "max_page_size", int, "vdi", None, base.max_page_size),
            lag=float(self._get(d, "lag", (int, float), "vdi", None, base.lag)),
            list_omits=self._get(d, "list_omits", bool, "vdi", None, base.list_omits),
        )
        if s.max_page_size < 1:
            raise self.err("vdi", None, "max_page_size", "must be at least 1")
        if s.token_ttl <= 0:
            raise self.err("vdi", None, "token_ttl", "must be positive (seconds)")
        return s

    def pool(self, i: int, d: dict[str, Any]) -> PoolSpec:
        self._check_keys(d, {"id", "name", "switching"}, "pool", i)
        pid = self._get(d, "id", str, "pool", i)
        return PoolSpec(id=pid, name=self._get(d, "name", str, "pool", i, pid),
                        switching=self._get(d, "switching", bool, "pool", i, False))

    def host(self, i: int, d: dict[str, Any], pools: set[str], scen: str) -> HostSpec:
        allowed = {"name", "pool", "id", "vdi_status", "transports", "fault", "cpu_model", "cpus",
                   "memory_gb", "in_vdi", "expect", "driver", "running_skew"}
        self._check_keys(d, allowed, "host", i)
        name = self._get(d, "name", str, "host", i)
        pool = self._get(d, "pool", str, "host", i)
        if pool not in pools:
            raise self.err("host", i, "pool", f"unknown pool {pool!r} (declared: {sorted(pools)})")
        transports = tuple(self._get(d, "transports", list, "host", i, ["tcp"]))
        for t in transports:
            if t not in TRANSPORTS:
                raise self.err("host", i, "transports",
                               f"unknown transport {t!r}; use {TRANSPORTS}")
        fault = self._get(d, "fault", str, "host", i, "none")
        if fault not in HOST_FAULTS:
            raise self.err("host", i, "fault", f"expected one of {HOST_FAULTS}, got {fault!r}")
        driver = self._get(d, "driver", str, "host", i, "test")
        if driver not in DRIVERS:
            raise self.err("host", i, "driver", f"expected one of {DRIVERS}, got {driver!r}")
        expect = tuple(self._get(d, "expect", list, "host", i, []))
        for e in expect:
            if e not in HOST_DRIFTS:
                raise self.err("host", i, "expect", f"unknown host drift {e!r}; use {HOST_DRIFTS}")
        return HostSpec(
            name=name, pool=pool,
            id=self._get(d, "id", str, "host", i, stable_uuid(scen, "host", name)),
            vdi_status=self._code(d, "vdi_status", HOST_STATUS, "host", i, "enabled"),
            transports=transports, fault=fault,
            cpu_model=self._get(d, "cpu_model", str, "host", i, HostSpec.cpu_model),
            cpus=self._get(d, "cpus", int, "host", i, HostSpec.cpus),
            memory_gb=float(self._get(d, "memory_gb", (int, float), "host", i, HostSpec.memory_gb)),
            in_vdi=self._get(d, "in_vdi", bool, "host", i, True),
            expect=expect, driver=driver,
            running_skew=self._get(d, "running_skew", int, "host", i, 0),
        )

    def vm(self, i: int, d: dict[str, Any], hosts: set[str], scen: str) -> VmSpec:
        base_keys = {"host", "state", "vcpu", "memory_mb"}
        virt_keys = {"vcpu_max", "current_memory_mb"}  # libvirt's side only
        self._check_keys(d, base_keys | virt_keys | set(_PLATFORM_KEYS)
                         | {"name", "uuid", "vdi_id", "vdi", "virt", "expect", "note"}, "vm", i)
        name = self._get(d, "name", str, "vm", i)
        if not name or len(name) > 200:
            raise self.err("vm", i, "name", "must be 1 to 200 characters")
        vm_uuid = self._get(d, "uuid", str, "vm", i, stable_uuid(scen, "vm", str(i), name))
        try:
            vm_uuid = str(uuid.UUID(vm_uuid))
        except ValueError:
            raise self.err("vm", i, "uuid", f"not a UUID: {vm_uuid!r}") from None
        base = {k: d[k] for k in base_keys if k in d}
        sides: dict[str, dict[str, Any] | None] = {}
        for side in ("vdi", "virt"):
            over = d.get(side, {})
            if over is False:
                sides[side] = None
                continue
            if not isinstance(over, dict):
                raise self.err("vm", i, side, "expected a table of overrides, or false for absent")
            allowed = base_keys | (virt_keys if side == "virt" else set())
            for k in over:
                if k not in allowed:
                    raise self._side_err(i, side, over, k, "unknown field (known: "
                                         f"{', '.join(sorted(allowed))})")
            merged = {**base, **over}
            for k in base_keys:
                if k not in merged:
                    raise self.err("vm", i, k, f"is required (for the {side} side)")
            if merged["host"] not in hosts:
                raise self._side_err(i, side, over, "host", f"unknown host {merged['host']!r}")
            for k in ("vcpu", "memory_mb"):
                v = merged[k]
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise self._side_err(i, side, over, k,
                                         f"expected a positive integer, got {v!r}")
            sides[side] = merged
        vdi = virt = None
        if (m := sides["vdi"]) is not None:
            status = self._code(m, "state", VM_STATUS, "vm", i, None)
            vdi = VdiSide(id=self._get(d, "vdi_id", str, "vm", i, vm_uuid), host=m["host"],
                          status=status, vcpu=m["vcpu"], memory_mb=m["memory_mb"],
                          **self.platform_extras(i, d))
        if (m := sides["virt"]) is not None:
            st = m["state"]
            st = {"off": "shutoff", "suspended": "paused"}.get(st, st)
            if st not in VIRT_STATES:
                raise self.err("vm", i, "state",
                               f"libvirt state must be one of {VIRT_STATES}, got {st!r}")
            over = d.get("virt") or {}
            extra = {k: v for k in virt_keys if (v := over.get(k, d.get(k))) is not None}
            for k, v in extra.items():
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise self._side_err(i, "virt", over, k,
                                         f"expected a positive integer, got {v!r}")
            if extra.get("vcpu_max", m["vcpu"]) < m["vcpu"]:
                raise self._side_err(i, "virt", over, "vcpu_max",
                                     f"must be at least vcpu ({m['vcpu']}): vcpu is the current "
                                     "count, vcpu_max the most it may be hot-plugged to")
            if extra.get("current_memory_mb", m["memory_mb"]) > m["memory_mb"]:
                raise self._side_err(i, "virt", over, "current_memory_mb",
                                     f"must be at most memory_mb ({m['memory_mb']}): a balloon "
                                     "only takes memory back")
            virt = VirtSide(host=m["host"], state=st, vcpu=m["vcpu"], memory_mb=m["memory_mb"],
                            **extra)
        if vdi is None and virt is None:
            raise self.err("vm", i, "vdi", "a VM must exist on at least one side")
        expect = tuple(self._get(d, "expect", list, "vm", i, []))
        for e in expect:
            if e not in VM_DRIFTS:
                raise self.err("vm", i, "expect", f"unknown drift {e!r}; use {VM_DRIFTS}")
        return VmSpec(name=name, uuid=vm_uuid, vdi=vdi, virt=virt, expect=expect,
                      note=str(d.get("note", "")))


    def platform_extras(self, i: int, d: dict[str, Any]) -> dict[str, Any]:
        """A VM's platform-only fields: what it is, its restore point, template, user."""
        out = {k: self._get(d, k, kind, "vm", i) for k, kind in _PLATFORM_KEYS.items() if k in d}
        if out.get("kind", "desktop") not in VM_KINDS:
            raise self.err("vm", i, "kind", f"expected one of {VM_KINDS}, got {out['kind']!r}")
        if out.get("session", "") not in SESSIONS:
            raise self.err("vm", i, "session", f"expected one of {SESSIONS[1:]}")
        if not 0 <= out.get("freeze", 0) <= 4:
            raise self.err("vm", i, "freeze", "expected 0 (none) to 4 (monthly)")
        if out.get("session") and not out.get("user"):
            raise self.err("vm", i, "session", "a session needs a bound user (user = ...)")
        return out


#: Platform-only VM fields a scenario may set, and their TOML types.
_PLATFORM_KEYS: dict[str, type] = {"kind": str, "freeze": int, "mother": str, "user": str,
                                   "session": str, "session_minutes": int}


def _kname(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list",
             bool: "true or false", dict: "a table"}
    if isinstance(kind, tuple):
        return "a number"
    return names.get(kind, kind.__name__)


# --------------------------------------------------------------------------- generator


def generate(hosts: int = 50, vms_per_host: int = 100, pools: int = 2, drift: float = 0.0,
             seed: int = 0, name: str | None = None) -> Scenario:
    """A large consistent scenario for benchmarks; ``drift`` is the share of VMs given a
    state mismatch (declared in ``expect``)."""
    rnd = random.Random(seed)
    scen = name or f"gen-{hosts}x{vms_per_host}"
    pool_specs = tuple(PoolSpec(id=stable_uuid(scen, "pool", str(p)), name=f"pool-{p + 1:02d}")
                       for p in range(max(1, pools)))
    host_specs = tuple(
        HostSpec(name=f"hv{h + 1:03d}", pool=pool_specs[h % len(pool_specs)].id,
                 id=stable_uuid(scen, "host", str(h)))
        for h in range(hosts))
    vms: list[VmSpec] = []
    for h in host_specs:
        for n in range(vms_per_host):
            vname = f"{h.name}-vm{n + 1:04d}"
            vid = stable_uuid(scen, "vm", vname)
            running = rnd.random() < 0.7
            vcpu = rnd.choice((2, 4, 8))
            mem = rnd.choice((2048, 4096, 8192))
            state = "running" if running else "shutoff"
            expect: tuple[str, ...] = ()
            vdi_status = 1 if running else 0
            if drift and rnd.random() < drift:
                vdi_status = 0 if running else 1
                expect = ("state",)
            vms.append(VmSpec(
                name=vname, uuid=vid,
                vdi=VdiSide(id=vid, host=h.name, status=vdi_status, vcpu=vcpu, memory_mb=mem),
                virt=VirtSide(host=h.name, state=state, vcpu=vcpu, memory_mb=mem),
                expect=expect))
    return Scenario(name=scen, description=f"generated {hosts} hosts x {vms_per_host} VMs",
                    pools=pool_specs, hosts=host_specs, vms=tuple(vms))
