"""The VDI client against the lab's simulated OCloudView server (and, for pure parsing and
exception mapping only, against ``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import socket
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vditui.core.models import VdiVm
from vditui.core.vdi import (
    FIRST_WINDOW,
    VdiAuthError,
    VdiClient,
    VdiError,
    VdiHttpError,
    VdiNotJson,
    VdiShapeError,
    VdiStatusError,
    VdiTlsError,
    VdiUnreachable,
)
from vditui.lab import scenario as sc
from vditui.lab.proxy import ProxyHub
from vditui.lab.vdi_server import VdiServer

LOGIN = "POST /ocloud/v1/login"
DOMAINS = "GET /ocloud/v1/domain"


def host_ips(scen: sc.Scenario) -> dict[str, str]:
    return {h.name: f"127.0.0.{10 + i}" for i, h in enumerate(scen.hosts)}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def default() -> sc.Scenario:
    return sc.load_default().without_driver("qemu")


Lab = Callable[..., Awaitable[tuple[VdiServer, VdiClient]]]


@pytest.fixture
async def lab(default: sc.Scenario) -> AsyncIterator[Lab]:
    """``await lab(scenario=None, password=None, vdi={...}, **client_kwargs)``: a private server
    and a client on it, both closed after the test."""
    made: list[tuple[VdiServer, VdiClient]] = []

    async def make(scenario: sc.Scenario | None = None, password: str | None = None,
                   vdi: dict[str, Any] | None = None, **kw: Any) -> tuple[VdiServer, VdiClient]:
        scen = scenario or default
        if vdi:
            scen = scen.with_vdi(**vdi)
        srv = VdiServer(scen, host_ips(scen))
        srv.start()
        client = VdiClient(srv.url, scen.vdi.username,
                           scen.vdi.password if password is None else password, **kw)
        made.append((srv, client))
        return srv, client

    yield make
    for srv, client in made:
        await client.aclose()
        srv.stop()


def assert_no_secrets(text: str, *secrets: str | None) -> None:
    for secret in secrets:
        if secret:
            assert secret not in text, f"secret leaked into {text!r}"


# --------------------------------------------------------------------------- the real server


async def test_default_inventory(lab: Lab, default: sc.Scenario) -> None:
    srv, client = await lab()
    inv = await client.inventory()
    ips = host_ips(default)

    hosts = {h.name: h for h in inv.hosts}
    assert set(hosts) == {h.name for h in default.hosts if h.in_vdi}
    for spec in default.hosts:
        got = hosts[spec.name]
        assert (got.id, got.ip, got.status, got.cpus) == (spec.id, ips[spec.name],
                                                          spec.vdi_status, spec.cpus)
        assert got.memory_gb == pytest.approx(spec.memory_gb)
        assert got.pool_id == spec.pool and got.pool_name and got.cpu_model == spec.cpu_model

    host_ids = {h.name: h.id for h in default.hosts}
    want = {v.vdi.id: v for v in default.vms if v.vdi is not None}
    assert len(inv.vms) == len(want) == len({v.id for v in inv.vms})
    for vm in inv.vms:
        spec = want[vm.id]
        assert spec.vdi is not None
        assert (vm.name, vm.status, vm.vcpu, vm.memory_mb) == (
            spec.name, spec.vdi.status, spec.vdi.vcpu, spec.vdi.memory_mb)
        assert (vm.host_id, vm.host_name) == (host_ids[spec.vdi.host], spec.vdi.host)
        assert vm.desktop_pool_id and vm.ip

    assert sorted(p.name for p in inv.pools) == sorted(p.name for p in default.pools)
    assert sum(p.amount or 0 for p in inv.pools) == len(want)
    # One login and one page per list (hosts, VMs, pools, templates, recycle bin, users,
    # alarms): everything fits in 100.
    assert inv.requests == client.requests == sum(srv.requests.values()) == 8
    assert srv.requests[LOGIN] == 1
    assert inv.fetched_at > 0 and client.warnings == []


@pytest.mark.parametrize("page_size", [3, 7])
async def test_small_pages_return_every_vm_once(lab: Lab, default: sc.Scenario,
                                                page_size: int) -> None:
    srv, client = await lab(page_size=page_size)
    vms = await client.vms()
    want = sorted(v.vdi.id for v in default.vms if v.vdi is not None)
    assert sorted(v.id for v in vms) == want
    assert srv.requests[DOMAINS] == math.ceil(len(want) / page_size)
    assert client.requests == 1 + srv.requests[DOMAINS]
    assert client.warnings == []


async def test_pages_follow_the_clamped_page_size(lab: Lab, default: sc.Scenario) -> None:
    # The server clamps pageSize to 4: asking for 100 must still fetch every page.
    srv, client = await lab(vdi={"max_page_size": 4}, page_size=100)
    vms = await client.vms()
    n = sum(v.vdi is not None for v in default.vms)
    assert len({v.id for v in vms}) == len(vms) == n
    assert srv.requests[DOMAINS] == math.ceil(n / 4)


async def test_vms_of_one_host(lab: Lab, default: sc.Scenario) -> None:
    _, client = await lab()
    host = default.host("hv-t1")
    vms = await client.vms(host.id)
    assert vms and {v.host_id for v in vms} == {host.id}
    assert len(vms) == sum(1 for v in default.vms if v.vdi is not None and v.vdi.host == host.name)


class _InFlight(httpx.AsyncBaseTransport):
    """A real transport that records the most requests it ever had in flight at once."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.now = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            resp = await self.inner.handle_async_request(request)
            await resp.aread()
            return resp
        finally:
            self.now -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_generated_scenario_request_count(lab: Lab) -> None:
    scen = sc.generate(hosts=10, vms_per_host=25)
    srv, client = await lab(scen, page_size=10, page_concurrency=4)
    inv = await client.inventory()
    assert len(inv.hosts) == 10 and len(inv.vms) == 250 and len(inv.pools) == 2
    assert len({v.id for v in inv.vms}) == 250
    # ... and one page each of templates, recycle bin, users and alarms (all empty here).
    expected = 1 + math.ceil(10 / 10) + math.ceil(250 / 10) + math.ceil(2 / 10) + 4
    assert srv.requests[LOGIN] == 1 and srv.requests[DOMAINS] == 25
    assert sum(srv.requests.values()) == client.requests == inv.requests == expected == 32


