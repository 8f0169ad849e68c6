"""Bounded in time and size, within reach of a unit test: an answer larger than the client
takes (said or streamed), ``vditui_platform_up`` once a refresh has run past its time, and
config loading whose work grows linearly with its rules (calls counted, never timed). The
dripping platform and the lying total are in tests/lab/test_vdi_client.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from vditui import tomlpos
from vditui.config.load import parse_config
from vditui.core.events import PlatformRefreshed
from vditui.core.metrics import MetricsState
from vditui.core.models import VdiInventory
from vditui.core.vdi import MAX_ANSWER, VdiClient, VdiTooLarge

URL = "https://vdi.example:8443"
LOGIN = {"status": 0, "msg": "ok", "data": {"token": "tok0001"}}


def client(answer: httpx.Response) -> VdiClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json=LOGIN)
        return answer

    return VdiClient(URL, "admin", "pw", transport=httpx.MockTransport(handle))


class Endless(httpx.AsyncByteStream):
    """A body of 1 MiB chunks that never ends by itself; counts what was read."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += 1 << 20
            yield b" " * (1 << 20)


async def test_an_answer_larger_than_the_cap_is_refused_as_it_streams() -> None:
    body = Endless()
    async with client(httpx.Response(200, stream=body)) as c:
        with pytest.raises(VdiTooLarge) as got:
            await c.hosts()
    assert str(got.value) == (f"{URL} GET /ocloud/v1/host: answer larger than 64 MiB (more "
                              "came): refused; is this the platform's API, and page_size "
                              "sensible?")
    assert body.sent <= MAX_ANSWER + (2 << 20)  # stopped at the cap, not read to the end


async def test_an_answer_that_says_it_is_too_large_is_not_read() -> None:
    body = Endless()
    answer = httpx.Response(200, headers={"Content-Length": str(150 << 20)}, stream=body)
    async with client(answer) as c:
        with pytest.raises(VdiTooLarge, match=r"GET /ocloud/v1/host: answer larger than 64 MiB "
                                              r"\(it says 157,286,400 bytes\)"):
            await c.hosts()
    assert body.sent <= 1 << 20


def test_platform_up_is_0_once_a_refresh_runs_past_its_time() -> None:
    now = [100.0]
    state = MetricsState(stale_after=70.0, clock=lambda: now[0])

    def up() -> float:
        (fam,) = [f for f in state.families() if f.name == "vditui_platform_up"]
        return fam.samples[0][1]

    state.on_event(PlatformRefreshed(0.0, VdiInventory((), ())))
    assert up() == 1.0
    now[0] += 70.0
    assert up() == 1.0
    # The next refresh is still dripping in: nothing failed yet, nothing succeeded either.
    now[0] += 1.0
    assert up() == 0.0
    state.on_event(PlatformRefreshed(0.0, VdiInventory((), ())))
    assert up() == 1.0


def rules(n: int) -> str:
    """A config with ``n`` acknowledgement rules, as ``baseline`` writes them."""
    out = ['default_profile = "prod"\n', '[profiles.prod]\nurl = "http://127.0.0.1:8088"\n']
    out += [f'[[profiles.prod.ack]]\nvm = "vm-{i:05d}"\nhost = "hv-{i % 50:02d}"\n'
            f'kind = "state"\nreason = "baseline {i}"\n' for i in range(n)]
    return "\n".join(out)


def test_loading_rules_does_work_linear_in_their_number(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [0]
    parse_key = tomlpos._parse_key  # counting the scanner's steps is the test

    def counted(s: str, i: int) -> tuple[list[str], int] | None:
        calls[0] += 1
        return parse_key(s, i)

    monkeypatch.setattr(tomlpos, "_parse_key", counted)
    work = {}
    for n in (100, 200, 400):
        calls[0] = 0
        config = parse_config(rules(n), Path("/config.toml"))
        assert len(config.profiles["prod"].ack) == n
        work[n] = calls[0]
    # Linear: doubling the rules doubles the work (quadratic would quadruple it).
    assert work[200] / work[100] < 2.2 and work[400] / work[200] < 2.2, work
    assert work[400] < 12 * 400, work  # a few steps per line, not one per line per rule
