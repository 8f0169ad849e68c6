"""The platform client's failures: one class per cause an operator acts on differently.

``str()`` of each is one line naming the platform URL and the cause, secrets already scrubbed
by the client (:mod:`vditui.core.vdi`, which re-exports them). Also the rules that classify
what came back: a transport failure (:func:`transport_error`), the platform's own refusal of a
token (:func:`is_token_refusal`), and what an action's outcome says of an answer that does not
tell whether the platform acted (:func:`after_sending`).
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from vditui.core.vdi_parse import one_line


class VdiError(Exception):
    """Base of every client failure. ``str()`` is one line naming the platform URL and cause."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(one_line(message, 400))
        self.url = url


class VdiUnreachable(VdiError):
    """No usable connection: refused, unresolved name, connect or read timeout."""


class VdiTlsError(VdiError):
    """The platform's TLS certificate could not be verified."""


class VdiHttpError(VdiError):
    """A non-2xx HTTP answer; ``status_code`` is the HTTP status."""

    def __init__(self, url: str, message: str, status_code: int) -> None:
        super().__init__(url, message)
        self.status_code = status_code


class VdiNotJson(VdiError):
    """The body is not JSON (typically an HTML error or maintenance page)."""


class VdiStatusError(VdiError):
    """The wrapper's ``status`` is not 0; ``msg`` is the platform's reason."""

    def __init__(self, url: str, message: str, status: int | None, msg: str) -> None:
        super().__init__(url, message)
        self.status, self.msg = status, msg


class VdiAuthError(VdiStatusError):
    """Login refused, or the token was still rejected right after logging in again."""


class VdiTooLarge(VdiError):
    """The answer is larger than the client takes (``vditui.core.vdi.MAX_ANSWER``)."""


class VdiShapeError(VdiError):
    """The answer is JSON but not shaped as the spec says; the message names the field path."""


if TYPE_CHECKING:  # loaded by transport_error itself: the faces' error types stay light
    import httpx


def platform_message(exc: VdiError) -> str:
    """The one line shown for a platform failure: the client's (platform URL and cause), made
    explicit when the transport error names no reason (httpx's ``ReadError`` says nothing by
    itself; the system's "Connection reset by peer" behind it does)."""
    text = str(exc)
    bare = re.search(r": ([A-Z][A-Za-z]*)$", text) if isinstance(exc, VdiUnreachable) else None
    if bare is None:
        return text
    cur: BaseException | None = exc
    for _ in range(20):
        if cur is None:
            break
        if isinstance(cur, OSError) and cur.strerror:
            return (f"{text[:bare.start()]}: the platform dropped the connection "
                    f"({bare.group(1)}: {cur.strerror})")
        cur = cur.__cause__ or cur.__context__
    return f"{text[:bare.start()]}: the platform dropped the connection ({bare.group(1)})"


class VdiAmbiguousAnswer(VdiError):
    """An action request was sent and the answer does not say whether the platform acted (an
    HTTP-level 401 from a gateway in front of it, say): never re-sent, followed up instead.
    ``detail`` is what came back, without the URL."""

    def __init__(self, url: str, message: str, detail: str) -> None:
        super().__init__(url, message)
        self.detail = detail


# The platform's own refusal of a token, in the body of an answer (the vendor's spec names no
# code, so the message decides: see shared/vendor/README.md). Narrow on purpose: the message
# must name the token *and* say it is expired, invalid, missing or unknown. A licence message
# ("许可证已过期", "licence expired, please log in to renew") is not one.
_TOKEN = re.compile(r"(?<![a-z])token(?![a-z])|令牌", re.I)
_REFUSED = re.compile(r"expired|invalid|missing|empty|unknown|not valid|过期|失效|无效|为空|不存在"
                      r"|非法", re.I)


def is_token_refusal(status: int | None, msg: str) -> bool:
    """Whether a wrapper with this non-zero ``status`` and ``msg`` is the platform refusing the
    request's token, before doing anything (so the request may be sent once more after a new
    login)."""
    return status not in (None, 0) and bool(_TOKEN.search(msg)) and bool(_REFUSED.search(msg))


def after_sending(exc: VdiError) -> str:
    """What came back for an action request that may or may not have acted, as the outcome
    says it: ``the platform answered HTTP 401 … after the request was sent`` or ``no answer
    from the platform (…)``."""
    if isinstance(exc, VdiAmbiguousAnswer):
        return exc.detail
    return f"no answer from the platform ({platform_message(exc)})"


def transport_error(exc: httpx.HTTPError, url: str, where: str, connect_timeout: float,
                    timeout: float, scrub: Callable[[str], str]) -> VdiError:
    """The :class:`VdiError` for an httpx failure of the request ``where`` to ``url``: an
    untrusted certificate, a refused or unresolved connection, a timeout, or a transport
    failure by name; ``scrub`` takes the client's secrets out of the text."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) \
            or "CERTIFICATE_VERIFY_FAILED" in text:
        detail = next((e.verify_message for e in chain if isinstance(
            e, ssl.SSLCertVerificationError) and e.verify_message), "verify failed")
        return VdiTlsError(url, scrub(
            f"TLS certificate of {url} is not trusted ({detail}); if you trust this "
            f"platform, use --insecure (verify_ssl = false)"))
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        why = f"timed out after {connect_timeout:g} s"
    elif isinstance(exc, httpx.ReadTimeout):
        return VdiUnreachable(url, f"{url} {where}: no answer within {timeout:g} s")
    elif not isinstance(exc, httpx.ConnectError):
        detail = one_line(str(exc), 160)
        return VdiUnreachable(url, scrub(
            f"{url} {where}: {type(exc).__name__}" + (f": {detail}" if detail else "")))
    elif any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        why = "connection refused"
    elif any(isinstance(e, socket.gaierror) for e in chain) or re.search(
            r"name or service|nodename|getaddrinfo|name resolution", text, re.I):
        why = "host name not found"
    else:
        why = one_line(str(exc) or type(exc).__name__, 160)
    return VdiUnreachable(url, scrub(f"cannot connect to {url}: {why}"))


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 20:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out
