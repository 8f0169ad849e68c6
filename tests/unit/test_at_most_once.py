"""At most once, within reach of a unit test: the platform's action lock (one holder across
processes, who holds it, waiting for it, no planted link followed), the narrow rule for the
platform's own token refusal (a licence message is not one; an HTTP 401 on an action is never
re-sent), and the audit trail's whole-line-or-nothing append on a full disk."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.full_disk import nearly_full_trail
from vditui.core import action_lock, audit
from vditui.core.action_lock import ActionLock, ActionLockBusy, Holder
from vditui.core.actions import ActionError
from vditui.core.vdi import VdiAmbiguousAnswer, VdiAuthError, VdiStatusError
from vditui.core.vdi_actions import Request, VdiActionClient
from vditui.core.vdi_errors import is_token_refusal

URL, USER = "https://vdi.example:8443", "admin"
ME = Holder(os.getpid(), "ws-1", "2026-12-08T01:02:03.000Z", "start office-12")

# --------------------------------------------------------------------------- the action lock


def test_one_holder_at_a_time_and_the_second_is_told_who(tmp_path: Path) -> None:
    first, second = ActionLock(tmp_path, URL, USER), ActionLock(tmp_path, URL, USER)
    assert first.try_acquire(ME)
    assert not second.try_acquire(ME)  # flock: a second open file is refused, same process too
    busy = second.busy()
    assert busy.holder == ME
    assert str(busy) == (f"another action on {URL} is running: pid {os.getpid()} on ws-1 since "
                         "2026-12-08T01:02:03.000Z (start office-12); nothing sent")
    assert (first.path.stat().st_mode & 0o777) == 0o600
    first.release()
    assert action_lock.read_holder(first.path) is None  # emptied on release
    assert second.try_acquire(ME)
    second.release()


def test_the_lock_is_per_platform_and_user(tmp_path: Path) -> None:
    a = ActionLock(tmp_path, URL, USER)
    assert a.try_acquire(ME)
    assert ActionLock(tmp_path, URL, "operator2").try_acquire(ME)
    assert ActionLock(tmp_path, "https://other.example", USER).try_acquire(ME)
    assert ActionLock(tmp_path, URL + "/", USER).path == a.path  # the same platform
    a.release()


def test_another_process_holds_it_until_it_exits(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from vditui.core.action_lock import "
            "ActionLock, this_process; lock = ActionLock(Path(sys.argv[1]), sys.argv[2], "
            "sys.argv[3]); assert lock.try_acquire(this_process('sync vm1', 'then')); "
            "print('held', flush=True); sys.stdin.readline()")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), URL, USER],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        mine = ActionLock(tmp_path, URL, USER)
        assert not mine.try_acquire(ME)
        holder = mine.busy().holder
        assert holder is not None and holder.pid == child.pid and holder.action == "sync vm1"
    finally:
        assert child.stdin is not None
        child.stdin.close()  # it exits; the kernel lets the lock go, however it ends
        child.wait(10)
    assert mine.try_acquire(ME)
    mine.release()


async def test_held_refuses_or_waits(tmp_path: Path) -> None:
    other = ActionLock(tmp_path, URL, USER)
    assert other.try_acquire(ME)
    with pytest.raises(ActionLockBusy, match="start office-12"):
        async with action_lock.held(tmp_path, URL, USER, ME):
            pass
    told: list[ActionError] = []
    asyncio.get_running_loop().call_later(0.5, other.release)
    entered = False
    async with action_lock.held(tmp_path, URL, USER, ME, wait=True, on_wait=told.append):
        entered = True
        assert not ActionLock(tmp_path, URL, USER).try_acquire(ME)  # held by the waiter now
    assert entered and [str(t) for t in told] == [
        f"waiting for another action on {URL} to end: pid {os.getpid()} on ws-1 since "
        "2026-12-08T01:02:03.000Z (start office-12)"]
    assert ActionLock(tmp_path, URL, USER).try_acquire(ME)  # and let go after the body


async def test_a_planted_link_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    (tmp_path / "state").mkdir()
    action_lock.lock_path(tmp_path / "state", URL, USER).symlink_to(victim)
    with pytest.raises(ActionError, match=r"cannot take the action lock .*nothing sent"):
        async with action_lock.held(tmp_path / "state", URL, USER, ME):
            pass
    assert victim.read_text() == "precious\n" and (victim.stat().st_mode & 0o777) == 0o644


# --------------------------------------------------------------------------- token refusal


@pytest.mark.parametrize(("status", "msg", "refused"), [
    (401, "token已过期，请重新登录 (token expired, log in again)", True),  # the lab's
    (401, "token为空，请先登录 (no token, log in first)", True),
    (1002, "Token is invalid", True),
    (401, "token expired, log in again", True),
    (3001, "许可证已过期 (licence expired)", False),
    (3001, "licence expired, please login to the portal to renew", False),
    (3001, "会话已过期，请重新登录", False),  # no word of a token
    (3001, "tokens per minute exceeded", False),
    (0, "token expired", False),
])
def test_a_token_refusal_is_recognised_narrowly(status: int, msg: str, refused: bool) -> None:
    assert is_token_refusal(status, msg) is refused


class Platform:
    """A platform behind ``httpx.MockTransport``: logins succeed; every other request is
    answered by ``answer`` (HTTP status, body). Counts logins and other requests."""

    def __init__(self, answer: tuple[int, dict[str, object]]) -> None:
        self.answer, self.logins, self.calls = answer, 0, 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            self.logins += 1
            return httpx.Response(200, json={"status": 0, "msg": "ok",
                                             "data": {"token": f"tok{self.logins:04d}"}})
        self.calls += 1
        code, body = self.answer
        return httpx.Response(code, json=body)

    def client(self) -> VdiActionClient:
        return VdiActionClient(URL, USER, "pw", transport=httpx.MockTransport(self.handle))


LICENCE = {"status": 3001, "msg": "licence expired, please login to the portal to renew"}


async def test_a_licence_message_is_no_token_refusal() -> None:
    p = Platform((200, LICENCE))
    async with p.client() as client:
        with pytest.raises(VdiStatusError) as got:
            await client.hosts()
    # Not an auth failure (which makes serve give up at start): one login, one request.
    assert not isinstance(got.value, VdiAuthError)
    assert "platform error 3001: licence expired" in str(got.value)
    assert (p.logins, p.calls) == (1, 1)


async def test_an_action_answered_http_401_is_not_resent() -> None:
    p = Platform((401, {"status": 401, "msg": "Unauthorized"}))
    req = Request("POST", "/ocloud/v1/domain/start", {"idList": ["d1"]}, ("d1",))
    async with p.client() as client:
        with pytest.raises(VdiAmbiguousAnswer) as got:
            await client.send(req)
        assert (p.logins, p.calls) == (1, 1)
        assert got.value.detail == ("the platform answered HTTP 401 Unauthorized after the "
                                    "request was sent")
        # A read is safe to repeat: it logs in again and is sent once more.
        with pytest.raises(VdiAuthError):
            await client.hosts()
        assert (p.logins, p.calls) == (2, 3)


async def test_an_action_whose_token_the_platform_refused_is_sent_once_more() -> None:
    p = Platform((200, {"status": 401, "msg": "token已过期，请重新登录 (token expired)"}))
    req = Request("POST", "/ocloud/v1/domain/start", {"idList": ["d1"]}, ("d1",))
    async with p.client() as client:
        with pytest.raises(VdiAuthError, match="token rejected even after logging in again"):
            await client.send(req)
    assert (p.logins, p.calls) == (2, 2)


# --------------------------------------------------------------------------- the audit line


@pytest.fixture
def nearly_full(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    with nearly_full_trail(tmp_path / "small") as got:
        yield got


def test_a_line_the_disk_cannot_hold_is_rolled_back(nearly_full: tuple[Path, bytes]) -> None:
    trail, before = nearly_full
    with pytest.raises(OSError, match="No space left on device; the part written was removed"):
        audit.append(trail, json.dumps({"event": "request", "pad": "y" * 1000}))
    assert trail.read_bytes() == before  # no half line: audit's reader sees every line
    audit.append(trail, '{"event":"small"}')  # what fits in the page still goes in, whole
    assert trail.read_bytes() == before + b'{"event":"small"}\n'
