"""What the server answers when something other than the request fails, as a pure ASGI middleware:

- a bug in a route or middleware: the JSON 500 of the error shape, one traceback in the log (Starlette's own
  500 handler would log it and re-raise it for uvicorn to log again);
- the shutdown deadline (uvicorn cancels the requests still running after --shutdown_timeout): 503 and the
  connection closed, no traceback;
- a UserError while the model loads (a model folder the project refuses): uvicorn's startup fails with that
  one line instead of Starlette's formatted traceback; the error is kept on app.state.startup_error for
  serve.py and BackgroundServer to report.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobtitles.core.errors import UserError
from jobtitles.serve.http_errors import error_response, internal_error

logger = logging.getLogger("jobtitles.serve")


class FailureMiddleware:
    def __init__(self, app: ASGIApp, shutdown_timeout: float) -> None:
        self.app, self.shutdown_timeout = app, shutdown_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except asyncio.CancelledError:
            # Only uvicorn cancels request tasks, at the shutdown deadline: answer and let the task end normally.
            logger.warning("%s %s still running at the shutdown deadline; answered 503", scope["method"],
                           scope["path"][:200])
            if not started:
                await error_response(503, "shutting_down", f"the server is shutting down and this request did "
                                     f"not finish within {self.shutdown_timeout:g} s (--shutdown_timeout); retry",
                                     headers={"connection": "close", "retry-after": "1"})(scope, receive, send)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"][:200])
            if not started:
                await internal_error()(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        held: Message | None = None

        async def send_held(message: Message) -> None:
            nonlocal held
            if message["type"] == "lifespan.startup.failed":
                held = message  # sent once it is known whether a UserError (one line) or a bug (traceback) failed
                return
            await send(message)

        try:
            await self.app(scope, receive, send_held)
        except UserError as err:
            scope["app"].state.startup_error = err
            await send({"type": "lifespan.startup.failed", "message": str(err)})
        except BaseException:
            if held is not None:
                await send(held)
            raise
        else:
            if held is not None:
                await send(held)
