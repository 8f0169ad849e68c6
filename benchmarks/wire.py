"""Count libvirt RPC calls on the wire, at the lab's proxies (parent process only).

The engine counts its own round trips, but by its own convention (an ``open`` is one, an
``identify`` is one). To report round trips honestly, this tap reads the libvirt RPC framing
of every client-to-daemon byte stream that crosses a lab proxy and counts CALL messages per host
and per procedure (keepalive messages are not calls and are not counted).

It wraps the lab proxy's private ``_Pipe.push`` (in :mod:`vditui.lab.relay`): instrumentation
for benchmarks, never used by vditui. If the lab's internals change so that the tap cannot
install, counts are reported as unavailable instead of failing the run.
"""

from __future__ import annotations

import collections
import struct
import threading
import weakref
from typing import Any

_HEADER = struct.Struct(">7I")  # length, program, version, procedure, type, serial, status
_CALL = 0
_KEEPALIVE_PROGRAM = 0x6B656570
#: The procedures worth naming in a report (remote_protocol.x).
PROCEDURES = {1: "connect_open", 2: "connect_close", 16: "domain_get_info",
              59: "connect_get_hostname", 60: "connect_supports_feature",
              66: "auth_list", 157: "connect_get_lib_version",
              273: "connect_list_all_domains", 316: "connect_domain_event_callback_register_any",
              344: "connect_get_all_domain_stats", 360: "connect_register_close_callback",
              361: "connect_unregister_close_callback"}
INFO_PROCEDURE = 16
#: RPCs that libvirt's remote driver makes inside one ``open`` besides connect_open itself.
OPEN_INTERNALS = {60, 66}  # connect_supports_feature, auth_list


class _Stream:
    """Parser state of one direction of one connection."""

    __slots__ = ("buf", "skip")

    def __init__(self) -> None:
        self.skip = 0
        self.buf = b""


class RpcTap:
    """Installed with :meth:`install`; ``snapshot()`` returns counts to diff between runs."""

    def __init__(self) -> None:
        self.calls: collections.Counter[tuple[str, int]] = collections.Counter()
        self.available = False
        self._streams: weakref.WeakKeyDictionary[Any, _Stream] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._original: Any = None
        self._pipe_cls: Any = None

    def install(self) -> RpcTap:
        try:
            from vditui.lab import relay

            pipe_cls = relay._Pipe
            original = pipe_cls.push
        except (ImportError, AttributeError):
            return self
        tap = self

        def push(pipe: Any, data: bytes) -> None:
            try:
                if data and pipe is pipe.conn.up and pipe.conn.proxy.name != "vdi":
                    tap.feed(pipe.conn.proxy.name, pipe, data)
            except Exception:  # noqa: BLE001 - a tap must never break the lab
                tap.available = False
            original(pipe, data)

        pipe_cls.push = push
        self._original, self._pipe_cls, self.available = original, pipe_cls, True
        return self

    def uninstall(self) -> None:
        if self._pipe_cls is not None:
            self._pipe_cls.push = self._original
            self._pipe_cls = None

    def feed(self, host: str, pipe: Any, data: bytes) -> None:
        """Advance the parser of ``pipe`` over ``data`` and count the CALL headers in it."""
        st = self._streams.get(pipe)
        if st is None:
            st = self._streams[pipe] = _Stream()
        i, n = 0, len(data)
        while i < n:
            if st.skip:
                take = min(st.skip, n - i)
                st.skip -= take
                i += take
                continue
            need = _HEADER.size - len(st.buf)
            st.buf += data[i:i + need]
            i += min(need, n - i)
            if len(st.buf) < _HEADER.size:
                break
            length, program, _v, procedure, kind, _serial, _status = _HEADER.unpack(st.buf)
            st.buf = b""
            st.skip = max(0, length - _HEADER.size)
            if kind == _CALL and program != _KEEPALIVE_PROGRAM:
                with self._lock:
                    self.calls[(host, procedure)] += 1

    def snapshot(self) -> collections.Counter[tuple[str, int]]:
        with self._lock:
            return collections.Counter(self.calls)


def per_host(before: collections.Counter[tuple[str, int]],
             after: collections.Counter[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """Calls made between two snapshots: {host: {"total", "info", "other", "api_other"}}:
    ``other`` is every RPC but ``info()``; ``api_other`` counts an ``open`` as one call, as an
    API user sees it."""
    out: dict[str, dict[str, int]] = {}
    for (host, proc), n in (after - before).items():
        row = out.setdefault(host, {"total": 0, "info": 0, "other": 0, "api_other": 0})
        row["total"] += n
        row["info" if proc == INFO_PROCEDURE else "other"] += n
        if proc != INFO_PROCEDURE and proc not in OPEN_INTERNALS:
            row["api_other"] += n
    return out


def procedures(before: collections.Counter[tuple[str, int]],
               after: collections.Counter[tuple[str, int]]) -> dict[str, int]:
    """Calls made between two snapshots, summed over hosts, by procedure name."""
    out: collections.Counter[str] = collections.Counter()
    for (_host, proc), n in (after - before).items():
        out[PROCEDURES.get(proc, f"proc_{proc}")] += n
    return dict(out.most_common())


def summarize(rows: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Min/max over hosts of total calls, and of calls other than per-domain ``info()``."""
    if not rows:
        return {}
    totals = [r["total"] for r in rows.values()]
    others = [r["other"] for r in rows.values()]
    infos = [r["info"] for r in rows.values()]
    return {"hosts": len(rows), "total_min": min(totals), "total_max": max(totals),
            "info_max": max(infos), "other_min": min(others), "other_max": max(others),
            "api_other_max": max(r["api_other"] for r in rows.values())}