async def test_page_concurrency_is_bounded(lab: Lab) -> None:
    transport = _InFlight()
    _, client = await lab(sc.generate(hosts=4, vms_per_host=25), page_size=5,
                          page_concurrency=3, transport=transport)
    assert len(await client.vms()) == 100
    assert 2 <= transport.peak <= 3


async def test_trailing_slash_and_bad_url(lab: Lab, default: sc.Scenario) -> None:
    srv, _ = await lab()
    async with VdiClient(srv.url + "/", default.vdi.username, default.vdi.password) as client:
        assert len(await client.hosts()) == 11
    for bad in ("127.0.0.1:8080", "ftp://host", ""):
        with pytest.raises(VdiError):
            VdiClient(bad, "u", "p")


async def test_wrong_password(lab: Lab, default: sc.Scenario) -> None:
    srv, client = await lab(password="not-the-password-42")
    with pytest.raises(VdiAuthError) as info:
        await client.inventory()
    text = str(info.value)
    assert srv.url in text and "refused" in text and default.vdi.username in text
    assert info.value.status == 1001 and info.value.msg
    assert_no_secrets(text + repr(client), "not-the-password-42", md5("not-the-password-42"))
    assert srv.requests[LOGIN] == 1


async def test_concurrent_calls_share_a_refused_login(lab: Lab) -> None:
    srv, client = await lab(password="not-the-password-42")
    results = await asyncio.gather(client.hosts(), client.vms(), client.pools(),
                                   return_exceptions=True)
    assert all(isinstance(r, VdiAuthError) for r in results)
    # All three waited on the same refused login: the account was tried once, not three times.
    assert srv.requests[LOGIN] == 1
    with pytest.raises(VdiAuthError):  # a later call tries again
        await client.hosts()
    assert srv.requests[LOGIN] == 2


