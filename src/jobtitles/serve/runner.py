"""uvicorn set up for an app of create_app (serve.py uses it, and so can notebooks), and the app in a
background thread on a free loopback port (tests, benchmarks, notebooks):

    with BackgroundServer(create_app(ServeSettings("outputs/base/model"))) as server:
        httpx.post(server.url + "/predict", json={"titles": ["VP of Sales"]})

`uvicorn_config` carries the app's limits to uvicorn: the request-head deadline and size (connections.py),
the keep-alive timeout and the shutdown deadline. `Server` tells the app when that deadline started.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from jobtitles.serve.connections import MAX_HEAD_BYTES, guarded_protocol
from jobtitles.serve.settings import ServeSettings

KEEP_ALIVE_S = 5  # uvicorn's default: an idle kept-alive connection is closed after 5 s


def uvicorn_config(app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                   loop: str = "auto", http: str = "auto") -> uvicorn.Config:
    settings: ServeSettings = app.state.settings
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, loop=loop,
        http=guarded_protocol(http, settings.header_timeout, MAX_HEAD_BYTES),
        timeout_keep_alive=KEEP_ALIVE_S, h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        # uvicorn cancels what still runs after this; FailureMiddleware answers those requests 503
        timeout_graceful_shutdown=settings.shutdown_timeout)  # type: ignore[arg-type]  # a float works


class Server(uvicorn.Server):
    """uvicorn's server; its shutdown stamps the deadline on the app, so the lifespan handler gives the model
    workers only what is left of it."""

    async def shutdown(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        app = self.config.app
        app.state.shutdown_deadline = time.monotonic() + app.state.settings.shutdown_timeout
        await super().shutdown(sockets)


class BackgroundServer:
    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 120.0,
                 log_level: str = "warning", http: str = "auto") -> None:
        # port 0: the OS picks a free port when uvicorn binds, so two servers never race for one
        self.app = app
        self.server = Server(uvicorn_config(app, host=host, port=port, log_level=log_level, http=http))
        self.startup_timeout = startup_timeout
        self.thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)
        self.url = ""

    def _run(self) -> None:
        try:
            self.server.run()
        except SystemExit:  # uvicorn's way out of a failed startup; __enter__ reports why
            pass

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                if self.app.state.startup_error is not None:
                    raise self.app.state.startup_error  # the model folder's one-line UserError
                raise RuntimeError("the server did not start (see the log above)")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(self.app.state.settings.shutdown_timeout + 30)
