"""Limits on a request's head (request line and headers) that uvicorn does not have: it must arrive within
`head_timeout` seconds of the connection opening or of the previous answer, and within `max_head_bytes`.

uvicorn (0.29 to 0.54 at least) arms no timer until a first answer, and cancels its keep-alive timer on the
first byte of the next request: a client that sends half a request line holds the connection forever. h11 caps
the head's size (h11_max_incomplete_event_size), httptools does not (uvicorn keeps appending the URL). The
guard is a subclass of whichever protocol class uvicorn would use, touching only what both have had for years:
`connection_made`, `data_received`, `connection_lost`, `on_response_complete`, `cycle`, `transport`, `loop`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAX_HEAD_BYTES = 16 * 1024  # h11's own default for the same limit; the page's and API clients' heads are < 2 kB


def _error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer in the server's JSON error shape, for a request the app never saw."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n").encode()
    return head + body


class HeadGuard:
    """Mixed in before uvicorn's H11Protocol or HttpToolsProtocol (see `guarded_protocol`)."""

    head_timeout: float = 10.0
    max_head_bytes: int = MAX_HEAD_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            self._arm()  # the next request's head is due within head_timeout, bytes or no bytes

    def data_received(self, data: bytes) -> None:
        waiting = self._waiting_for_head()
        if waiting:
            self._head_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        if waiting and self._waiting_for_head() and self._head_bytes > self.max_head_bytes:
            self._refuse(431, "Request Header Fields Too Large", "header_too_large",
                         f"the request line and headers are over {self.max_head_bytes:,} bytes; send shorter "
                         f"headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    # --- the head deadline ----------------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._waiting_cycle: Any = self.cycle  # type: ignore[attr-defined]
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)  # type: ignore[attr-defined]

    def _disarm(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _waiting_for_head(self) -> bool:
        """No request has started since the timer was armed, and the last one (if any) is answered."""
        cycle = self.cycle  # type: ignore[attr-defined]
        return cycle is self._waiting_cycle and (cycle is None or cycle.response_complete)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = self.transport  # type: ignore[attr-defined]
        if transport.is_closing() or transport.get_protocol() is not self or not self._waiting_for_head():
            return  # a request is running (its body has its own deadline), or a WebSocket upgrade took over
        if self._head_bytes:
            self._refuse(408, "Request Timeout", "header_timeout",
                         f"the request line and headers did not arrive within {self.head_timeout:g} s "
                         f"(--header_timeout); send the whole request at once")
        else:
            self.transport.close()  # type: ignore[attr-defined]  # an idle connection: nothing to answer

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._disarm()
        transport = self.transport  # type: ignore[attr-defined]
        if not transport.is_closing():
            transport.write(_error_bytes(status, reason, code, message))
            transport.close()


def guarded_protocol(http: str, head_timeout: float, max_head_bytes: int = MAX_HEAD_BYTES) -> type:
    """uvicorn's protocol class for `http` ("auto", "h11", "httptools") with HeadGuard mixed in; pass it as
    uvicorn.Config(http=...)."""
    if http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    elif http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol as base
    return type(f"Guarded{base.__name__}", (HeadGuard, base),
                {"head_timeout": head_timeout, "max_head_bytes": max_head_bytes})