async def test_token_expires_mid_run(lab: Lab) -> None:
    srv, client = await lab(vdi={"token_ttl": 0.3})
    await client.hosts()
    await asyncio.sleep(0.4)
    assert len(await client.hosts()) == 11
    assert srv.requests[LOGIN] == 2
    assert srv.requests["GET /ocloud/v1/host"] == 3  # the rejected call is retried once


async def test_concurrent_expiry_logs_in_once(lab: Lab, default: sc.Scenario) -> None:
    srv, client = await lab()
    await client.login()
    srv.expire_tokens()
    results = await asyncio.gather(client.hosts(), client.vms(), client.pools(),
                                   client.vms(default.host("ocloud").id), client.hosts())
    assert [len(r) for r in results][:3] == [11, 39, 3]
    assert srv.requests[LOGIN] == 2


async def test_token_refused_after_relogin(lab: Lab) -> None:
    srv, client = await lab()
    await client.login()
    srv.set_fault("status", code=401, msg="token已过期，请重新登录")
    with pytest.raises(VdiAuthError) as info:
        await client.hosts()
    assert info.value.status == 401 and "token" in info.value.msg
    assert srv.requests[LOGIN] == 2  # the first login, then exactly one more


async def test_fault_http500(lab: Lab) -> None:
    srv, client = await lab()
    await client.login()
    srv.set_fault("http500")
    with pytest.raises(VdiHttpError) as info:
        await client.vms()
    assert info.value.status_code == 500
    assert srv.url in str(info.value) and "HTTP 500" in str(info.value)


async def test_fault_http500_at_login_is_not_an_auth_error(lab: Lab) -> None:
    srv, client = await lab()
    srv.set_fault("http500")
    with pytest.raises(VdiHttpError):
        await client.hosts()


async def test_fault_not_json(lab: Lab) -> None:
    srv, client = await lab()
    await client.login()
    srv.set_fault("not_json")
    with pytest.raises(VdiNotJson) as info:
        await client.vms()
    text = str(info.value)
    assert "not JSON" in text and "<html>" in text and "\n" not in text and len(text) < 300


async def test_fault_status(lab: Lab) -> None:
    srv, client = await lab()
    await client.login()
    srv.set_fault("status", code=500, msg="系统内部错误 (internal error)")
    with pytest.raises(VdiStatusError) as info:
        await client.pools()
    assert not isinstance(info.value, VdiAuthError)
    assert info.value.status == 500 and info.value.msg == "系统内部错误 (internal error)"
    assert "系统内部错误" in str(info.value)
    assert srv.requests[LOGIN] == 1  # not mistaken for an expired token


async def test_fault_slow(lab: Lab) -> None:
    srv, client = await lab(timeout=0.5)
    await client.login()
    srv.set_fault("slow", seconds=2)
    with pytest.raises(VdiUnreachable) as info:
        await client.hosts()
    assert "no answer within 0.5 s" in str(info.value) and srv.url in str(info.value)


@pytest.mark.parametrize(("fault", "params"), [("short_page", {}), ("bad_total", {"extra": 5})])
async def test_fault_pages_that_lie_warn(lab: Lab, default: sc.Scenario, fault: str,
                                         params: dict[str, Any], caplog: Any) -> None:
    srv, client = await lab(page_size=10)
    srv.set_fault(fault, **params)
    with caplog.at_level("WARNING", logger="vditui.vdi"):
        vms = await client.vms()
    n = sum(v.vdi is not None for v in default.vms)
    assert len(vms) == len({v.id for v in vms}) == (n - math.ceil(n / 10) if fault == "short_page"
                                                    else n)
    assert len(client.warnings) == 1
    assert f"total={n + params.get('extra', 0)}" in client.warnings[0]
    assert f"returned {len(vms)} VMs" in client.warnings[0]
    assert client.warnings[0] in caplog.text


