"""A simulated OCloudView 9.0 management server on loopback (stdlib only).

It serves the part of the vendor API vditui uses (see ``shared/vendor/README.md``) from a
:class:`~vditui.lab.scenario.Scenario`, lets chaos change what the platform believes
(:meth:`VdiServer.set_vm_status` and friends) and can misbehave on purpose
(:meth:`VdiServer.set_fault`, and for the action endpoints :meth:`VdiServer.set_action_fault`).
The action endpoints (start, close, reboot, sync-status) act on the lab's real libvirt hosts
(:mod:`vditui.lab.platform_actions`). Like the real platform, API errors are HTTP 200 with a
non-zero ``status``; only an unknown path is an HTTP error.

The lab is the world, not the engine's mirror: nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from vditui.lab.action_faults import DropConnection
from vditui.lab.platform_actions import PlatformActions
from vditui.lab.scenario import Scenario
from vditui.lab.vdi_data import (
    E_BAD_REQUEST,
    E_INTERNAL,
    E_LOGIN,
    E_NOT_FOUND,
    E_TOKEN,
    ApiError,
    HostState,
    Request,
    VdiState,
    VmState,
    ok_answer,
    page,
    str_set,
)
from vditui.lab.vdi_more import MoreEndpoints

FAULTS = ("http500", "not_json", "status", "slow", "short_page", "bad_total")
MSG_TOKEN = "token已过期，请重新登录 (token expired, log in again)"
MSG_NO_TOKEN = "token为空，请先登录 (no token, log in first)"
MSG_INTERNAL = "系统内部错误 (internal error)"
HTML_500 = (b"<html><head><title>500 Internal Server Error</title></head><body>"
            b"<center><h1>500 Internal Server Error</h1></center><hr><center>nginx</center>"
            b"</body></html>")
# What a reverse proxy shows when the Java backend is away: HTTP 200, and not JSON.
HTML_PAGE = ("<html><head><title>OCloudView</title></head><body>"
             "<div id=\"app\">系统维护中 (under maintenance)</div></body></html>").encode()


Handler = Callable[[Request], dict[str, Any]]


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    owner: VdiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a dropped client is not news in the lab.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real platform behind nginx
    # Headers and body go out as two writes; with Nagle on, each answer waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server_version = "nginx"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection must not pin a thread forever
    server: _Httpd

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def _dispatch(self) -> None:
        self.server.owner._serve(self, self.command)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def send(self, http: int, body: bytes, ctype: str) -> None:
        try:
            self.send_response(http)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


class VdiServer:
    """The simulated platform. All mutable state sits behind one lock; handlers build their
    answer under it, so every answer is a consistent snapshot."""

    def __init__(self, scenario: Scenario, host_ips: dict[str, str], address: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.scenario = scenario
        self.address = address
        self._port = port
        self._lock = threading.Lock()
        self._host_ips = dict(host_ips)
        self._state = VdiState(scenario, host_ips)
        self._tokens: dict[str, float] = {}
        self._fault: tuple[str, dict[str, Any]] | None = None
        self._conns: set[socket.socket] = set()
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        #: The action endpoints: ``actions.hypervisors`` (the lab's hosts), ``.close_timeout``,
        #: ``.requests`` and ``.outcomes`` (what was asked and done); see :attr:`action_delay`.
        self.actions = PlatformActions(self._lock, lambda: self._state, self._stopping)
        #: Requests seen per route, e.g. ``requests["GET /ocloud/v1/domain"]``.
        self.requests: collections.Counter[str] = collections.Counter()
        # The read-only endpoints about people, kinds, alarms and tasks (issue 20).
        self._more = MoreEndpoints(self._lock, lambda: self._state,
                                   lambda r: self._page_args(r)[:2])
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        for method, template, handler in [
            ("POST", "/ocloud/v1/login", self._login),
            ("GET", "/ocloud/v1/host", self._host_list),
            ("GET", "/ocloud/v1/host/{id}", self._host_detail),
            ("POST", "/ocloud/v1/host/{id}/sync-status", self._host_sync),
            ("GET", "/ocloud/v1/domain", self._domain_list),
            ("POST", "/ocloud/v1/domain/start", lambda r: self._batch(r, "start")),
            ("POST", "/ocloud/v1/domain/close", lambda r: self._batch(r, "close")),
            ("POST", "/ocloud/v1/domain/reboot", lambda r: self._batch(r, "reboot")),
            ("GET", "/ocloud/v1/domain/active-user", self._more.active_users),
            ("GET", "/ocloud/v1/domain/user-stat", self._more.user_stat),
            ("GET", "/ocloud/v1/domain/{id}", self._domain_detail),
            ("GET", "/ocloud/v1/model", lambda r: self._more.vm_page(r, {"template"})),
            ("GET", "/ocloud/v1/recycle", lambda r: self._more.vm_page(r, {"recycled"})),
            ("GET", "/ocloud/v1/user", self._more.users),
            ("GET", "/ocloud/v1/alarm", self._more.alarms),
            ("GET", "/ocloud/v1/event/{id}", self._more.event),
            ("POST", "/ocloud/v1/domain/{id}/sync-status", self._domain_sync),
            ("GET", "/ocloud/v1/desk-pool", self._desk_pools),
        ]:
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            self._routes.append((method, pattern, f"{method} {template}", handler))

    # ----------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind and serve in a daemon thread. Port 0 picks a free port; a restart after
        :meth:`stop` binds the same port again, so clients can reconnect."""
        if self._httpd is not None:
            raise RuntimeError("VdiServer is already running")
        httpd = _Httpd((self.address, self._port), _Handler)
        httpd.owner = self
        self._port = httpd.server_address[1]
        self._stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"vdi-server:{self._port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and close the socket. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        self._stopping.set()
        # Actions under way finish their libvirt call before the lab closes its connections.
        self.actions.wait_idle(5)
        httpd.shutdown()
        # Idle keep-alive handlers would otherwise go on answering after the server "died".
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if not self._port:
            raise RuntimeError("VdiServer has not been started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.address}:{self.port}"

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ----------------------------------------------------------------------- chaos

    def set_vm_status(self, vm_uuid: str, status: int) -> None:
        """The platform's view of a VM (by scenario ``VmSpec.uuid``) changes status. A VM the
        platform does not know (no VDI side) is ignored; a UUID not in the scenario is a
        KeyError."""
        with self._lock:
            self._state.set_vm_status(vm_uuid, status)

    def set_vm_host(self, vm_uuid: str, host_name: str) -> None:
        """The platform now believes the VM runs on ``host_name`` (same rules as
        :meth:`set_vm_status`; an unknown host is a KeyError)."""
        with self._lock:
            self._state.set_vm_host(vm_uuid, host_name)

    def set_session(self, vm_uuid: str, connected: bool) -> None:
        """The bound user of the VM (by scenario ``VmSpec.uuid``) connects or disconnects now
        (a VM without a bound user is a ValueError)."""
        with self._lock:
            self._state.set_session(vm_uuid, connected)

    def set_host_status(self, host_name: str, status: int) -> None:
        """The platform's HostVO.status for ``host_name`` changes."""
        with self._lock:
            self._state.set_host_status(host_name, status)

    def expire_tokens(self) -> None:
        """Every token issued so far is invalid from now on."""
        with self._lock:
            self._tokens.clear()

    def set_fault(self, fault: str | None, **params: Any) -> None:
        """Misbehave on every request: ``http500``, ``not_json``, ``status`` (code=, msg=),
        ``slow`` (seconds=), ``short_page`` or ``bad_total`` (extra=); None clears."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; use one of {FAULTS}")
        if fault == "slow" and not isinstance(params.get("seconds"), int | float):
            raise ValueError("fault 'slow' needs seconds=<number>")
        if fault == "status" and not isinstance(params.get("code", E_INTERNAL), int):
            raise ValueError("fault 'status' takes code=<int>")
        if fault == "bad_total" and not isinstance(params.get("extra", 5), int):
            raise ValueError("fault 'bad_total' takes extra=<int>")
        with self._lock:
            self._fault = None if fault is None else (fault, dict(params))

    # ----------------------------------------------------------------------- actions

    @property
    def action_delay(self) -> float:
        """Seconds between an action request and the libvirt change (default 1.0)."""
        return self.actions.delay

    @action_delay.setter
    def action_delay(self, seconds: float) -> None:
        self.actions.delay = float(seconds)

    def set_action_fault(self, kind: str | None, **params: Any) -> None:
        """Misbehave on the action endpoints: ``error_list`` (vms=[uuid|name|id, ...],
        msg=), ``status`` (code=, msg=), ``hang`` (seconds=, act=), ``drop_after_act``,
        ``unauthorized_after_act``; every
        kind takes actions=[start, close, reboot, sync, host_sync] and times=N. None clears.
        See :mod:`vditui.lab.action_faults`."""
        self.actions.faults.set(kind, **params)

    def wait_actions(self, timeout: float = 30.0) -> bool:
        """Wait until every accepted action has been carried out; False on timeout."""
        return self.actions.wait_idle(timeout)

    def reset_records(self) -> None:
        """Forget every change to the platform's records (back to the scenario's), the action
        fault, and the action requests and outcomes seen."""
        self.actions.faults.set(None)
        self.actions.wait_idle(30)
        with self._lock:
            self._state = VdiState(self.scenario, self._host_ips)
            self.actions.requests.clear()
            self.actions.outcomes.clear()

    def reset_counters(self) -> None:
        """Forget the request counts."""
        with self._lock:
            self.requests.clear()

    # ----------------------------------------------------------------------- dispatch

    def _serve(self, h: _Handler, method: str) -> None:
        try:
            body = self._read_body(h)
        except (OSError, ValueError):
            h.close_connection = True
            h.send(400, _wrap(E_BAD_REQUEST, "请求格式错误 (bad request)"), _JSON)
            return
        split = urlsplit(h.path)
        path = split.path.rstrip("/") or "/"
        route = params = None
        path_known = False
        for r_method, pattern, template, handler in self._routes:
            if m := pattern.match(path):
                path_known = True
                if r_method == method:
                    route, params = (template, handler), {k: unquote(v) for k, v in
                                                          m.groupdict().items()}
                    break
        with self._lock:
            self.requests[route[0] if route else f"{method} <unknown>"] += 1
            fault = self._fault
        if fault and self._apply_fault(h, *fault):
            return
        try:
            if route is None or params is None:
                if path_known:
                    raise ApiError(405, f"不支持的请求方法 (method {method} not allowed)", 405)
                raise ApiError(E_NOT_FOUND, f"接口不存在 (no such path: {path})", 404)
            query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            if route[0] != "POST /ocloud/v1/login":
                self._check_token(h.headers.get("Token"))
            data = route[1](Request(params, query, body))
            h.send(200, json.dumps(data, ensure_ascii=False).encode(), _JSON)
        except DropConnection:
            h.close_connection = True  # no answer at all: the client sees the connection end
        except ApiError as exc:
            h.send(exc.http, _wrap(exc.status, exc.msg), _JSON)
        except Exception:  # noqa: BLE001 - a handler bug answers 500, never a traceback
            # Never a traceback on the wire or on stderr: the simulator answers like a Java
            # platform whose controller threw.
            h.send(500, _wrap(E_INTERNAL, MSG_INTERNAL), _JSON)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            raise ValueError("chunked request bodies are not supported")
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length > 0 else b""

    def _apply_fault(self, h: _Handler, fault: str, params: dict[str, Any]) -> bool:
        """Answer per the fault and return True, or return False to answer normally."""
        if fault == "http500":
            h.send(500, HTML_500, "text/html")
        elif fault == "not_json":
            h.send(200, HTML_PAGE, "text/html;charset=UTF-8")
        elif fault == "status":
            h.send(200, _wrap(int(params.get("code", E_INTERNAL)),
                              str(params.get("msg", MSG_INTERNAL))), _JSON)
        elif fault == "slow":
            self._stopping.wait(float(params["seconds"]))
            return False
        else:
            return False
        return True

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise ApiError(E_TOKEN, MSG_NO_TOKEN)
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            raise ApiError(E_TOKEN, MSG_TOKEN)

    def _page_args(self, r: Request) -> tuple[int, int, bool, int]:
        page_num = max(1, r.int_arg("pageNum", 1))
        size = r.int_arg("pageSize", 10)
        size = 10 if size < 1 else min(size, self.scenario.vdi.max_page_size)
        fault = self._fault  # read under the caller's lock
        short = fault is not None and fault[0] == "short_page"
        extra = int(fault[1].get("extra", 5)) if fault and fault[0] == "bad_total" else 0
        return page_num, size, short, extra

    # ----------------------------------------------------------------------- endpoints

    def _login(self, r: Request) -> dict[str, Any]:
        doc = r.json()
        user, password = doc.get("username"), doc.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise ApiError(E_BAD_REQUEST, "参数错误：username和password必填 "
                                          "(username and password are required strings)")
        vdi = self.scenario.vdi
        want = hashlib.md5(vdi.password.encode()).hexdigest()
        if user != vdi.username or password.lower() != want:
            raise ApiError(E_LOGIN, "用户名或密码错误 (wrong username or password)")
        token = secrets.token_hex(16)
        now = time.monotonic()
        with self._lock:
            # Drop dead tokens here so a long lab run does not grow the table without bound.
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + vdi.token_ttl
        return _ok({"token": token, "username": user, "roleLevel": "1", "userPri": 1,
                    "resourcePri": 1})

    def _host_list(self, r: Request) -> dict[str, Any]:
        with self._lock:
            page_num, size, short, extra = self._page_args(r)
            hosts = self._state.find_hosts(r.query.get("name"), r.int_set("status"),
                                           r.query.get("poolId"), str_set(r.query.get("arch")))
            head, chunk = page(hosts, page_num, size, short=short, extra_total=extra)
            counts = self._state.running_counts()
            rows = [self._state.host_vo(h, counts[h.spec.name]) for h in chunk]
        return _ok({**head, "list": rows})

    def _host_state(self, host_id: str) -> HostState:
        name = self._state.host_by_id.get(host_id)
        if name is None:
            raise ApiError(E_NOT_FOUND, f"主机不存在 (no such host: {host_id})")
        return self._state.hosts[name]

    def _host_detail(self, r: Request) -> dict[str, Any]:
        with self._lock:
            return _ok(self._state.host_detail_vo(self._host_state(r.params["id"])))

    def _host_sync(self, r: Request) -> dict[str, Any]:
        return self.actions.host_sync(r, self._host_state)

    def _domain_list(self, r: Request) -> dict[str, Any]:
        with self._lock:
            page_num, size, short, extra = self._page_args(r)
            vms = self._state.find_vms(
                r.query.get("hostId"), r.int_set("status"), r.query.get("keyword"),
                r.query.get("poolId"), isConnected=r.query.get("isConnected"),
                isBindUser=r.query.get("isBindUser"), motherId=r.query.get("motherId"))
            head, chunk = page(vms, page_num, size, short=short, extra_total=extra)
            rows = [self._state.domain_vo(vm) for vm in chunk]
        return _ok({**head, "list": rows})

    def _vm_state(self, vm_id: str) -> VmState:
        found = self._state.vms_by_ids([vm_id])[0][1]
        if found is None:
            raise ApiError(E_NOT_FOUND, f"虚机不存在 (no such VM: {vm_id})")
        return found

    def _domain_detail(self, r: Request) -> dict[str, Any]:
        with self._lock:
            return _ok(self._state.domain_vo(self._vm_state(r.params["id"])))

    def _domain_sync(self, r: Request) -> dict[str, Any]:
        return self.actions.domain_sync(r, self._vm_state)

    def _batch(self, r: Request, action: str) -> dict[str, Any]:
        """start, close or reboot a batch of VMs (DomainBatchTaskDto)."""
        return self.actions.batch(r, action, self._host_state)

    def _desk_pools(self, r: Request) -> dict[str, Any]:
        with self._lock:
            page_num, size = self._page_args(r)[:2]
            pools = self._state.desk_pool_vos()
        keyword = r.query.get("keyword")
        if keyword:
            pools = [p for p in pools if keyword.casefold() in p["name"].casefold()]
        # Faults that lie about pages target the host and domain lists only.
        head, chunk = page(pools, page_num, size)
        return _ok({**head, "list": chunk})


_JSON = "application/json;charset=UTF-8"


_ok = ok_answer


def _wrap(status: int, msg: str) -> bytes:
    # No "data" key: the spec's data schemas are objects, and null would not validate.
    return json.dumps({"status": status, "msg": msg}, ensure_ascii=False).encode()
