"""The naive baseline: the same inventory, fetched the way the field report's scripts did.

Blocking and serial throughout: the platform's lists page by page (10 items a page, one request
at a time), then each host in turn: ``libvirt.open``, ``listAllDomains``, and one ``info()`` per
domain. Then the same comparison (VM present on both sides, state agreeing). Runs in a worker
subprocess, like the engine it is compared with.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import libvirt

LOGIN_PATH, HOST_PATH = "/ocloud/v1/login", "/ocloud/v1/host"
DOMAIN_PATH, POOL_PATH = "/ocloud/v1/domain", "/ocloud/v1/desk-pool"
#: libvirt state code -> the platform status it should be recorded as (running 1, off 0,
#: paused 2); anything else is compared as "unknown".
VIRT_TO_VDI = {1: 1, 5: 0, 3: 2}


class NaiveError(RuntimeError):
    """The platform or a host answered something the naive script cannot use."""


def _pages(client: httpx.Client, path: str, token: str, page_size: int) -> tuple[list[Any], int]:
    """Every item of a paged list, one page at a time; returns (items, requests made)."""
    items: list[Any] = []
    num, requests = 1, 0
    while True:
        resp = client.get(path, params={"pageNum": num, "pageSize": page_size},
                          headers={"Token": token})
        requests += 1
        doc = resp.json()
        if doc.get("status") != 0:
            raise NaiveError(f"GET {path} page {num}: {doc.get('msg')}")
        data = doc["data"]
        chunk = data.get("list") or []
        items.extend(chunk)
        total = data.get("total")
        if not chunk or (total is not None and len(items) >= total) or len(chunk) < page_size:
            return items, requests
        num += 1


def fetch_platform(url: str, username: str, password: str,
                   page_size: int = 10) -> tuple[dict[str, list[Any]], int]:
    """Hosts, VMs and pools from the platform, serially; returns (lists, HTTP requests)."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        body = {"username": username, "password": hashlib.md5(password.encode()).hexdigest(),
                "client": ""}
        doc = client.post(LOGIN_PATH, json=body).json()
        if doc.get("status") != 0:
            raise NaiveError(f"login refused: {doc.get('msg')}")
        token = doc["data"]["token"]
        requests = 1
        out: dict[str, list[Any]] = {}
        for name, path in (("hosts", HOST_PATH), ("vms", DOMAIN_PATH), ("pools", POOL_PATH)):
            out[name], n = _pages(client, path, token, page_size)
            requests += n
    return out, requests


def read_host(uri: str) -> tuple[dict[str, tuple[str, int, int, int]], int]:
    """Every domain of one host: {uuid: (name, state, vcpu, memory KiB)}, and the libvirt
    calls made (open, listAllDomains, one info() each; name and UUID are local)."""
    conn = libvirt.open(uri)
    calls = 1
    try:
        domains = conn.listAllDomains()
        calls += 1
        out = {}
        for dom in domains:
            state, max_kib, _cur, vcpus, _cpu_time = dom.info()
            calls += 1
            out[dom.UUIDString()] = (dom.name(), state, vcpus, max_kib)
    finally:
        conn.close()
    return out, calls


def run(url: str, username: str, password: str, uri_template: str,
        page_size: int = 10) -> dict[str, Any]:
    """The whole naive inventory and comparison, timed; the returned dict is the worker's
    result (without memory, which the worker adds)."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    t0 = time.monotonic()
    lists, requests = fetch_platform(url, username, password, page_size)
    t_vdi = time.monotonic() - t0
    virt: dict[str, tuple[str, int, int, int]] = {}
    calls_per_host: list[int] = []
    for host in lists["hosts"]:
        domains, calls = read_host(uri_template.format(ip=host["ip"], name=host["name"]))
        virt.update(domains)
        calls_per_host.append(calls)
    vdi = {vm["id"]: vm for vm in lists["vms"]}
    mismatches = sum(1 for key in vdi.keys() | virt.keys()
                     if key not in vdi or key not in virt
                     or VIRT_TO_VDI.get(virt[key][1], -1) != vdi[key].get("status"))
    wall = time.monotonic() - t0
    return {
        "wall_s": round(wall, 3),
        "vdi_s": round(t_vdi, 3),
        "hosts": len(lists["hosts"]),
        "vms": len(vdi),
        "domains": len(virt),
        "mismatches": mismatches,
        "vdi_requests": requests,
        "trips_per_host": {"min": min(calls_per_host, default=0),
                           "max": max(calls_per_host, default=0)},
        "round_trips_total": sum(calls_per_host),
    }
