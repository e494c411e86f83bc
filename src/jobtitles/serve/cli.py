"""serve.py's command line: parse, check the model folder and the port, build the app, run uvicorn. SIGTERM or
Ctrl-C: stop accepting, let the requests in flight finish within --shutdown_timeout, exit 0."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Iterator

from jobtitles.core.errors import EXIT_USER_ERROR, UserError, cli_entry
from jobtitles.core.log import setup_logging
from jobtitles.serve.settings import API_KEY_ENV, BACKENDS, ServeSettings, defaults


class ArgParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"serve.py: {message}")


def build_parser() -> argparse.ArgumentParser:
    d = argparse.Namespace(**defaults())
    p = ArgParser(prog="serve.py", description="Serve a trained model folder over HTTP: API, page, /docs.")
    p.add_argument("--model", required=True, type=Path, help="Model folder written by train.py (outputs/<run>/model).")
    p.add_argument("--host", default="127.0.0.1", help="Address to bind (default loopback only).")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Default: onnx-int8 when exported (exported into the folder on first use if writable), "
                        "else torch.")
    p.add_argument("--max_titles", type=int, default=d.max_titles, help="Titles per request (list or CSV rows).")
    p.add_argument("--max_body_mb", type=float, default=d.max_body_mb, help="Request body limit in MB.")
    p.add_argument("--api_key", default=None,
                   help=f"Require this key (X-API-Key or Authorization: Bearer); default: ${API_KEY_ENV} if set.")
    p.add_argument("--batch_wait_ms", type=float, default=d.batch_wait_ms,
                   help="Micro-batching: after a request arrives, wait this long for others to share its model call.")
    p.add_argument("--max_batch_titles", type=int, default=d.max_batch_titles, help="Titles per shared model call.")
    p.add_argument("--no_batching", action="store_true", help="Every request is its own model call.")
    p.add_argument("--batch_size", type=int, default=d.batch_size,
                   help="Titles per forward pass inside one model call (length-sorted sub-batches).")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="Model worker threads, each with its own copy of the model, running batches side by side "
                        "(0: one per core).")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="Intra-op threads per worker (0: this process's cores divided among the workers).")
    p.add_argument("--body_timeout", type=float, default=d.body_timeout,
                   help="Seconds a request body may take to arrive after its headers (then 408).")
    p.add_argument("--header_timeout", type=float, default=d.header_timeout,
                   help="Seconds a request line and headers may take to arrive (then 408 and the connection closed).")
    p.add_argument("--shutdown_timeout", type=float, default=d.shutdown_timeout,
                   help="SIGTERM: seconds the requests in flight get to finish (then 503); the process exits 0.")
    p.add_argument("--model_check_s", type=float, default=d.model_check_s,
                   help="Check the model folder for replaced files this often (a warning and /health "
                        "model_changed; 0: never).")
    p.add_argument("--cache_titles", type=int, default=d.cache_titles,
                   help="Answers of this many recent distinct titles are kept and reused (0: no cache).")
    p.add_argument("--label_folder", type=Path, default=None,
                   help="Turn on the page's labelling view: titles from DIR/suggestions.csv (jobtitles suggest) "
                        "are labelled on the page and appended to DIR/labelled.csv (default: off).")
    p.add_argument("--no_gc_freeze", action="store_true",
                   help="Leave the objects alive after loading in the garbage collector's reach (slower tail).")
    p.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                   help="uvicorn's event loop (auto: uvloop when installed).")
    p.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"],
                   help="uvicorn's HTTP parser (auto: httptools when installed).")
    p.add_argument("--log_level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Every value is checked by ServeSettings itself (as for any caller of create_app)."""
    return ServeSettings(model_dir=args.model, backend=args.backend, max_titles=args.max_titles,
                         max_body_mb=args.max_body_mb, api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
                         batch_wait_ms=args.batch_wait_ms, max_batch_titles=args.max_batch_titles,
                         batching=not args.no_batching, workers=args.workers, threads=args.threads,
                         batch_size=args.batch_size, gc_freeze=not args.no_gc_freeze,
                         body_timeout=args.body_timeout, header_timeout=args.header_timeout,
                         shutdown_timeout=args.shutdown_timeout, model_check_s=args.model_check_s,
                         cache_titles=args.cache_titles, label_folder=args.label_folder)


def check_port(host: str, port: int) -> None:
    """Bind and release the address first, so a port in use is one line instead of uvicorn's exit 3 after the
    model has loaded (uvicorn binds the same way, with SO_REUSEADDR)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            pass
    except (OSError, OverflowError) as err:  # OverflowError: a port outside 0-65535
        reason = getattr(err, "strerror", None) or err
        raise UserError(f"--host {host} --port {port}: cannot listen there ({reason}); choose another --port, or "
                        f"stop the program that uses it") from err


@contextlib.contextmanager
def stop_quietly() -> Iterator[None]:
    """uvicorn re-raises SIGTERM/SIGINT once its graceful shutdown is done (so the process would end by the
    signal, or with KeyboardInterrupt); a handler that does nothing makes a finished shutdown exit 0."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli_entry
def serve_main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    settings = settings_from_args(args)
    from jobtitles.core.model_folder import read_model_config
    from jobtitles.serve.labelling import label_space

    cfg = read_model_config(settings.model_dir)  # a folder that is not a trained model: one line, before anything else
    label_space(settings.label_folder, settings.model_dir, cfg)  # so is a --label_folder it cannot use
    check_port(args.host, args.port)
    from jobtitles.serve.app import create_app
    from jobtitles.serve.backend import choose_backend
    from jobtitles.serve.runner import Server, uvicorn_config

    # Chosen (and exported if needed) before uvicorn starts, so a problem is one `error:` line, not a
    # lifespan traceback; the model itself is loaded in the app's lifespan handler.
    app = create_app(settings, choose_backend(settings.model_dir, settings.backend))
    if args.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        print(f"warning: listening on {args.host} without --api_key: anyone who can reach it can use it",
              file=sys.stderr)
    server = Server(uvicorn_config(app, host=args.host, port=args.port, log_level=args.log_level, loop=args.loop,
                                   http=args.http))
    with stop_quietly():
        try:
            server.run()
        except SystemExit:  # uvicorn's way out when the app's startup failed
            if app.state.startup_error is not None:
                return EXIT_USER_ERROR  # uvicorn has logged the UserError's one line
            raise
    return 0
