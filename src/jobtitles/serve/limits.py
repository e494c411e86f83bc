"""Request-body limits as a pure ASGI middleware: the size (refused on Content-Length at once, and counted on
chunked or lying bodies as they arrive, so an oversized upload is never held in memory) and the time (the
whole body within `timeout` seconds of the headers, so a client that sends half a body or trickles it byte by
byte cannot hold a connection)."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobtitles.serve.http_errors import error_response

T = TypeVar("T")
CLOSE = {"connection": "close"}  # uvicorn closes the connection after the answer: the rest of the body is not read


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 10.0) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, found: str) -> None:
        mb = self.max_bytes / 1024 / 1024
        await error_response(413, "body_too_large", f"the request body is {found}; the limit is {mb:g} MB "
                             f"(--max_body_mb): send fewer titles per request", headers=CLOSE)(scope, receive, send)

    async def _too_slow(self, scope: Scope, receive: Receive, send: Send, size: int, length: bytes | None) -> None:
        of = f" of {int(length):,}" if length is not None and length.isdigit() else ""
        await error_response(408, "body_timeout", f"the request body did not arrive within {self.timeout:g} s "
                             f"(--body_timeout): {size:,}{of} bytes came; send the whole body at once",
                             headers=CLOSE)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send, f"{int(length):,} bytes (Content-Length)")
            return
        # Read the whole body here (it is small by construction), then hand it to the app in one message.
        chunks: list[bytes] = []
        try:
            complete = await within(self.timeout, self._read(receive, chunks))
        except asyncio.TimeoutError:
            await self._too_slow(scope, receive, send, sum(map(len, chunks)), length)
            return
        if complete is None:  # the client went away
            return
        if not complete:
            await self._too_large(scope, receive, send, f"over {self.max_bytes:,} bytes")
            return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, chunks: list[bytes]) -> bool | None:
        """Append the body's chunks; True: all of it came, False: over the limit, None: the client left."""
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return True


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """`await awaitable`, or asyncio.TimeoutError after `seconds`: asyncio.timeout where it exists (3.11+, no
    extra task per request), wait_for before."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)
