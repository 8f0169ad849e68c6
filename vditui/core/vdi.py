"""An async client for the OCloudView 9.0 management API: hosts, VMs and desktop pools.

Every failure surfaces as a :class:`VdiError` subclass whose one-line message names the platform
URL and the cause, so the UI can show it as is. Secrets (the password, its MD5, the token) are
never logged, never kept in a public attribute and scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from vditui.core.models import DesktopPool, PlatformAlarm, VdiHost, VdiInventory, VdiUser, VdiVm
from vditui.core.settings import DEFAULTS
from vditui.core.vdi_errors import (
    VdiAmbiguousAnswer as VdiAmbiguousAnswer,
)
from vditui.core.vdi_errors import (
    VdiAuthError as VdiAuthError,
)
from vditui.core.vdi_errors import (
    VdiError as VdiError,
)
from vditui.core.vdi_errors import (
    VdiHttpError as VdiHttpError,
)
from vditui.core.vdi_errors import (
    VdiNotJson as VdiNotJson,
)
from vditui.core.vdi_errors import (
    VdiShapeError as VdiShapeError,
)
from vditui.core.vdi_errors import (
    VdiStatusError as VdiStatusError,
)
from vditui.core.vdi_errors import (
    VdiTlsError as VdiTlsError,
)
from vditui.core.vdi_errors import (
    VdiTooLarge as VdiTooLarge,
)
from vditui.core.vdi_errors import (
    VdiUnreachable as VdiUnreachable,
)
from vditui.core.vdi_errors import is_token_refusal, transport_error
from vditui.core.vdi_parse import (
    ShapeProblem,
    TaskEvent,
    as_int,
    attach_users,
    merge_vms,
    one_line,
    parse_alarm,
    parse_event,
    parse_host,
    parse_page,
    parse_pool,
    parse_recycled,
    parse_template,
    parse_user,
    parse_vm,
    show_value,
)

log = logging.getLogger("vditui.vdi")
T = TypeVar("T")
R = TypeVar("R", VdiHost, VdiVm, DesktopPool, VdiUser, PlatformAlarm)

LOGIN_PATH, HOST_PATH = "/ocloud/v1/login", "/ocloud/v1/host"
DOMAIN_PATH, POOL_PATH = "/ocloud/v1/domain", "/ocloud/v1/desk-pool"
# Read beside the domain list, which may omit templates and the recycle bin (see merge_vms).
MODEL_PATH, RECYCLE_PATH = "/ocloud/v1/model", "/ocloud/v1/recycle"
USER_PATH, ALARM_PATH, EVENT_PATH = "/ocloud/v1/user", "/ocloud/v1/alarm", "/ocloud/v1/event"
MAX_PAGES = 10_000
"""Past this many pages a list is absurd, whatever its total says: refused."""
MAX_ANSWER = 64 << 20
"""Bytes: an answer larger than this is refused (read as it streams in, never held whole)."""
FIRST_WINDOW = 16
"""Pages fetched at once after page 1 when no earlier total of the list is known; the window
doubles while every page comes back with items, so a ``total`` that lies costs a few GETs
past the real end, not one per page it claims."""
MAX_WARNINGS = 100  # a long-running UI refreshes forever; keep only the recent ones


class VdiClient:
    """The platform's view of hosts, VMs and desktop pools. Use as ``async with VdiClient(...)``.

    Logs in lazily on the first request and again, once, when the platform refuses the token.
    ``requests`` counts HTTP requests made; ``warnings`` keeps recent data-quality warnings
    (e.g. a page total that does not match the items returned).
    """

    def __init__(self, base_url: str, username: str, password: str, *,
                 verify_ssl: bool = DEFAULTS.verify_ssl,
                 connect_timeout: float = DEFAULTS.connect_timeout,
                 timeout: float = DEFAULTS.call_timeout, page_size: int = DEFAULTS.page_size,
                 page_concurrency: int = DEFAULTS.page_concurrency,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.strip().rstrip("/")
        try:
            url = httpx.URL(self.base_url)
            ok = url.scheme in ("http", "https") and bool(url.host)
            userinfo = bool(url.userinfo)
        except (httpx.InvalidURL, ValueError, TypeError):
            ok = userinfo = False
        if userinfo:
            # The URL goes into every message and log line: never with a password in it.
            shown = str(url.copy_with(username=None, password=None))
            raise VdiError(shown, f"{shown}: user names and passwords do not belong in the "
                                  "platform URL; give the user name and password separately")
        if not ok:
            raise VdiError(self.base_url, f"{self.base_url!r} is not an http(s):// URL")
        self.username = username
        self.connect_timeout, self.timeout = connect_timeout, timeout
        # httpx's timeouts are per read: a platform dripping a byte at a time would never
        # trip them. This bounds each request whole, from connecting to its answer's last byte.
        self.deadline = connect_timeout + timeout
        self._last_counts: dict[tuple[str, str], int] = {}  # (path, params) -> items last time
        self.page_size = max(1, page_size)
        self.requests = 0
        self.warnings: list[str] = []
        self._optional_failed: set[str] = set()
        self._password = password
        self._password_md5 = hashlib.md5(password.encode()).hexdigest()
        self._token: str | None = None
        self._old_tokens: collections.deque[str] = collections.deque(maxlen=8)
        # Every login attempt bumps the sequence: a task that saw an expired token only logs in
        # if nobody else has tried since, so N concurrent expiries cost one login.
        self._login_seq = 0
        self._login_error: VdiError | None = None
        self._login_lock = asyncio.Lock()
        self._page_sem = asyncio.Semaphore(max(1, page_concurrency))
        self._http = httpx.AsyncClient(
            base_url=self.base_url, verify=verify_ssl, transport=transport,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"Accept": "application/json"})

    def __repr__(self) -> str:
        return f"VdiClient(base_url={self.base_url!r}, username={self.username!r})"

    async def __aenter__(self) -> VdiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ----------------------------------------------------------------------- public calls

    async def login(self) -> None:
        """Log in now (otherwise the first request does). Raises VdiAuthError if refused."""
        async with self._login_lock:
            await self._login_locked()

    async def hosts(self) -> list[VdiHost]:
        """Every host the platform knows (HostVO)."""
        return await self._paginate(HOST_PATH, {}, parse_host, "hosts")

    async def vms(self, host_id: str | None = None, pool_id: str | None = None) -> list[VdiVm]:
        """Every VM (DomainVO), or only those the platform places on ``host_id``, or on the
        hosts of resource pool ``pool_id`` (the domain list's own filters)."""
        params = {k: v for k, v in (("hostId", host_id), ("poolId", pool_id)) if v}
        return await self._paginate(DOMAIN_PATH, params, parse_vm, "VMs")

    async def pools(self) -> list[DesktopPool]:
        """Every desktop pool (DesktopPoolVO)."""
        return await self._paginate(POOL_PATH, {}, parse_pool, "desktop pools")

    async def inventory(
        self, on_hosts: Callable[[list[VdiHost]], None] | None = None
    ) -> VdiInventory:
        """Hosts, VMs and pools, fetched concurrently. ``on_hosts`` gets the host list as soon
        as it is complete, while the VM pages are still coming (so libvirt sessions can start)."""
        before = self.requests

        async def hosts_first() -> list[VdiHost]:
            found = await self.hosts()
            if on_hosts is not None:
                on_hosts(found)
            return found

        # Lists of different item types: a list[T] of them can only say list[object].
        lists: list[Any] = await _gather([hosts_first(), self.vms(), self.pools(), self.extras()])
        hosts, vms, pools, (templates, recycled, users, alarms) = lists
        vms = attach_users(merge_vms(vms, templates, recycled), users)
        return VdiInventory(hosts=tuple(hosts), vms=tuple(vms),
                            pools=tuple(pools), fetched_at=time.time(),
                            requests=self.requests - before, users=tuple(users),
                            alarms=tuple(alarms))

    async def extras(self) -> tuple[list[VdiVm], list[VdiVm], list[VdiUser],
                                    list[PlatformAlarm]]:
        """What the comparison is better with beyond hosts, VMs and pools, each optional (a
        platform that refuses one gets one warning): the templates, the recycle bin, the users
        and the live alarms."""
        lists: list[Any] = await _gather([
            self._optional(MODEL_PATH, parse_template, "templates"),
            self._optional(RECYCLE_PATH, parse_recycled, "recycle bin"),
            self._optional(USER_PATH, parse_user, "users", shown_only=True),
            self._optional(ALARM_PATH, parse_alarm, "alarms", shown_only=True)])
        templates, recycled, users, alarms = lists
        return templates, recycled, users, alarms

    async def event(self, event_id: str) -> TaskEvent:
        """One platform task (GET /ocloud/v1/event/{id}): failed, and the platform's reason."""
        path = f"{EVENT_PATH}/{event_id}"
        doc = await self._get(path, {})
        try:
            return parse_event(doc.get("data"), "data")
        except ShapeProblem as bad:
            raise self._shape(f"GET {path}", bad) from None

    async def _optional(self, path: str, parse: Callable[[Any, str], R], what: str,
                        shown_only: bool = False) -> list[R]:
        """A list the comparison is better with but can do without (templates, recycle bin,
        users, alarms): a platform that refuses it gets one warning, not a failed refresh.
        ``shown_only``: a list that only adds to what is shown (users, alarms), so one that does
        not come in time is done without this refresh too; the templates and the recycle bin
        decide what is a drift, and a refresh without them would invent some."""
        failures: tuple[type[VdiError], ...] = (VdiHttpError, VdiStatusError, VdiNotJson,
                                                VdiShapeError)
        if shown_only:
            failures += (VdiUnreachable,)
        try:
            return await self._paginate(path, {}, parse, what)
        except failures as exc:
            if path not in self._optional_failed:
                self._optional_failed.add(path)
                self._warn(f"{what} not read (vditui goes on without them): {exc}")
            return []

    # ----------------------------------------------------------------------- login

    async def _relogin(self, seen_seq: int) -> None:
        """Log in unless another task has tried since ``seen_seq``; share its failure if so."""
        async with self._login_lock:
            if self._login_seq == seen_seq:
                await self._login_locked()
            elif self._login_error is not None:
                # Retrying a refused login at once only risks locking the account.
                raise self._login_error

    async def _login_locked(self) -> None:
        if self._token:
            self._old_tokens.append(self._token)
        try:
            token = await self._do_login()
        except VdiError as exc:
            self._token, self._login_error = None, exc
            raise
        finally:
            # Bumped only once the attempt is over, so tasks that queued up behind it see it.
            self._login_seq += 1
        self._token, self._login_error = token, None

    async def _do_login(self) -> str:
        where = f"POST {LOGIN_PATH}"
        body = {"username": self.username, "password": self._password_md5, "client": ""}
        resp = await self._send("POST", LOGIN_PATH, None, body, None)
        refused = f"login as {self.username!r} refused"
        if resp.status_code in (401, 403):
            raise self._fail(VdiAuthError, where, f"{refused}: HTTP {resp.status_code}",
                             status=resp.status_code, msg="")
        doc = await self._decode(resp, where)
        status, msg = doc["status"], doc["msg"]
        if status != 0:
            raise self._fail(VdiAuthError, where, f"{refused}: {msg or '(no message)'} "
                             f"(status {status})", status=status, msg=msg)
        data = doc.get("data")
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            problem = (ShapeProblem("data", f"expected an object, got {show_value(data)}")
                       if not isinstance(data, dict) else
                       ShapeProblem("data.token", f"expected a string, got {show_value(token)}"))
            raise self._shape(where, problem)
        log.debug("logged in to %s as %s", self.base_url, self.username)
        return token

    # ----------------------------------------------------------------------- requests

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET with the token; on a refused token log in again once and retry. Returns the
        wrapper."""
        return await self._call("GET", path, params, None, acts=False)

    async def _call(self, method: str, path: str, params: dict[str, Any] | None,
                    body: dict[str, Any] | None, *, acts: bool) -> dict[str, Any]:
        """A request with the token, sent again (once, after logging in) only when the answer
        refused the token: the platform's own refusal in the body (:func:`is_token_refusal`),
        or for a request that does not act (``acts`` False) an HTTP 401 too. A request that
        acts is never re-sent on an HTTP 401: a gateway in front of the platform may answer so
        after the platform acted (:class:`VdiAmbiguousAnswer`)."""
        where = f"{method} {path}"
        for attempt in (1, 2):
            if self._token is None:
                await self._relogin(self._login_seq)
            token, seq = self._token, self._login_seq
            resp = await self._send(method, path, params, body, token)
            if resp.status_code == 401:
                status, msg = 401, f"HTTP 401 {resp.reason_phrase}".strip()
                if acts:
                    said = f"the platform answered {msg} after the request was sent"
                    raise self._fail(VdiAmbiguousAnswer, where, said, detail=said)
            else:
                doc = await self._decode(resp, where)
                if doc["status"] == 0:
                    return doc
                status, msg = doc["status"], doc["msg"]
                if not is_token_refusal(status, msg):
                    raise self._fail(VdiStatusError, where, f"platform error {status}: "
                                     f"{msg or '(no message)'}", status=status, msg=msg)
            if attempt == 2:
                raise self._fail(VdiAuthError, where, f"token rejected even after logging in "
                                 f"again: {msg} (status {status})", status=status, msg=msg)
            log.debug("%s: token rejected (status %s), logging in again", where, status)
            await self._relogin(seq)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, method: str, path: str, params: dict[str, Any] | None,
                    body: dict[str, Any] | None, token: str | None) -> httpx.Response:
        """One request, bounded as a whole by :attr:`deadline` and its answer by
        :data:`MAX_ANSWER`; the answer comes back read."""
        self.requests += 1
        where = f"{method} {path}"
        try:
            async with asyncio.timeout(self.deadline):
                req = self._http.build_request(method, path, params=params, json=body,
                                               headers={"Token": token} if token else {})
                resp = await self._http.send(req, stream=True)
                try:
                    content = await self._read_capped(resp, where)
                finally:
                    await resp.aclose()
        except TimeoutError:
            raise VdiUnreachable(self.base_url, f"{self.base_url} {where}: no whole answer "
                                 f"within {self.deadline:g} s (connect and answer)") from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.base_url, where, self.connect_timeout,
                                  self.timeout, self._scrub) from exc
        log.debug("%s %s %s -> HTTP %s", method, path, params or "", resp.status_code)
        # Read already (decoded): the headers that describe the wire form no longer apply.
        headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in
                   ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(resp.status_code, headers=headers, content=content, request=req,
                              extensions={k: v for k, v in resp.extensions.items()
                                          if k == "reason_phrase"})

    async def _read_capped(self, resp: httpx.Response, where: str) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_ANSWER:
            raise self._too_large(where, f"it says {int(declared):,} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER:
                raise self._too_large(where, "more came")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, where: str, detail: str) -> VdiTooLarge:
        return VdiTooLarge(self.base_url, f"{self.base_url} {where}: answer larger than "
                           f"{MAX_ANSWER >> 20} MiB ({detail}): refused; is this the "
                           "platform's API, and page_size sensible?")

    async def _decode(self, resp: httpx.Response, where: str) -> dict[str, Any]:
        """Check the HTTP status and the JSON wrapper; returns it with int ``status``, str
        ``msg``."""
        if not 200 <= resp.status_code < 300:
            text = f"HTTP {resp.status_code} {resp.reason_phrase}".strip()
            if 300 <= resp.status_code < 400 and "Location" in resp.headers:
                text += f" (redirect to {resp.headers['Location']}; check the URL's scheme)"
            raise self._fail(VdiHttpError, where, text, status_code=resp.status_code)
        try:
            # A page of VMs is a large document: decode it off the event loop, which meanwhile
            # keeps delivering libvirt events and key presses.
            doc = await asyncio.to_thread(resp.json) if len(resp.content) > 65536 else resp.json()
        except (ValueError, RecursionError):
            ctype = resp.headers.get("Content-Type", "no content type")
            sample = one_line(resp.content[:400].decode("utf-8", "replace"), 80) or "(empty)"
            raise self._fail(VdiNotJson, where,
                             f"answer is not JSON ({ctype}): {sample!r}") from None
        try:
            if not isinstance(doc, dict):
                raise ShapeProblem("answer", f"expected a JSON object, got {show_value(doc)}")
            status = as_int(doc.get("status"), "status")
            if status is None:
                raise ShapeProblem("status", "missing")
        except ShapeProblem as bad:
            raise self._shape(where, bad) from None
        msg = doc.get("msg")
        return {**doc, "status": status, "msg": one_line(msg if isinstance(msg, str) else "", 200)}

    # ----------------------------------------------------------------------- pagination

    async def _paginate(self, path: str, params: dict[str, Any], parse: Callable[[Any, str], R],
                        what: str) -> list[R]:
        """Every item of a PageResult list: page 1, then the rest concurrently, deduplicated."""
        where = f"GET {path}"

        async def fetch(num: int) -> tuple[list[Any], dict[str, int | None]]:
            doc = await self._get(path, {**params, "pageNum": num, "pageSize": self.page_size})
            try:
                return parse_page(doc)
            except ShapeProblem as bad:
                raise self._shape(where, bad) from None

        async def bounded(num: int) -> tuple[int, list[Any]]:
            async with self._page_sem:
                return num, (await fetch(num))[0]

        items, head = await fetch(1)
        total, size = head["total"], head["pageSize"]
        # Servers clamp pageSize: trust the size they report (or sent), never the one we asked.
        size = size if size and size > 0 else len(items)
        count = (max(1, -(-total // size)) if total is not None and size > 0  # exact for huge
                 else head["pages"] and max(1, head["pages"]))
        if count and count > MAX_PAGES:
            problem = (ShapeProblem("data.total", f"{show_value(total)} items would take more "
                                                  f"than {MAX_PAGES} pages (absurd)")
                       if total is not None else
                       ShapeProblem("data.pages", f"{show_value(count)} pages is absurd "
                                                  f"(limit {MAX_PAGES})"))
            raise self._shape(where, problem)
        rows: list[tuple[int, list[Any]]] = [(1, items)]
        key = (path, repr(sorted(params.items())))
        if not count:  # neither total nor pages: walk on until a short or empty page
            while items and len(items) >= size and len(rows) < MAX_PAGES:
                prev, items = items, (await fetch(len(rows) + 1))[0]
                if items == prev:  # pageNum ignored: the same page would come back forever
                    self._warn(f"{self.base_url}: {where} ignores pageNum; kept page 1 only")
                    break
                rows.append((len(rows) + 1, items))
            count = len(rows)
        elif count > 1:
            rows += await self._pages_until_empty(bounded, count, size, key)
            count = len(rows)  # the pages read: past an empty one, a claimed total is not met
        def build() -> tuple[dict[str, R], int]:
            out: dict[str, R] = {}
            seen = 0
            for num, page in rows:
                for i, raw in enumerate(page):
                    try:
                        item = parse(raw, f"data.list[{i}]" +
                                     (f" (page {num})" if num > 1 else ""))
                    except ShapeProblem as bad:
                        raise self._shape(where, bad) from None
                    seen += 1
                    out.setdefault(item.id, item)
            return out, seen

        # Thousands of items: build the models off the event loop (see _decode).
        out, seen = await asyncio.to_thread(build) if len(rows) > 2 else build()
        self._last_counts[key] = len(out)
        if total is not None and len(out) != total:
            dupes = f" ({seen - len(out)} duplicates dropped)" if seen != len(out) else ""
            self._warn(f"{self.base_url}: platform reported total={total} but returned "
                       f"{len(out)} {what} over {count} page{'s' if count != 1 else ''}{dupes}")
        return list(out.values())

    async def _pages_until_empty(
            self, bounded: Callable[[int], Coroutine[Any, Any, tuple[int, list[Any]]]],
            count: int, size: int, key: tuple[str, str]) -> list[tuple[int, list[Any]]]:
        """Pages 2..``count`` in windows: the first as large as the list was last time (plus
        half again), or :data:`FIRST_WINDOW`; each next one twice as large, until a window
        holds an empty page (the real end: a ``total`` may lie) or ``count`` is reached."""
        last = self._last_counts.get(key)
        window = max(FIRST_WINDOW, -(-last * 3 // (2 * size))) if last else FIRST_WINDOW
        rows: list[tuple[int, list[Any]]] = []
        done = 1
        while done < count:
            upto = min(count, done + window)
            got = await _gather([bounded(n) for n in range(done + 1, upto + 1)])
            done = upto
            empty = [n for n, page in got if not page]
            if empty:
                rows += [(n, page) for n, page in got if n < min(empty)]
                break
            rows += got
            window *= 2
        return rows

    # ----------------------------------------------------------------------- helpers

    def _fail(self, cls: Callable[..., T], where: str, text: str, **attrs: Any) -> T:
        # The attributes too: ``msg`` is the platform's own text, which may echo the request.
        attrs = {k: self._scrub(v) if isinstance(v, str) else v for k, v in attrs.items()}
        return cls(self.base_url, self._scrub(f"{self.base_url} {where}: {text}"), **attrs)

    def _shape(self, where: str, bad: ShapeProblem) -> VdiShapeError:
        return self._fail(VdiShapeError, where, f"unexpected answer: {bad}")

    def _warn(self, text: str) -> None:
        log.warning("%s", text)
        self.warnings.append(text)
        del self.warnings[:-MAX_WARNINGS]

    def _scrub(self, text: str) -> str:
        # Defence in depth: a platform may echo the request in its error text.
        for secret in (self._password, self._password_md5, self._token, *self._old_tokens):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def scrub(self, text: str) -> str:
        """``text`` with this client's password and tokens (current and past) replaced by
        ``***``: for anything written from what the platform said (the audit trail)."""
        return self._scrub(text)


async def _gather(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest and raise it (not a group)."""
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c) for c in coros]
    except BaseExceptionGroup as group:
        leaves, first = [group], None
        while leaves:
            exc = leaves.pop(0)
            if isinstance(exc, BaseExceptionGroup):
                leaves.extend(exc.exceptions)
            elif first is None or (isinstance(exc, VdiError) and not isinstance(first, VdiError)):
                first = exc
        assert first is not None
        raise first from first.__cause__
    return [t.result() for t in tasks]