async def test_a_dripping_platform_is_cut_at_the_deadline(lab: Lab,
                                                          default: sc.Scenario) -> None:
    # One byte every 0.2 s: never silent for the 1 s per-read timeout, never done either (the
    # login's answer alone would take a minute). The request as a whole is bounded.
    srv, _ = await lab()
    with ProxyHub() as hub:
        proxy = hub.add(("127.0.0.1", 0), (srv.address, srv.port), name="vdi")
        proxy.set_drip(0.2)
        url = f"http://127.0.0.1:{proxy.listen[1]}"
        async with VdiClient(url, default.vdi.username, default.vdi.password, timeout=1.0,
                             connect_timeout=1.0) as client:
            with pytest.raises(VdiUnreachable) as info:
                await client.hosts()
    assert str(info.value) == (f"{url} POST /ocloud/v1/login: no whole answer within 2 s "
                               "(connect and answer)")


async def test_a_total_that_lies_costs_a_few_gets(lab: Lab, default: sc.Scenario) -> None:
    srv, client = await lab(page_size=10)
    n = sum(v.vdi is not None for v in default.vms)
    srv.set_fault("bad_total", extra=99_990 - n)  # 9,999 pages claimed: just under the cap
    for _ in range(2):  # without, then with, the count of the refresh before
        srv.reset_counters()
        vms = await client.vms()
        assert len(vms) == n
        real = math.ceil(n / 10)
        assert srv.requests[DOMAINS] <= real + FIRST_WINDOW + 1  # was 9,999
    assert "platform reported total=99990 but returned" in client.warnings[-1]


async def test_closed_port_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with VdiClient(f"http://127.0.0.1:{port}", "admin", "secret-pw") as client:
        with pytest.raises(VdiUnreachable) as info:
            await client.hosts()
    assert str(info.value) == f"cannot connect to http://127.0.0.1:{port}: connection refused"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server with a self-signed certificate; every request gets a 404."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("openssl is needed to make a self-signed certificate")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_tls_certificate_not_trusted(tls_server: str) -> None:
    async with VdiClient(tls_server, "admin", "secret-pw") as client:
        with pytest.raises(VdiTlsError) as info:
            await client.hosts()
    assert tls_server in str(info.value) and "--insecure" in str(info.value)
    async with VdiClient(tls_server, "admin", "secret-pw", verify_ssl=False) as client:
        with pytest.raises(VdiHttpError):  # connected; the stub answers 404
            await client.hosts()


async def test_secrets_never_appear(lab: Lab, default: sc.Scenario, caplog: Any) -> None:
    password = default.vdi.password
    srv, client = await lab(vdi={"token_ttl": 0.2})
    caplog.set_level("DEBUG")
    await client.login()
    first = client._token
    await asyncio.sleep(0.3)
    await client.hosts()  # a re-login: two tokens have been issued
    assert srv.requests[LOGIN] == 2 and "/ocloud/v1/host" in caplog.text
    token = client._token
    assert token
    texts = [repr(client), str(vars(client).get("username"))]
    texts += [f"{k}={v!r}" for k, v in vars(client).items() if not k.startswith("_")]
    for fault, params in [("http500", {}), ("not_json", {}), ("status", {"msg": "token bad"}),
                          ("status", {"code": 7, "msg": f"echo {token} {md5(password)}"})]:
        srv.set_fault(fault, **params)
        with pytest.raises(VdiError) as info:
            await client.vms()
        texts.append(str(info.value))
        assert "***" in texts[-1] or "echo" not in texts[-1]
    for text in [*texts, caplog.text]:
        assert_no_secrets(text, password, md5(password), first, token, client._token)


# --------------------------------------------------------------------------- pure parsing


def mock_client(answer: Callable[[httpx.Request], httpx.Response], **kw: Any) -> VdiClient:
    """A client whose login succeeds and whose other requests ``answer`` handles."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ocloud/v1/login":
            return httpx.Response(200, json={"status": 0, "msg": "ok",
                                             "data": {"token": "tok-0123456789"}})
        return answer(request)

    return VdiClient("http://vdi.test", "admin", "pw-secret",
                     transport=httpx.MockTransport(handler), **kw)


def domains(doc: Any) -> VdiClient:
    body = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
    return mock_client(lambda r: httpx.Response(200, content=body,
                                                headers={"Content-Type": "application/json"}))


def page(items: Any, total: Any = None, **extra: Any) -> dict[str, Any]:
    total = len(items) if total is None and isinstance(items, list) else total
    return {"status": 0, "msg": "ok", "data": {"list": items, "total": total, "pageNum": 1,
                                               "pageSize": 100, "pages": 1, **extra}}


VM = {"id": "a", "name": "vm-a", "status": 1, "cpu": 4, "memory": 8192, "hostId": "h1"}


@pytest.mark.parametrize(("doc", "where"), [
    ({"status": 0, "msg": "ok"}, "data: missing"),
    ({"status": 0, "data": None}, "data: expected an object, got null"),
    (page({"a": 1}, total=1), "data.list: expected a list, got an object"),
    (page([VM, {**VM, "id": None}]), "data.list[1].id: missing"),
    (page([{"id": "x"}]), "data.list[0].name: missing"),
    (page([{**VM, "cpu": "four"}]), "data.list[0].cpu: expected integer, got 'four'"),
    (page([{**VM, "cpu": True}]), "data.list[0].cpu: expected integer, got True"),
    (page([{**VM, "memory": 1.5}]), "data.list[0].memory: expected integer, got 1.5"),
    (page([{**VM, "hostId": ["h"]}]), "data.list[0].hostId: expected a string, got a list"),
    (page(["vm"]), "data.list[0]: expected an object, got 'vm'"),
    (page([VM], total=10**9, pageSize=1), "data.total: 1000000000 items would take more than"),
    (page([VM], total=10**400, pageSize=1), "items would take more than 10000 pages"),
    ({"status": 0, "data": {"list": [VM], "pages": 10**6}}, "data.pages: 1000000 pages is absurd"),
    (page([VM], total="many"), "data.total: expected integer, got 'many'"),
    ([1, 2], "answer: expected a JSON object, got a list"),
    ({"msg": "ok", "data": {}}, "status: missing"),
])
async def test_shape_errors(doc: Any, where: str) -> None:
    async with domains(doc) as client:
        with pytest.raises(VdiShapeError) as info:
            await client.vms()
    assert str(info.value).startswith("http://vdi.test GET /ocloud/v1/domain: unexpected answer")
    assert where in str(info.value)


async def test_lenient_values_become_models() -> None:
    items = [{"id": 7, "name": "seven", "status": "1", "cpu": 4.0, "memory": None, "hostId": 3},
             {"id": "b", "name": "bee", "memory": " 2048 ", "ip": None},
             {"id": 7, "name": "seven again"}]
    async with domains(page(items, total=2, pageSize=None)) as client:
        vms = await client.vms()
        assert vms == [VdiVm(id="7", name="seven", status=1, vcpu=4, memory_mb=None, host_id="3"),
                       VdiVm(id="b", name="bee", status=None, vcpu=None, memory_mb=2048,
                             host_id="")]
        assert client.warnings == []  # a duplicate id, but the unique count matches total


async def test_status_as_string_and_deep_json() -> None:
    async with domains({**page([VM]), "status": "0"}) as client:
        assert len(await client.vms()) == 1
    async with domains(b"[" * 100_000) as client:
        with pytest.raises(VdiError):
            await client.vms()


async def test_without_total_walks_until_a_short_page() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        num = int(request.url.params["pageNum"])
        items = [{**VM, "id": f"{num}-{i}"} for i in range(2 if num < 3 else 1)]
        return httpx.Response(200, json={"status": 0, "data": {"list": items}})

    async with mock_client(answer, page_size=2) as client:
        assert len(await client.vms()) == 5
        assert client.requests == 4


async def test_a_server_ignoring_page_num_is_not_walked_forever() -> None:
    async with domains({"status": 0, "data": {"list": [VM, {**VM, "id": "b"}]}}) as client:
        assert len(await client.vms()) == 2
        assert client.requests == 3  # login, page 1, page 2 (the same again: stop)
        assert "ignores pageNum" in client.warnings[0]


@pytest.mark.parametrize(("exc", "cls", "text"), [
    (httpx.ConnectTimeout("timed out"), VdiUnreachable, "timed out after 5 s"),
    (httpx.ReadTimeout("timed out"), VdiUnreachable, "no answer within 10 s"),
    (httpx.ConnectError("[Errno -2] Name or service not known"), VdiUnreachable,
     "host name not found"),
    (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
     VdiTlsError, "--insecure"),
    (httpx.RemoteProtocolError("Server disconnected"), VdiUnreachable, "RemoteProtocolError"),
])
async def test_transport_errors_are_mapped(exc: Exception, cls: type[VdiError], text: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with VdiClient("http://vdi.test", "admin", "pw",
                         transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(cls) as info:
            await client.hosts()
    assert text in str(info.value) and "http://vdi.test" in str(info.value)


async def test_echoed_secrets_are_scrubbed() -> None:
    password = "pw-secret"

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json={"status": 1001, "msg": f"bad password {body['password']}"
                                                                f" for {password}"})

    async with VdiClient("http://vdi.test", "admin", password,
                         transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(VdiAuthError) as info:
            await client.login()
        assert "bad password ***" in str(info.value)
        assert_no_secrets(str(info.value) + repr(client), password, md5(password))


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-3, 300),
                      st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=20), st.text(min_size=200, max_size=400))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def mostly(good: st.SearchStrategy[Any], odds: int = 20) -> st.SearchStrategy[Any]:
    """``good`` most of the time, any JSON value once in ``odds``: many examples parse."""
    return st.integers(0, odds - 1).flatmap(lambda n: json_value if n == 0 else good)


number = st.one_of(st.integers(0, 1 << 20), st.integers(0, 99).map(str),
                   st.integers(0, 64).map(float), st.none())
text = st.one_of(st.text(max_size=12), st.text(min_size=200, max_size=300), st.none())
vm_item = mostly(st.fixed_dictionaries(
    {"id": mostly(st.one_of(st.text(min_size=1, max_size=8), st.integers(0, 50))),
     "name": mostly(st.text(max_size=300))},
    optional={**{k: mostly(number) for k in ("status", "cpu", "memory")},
              **{k: mostly(text) for k in ("hostId", "hostName", "desktopPoolId", "ip")}}))
page_head = mostly(st.one_of(st.none(), st.integers(-5, 40)), 6)
page_result = st.fixed_dictionaries(
    {"list": mostly(st.lists(vm_item, max_size=6), 6)},
    optional={"total": page_head, "pageSize": page_head, "pages": page_head})
domain_answer = st.one_of(
    mostly(st.fixed_dictionaries({"status": mostly(st.just(0), 6), "msg": json_value,
                                  "data": mostly(page_result, 6)}), 6))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=domain_answer)
def test_any_answer_gives_vms_or_a_vdi_error(doc: Any) -> None:
    async def run() -> None:
        async with domains(doc) as client:
            try:
                vms = await client.vms()
            except VdiError as exc:
                assert str(exc) and "\n" not in str(exc)
            else:
                assert isinstance(vms, list) and all(isinstance(v, VdiVm) for v in vms)

    asyncio.run(run())
