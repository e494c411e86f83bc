"""serve.py's command line: parse, build the app, run uvicorn (SIGTERM: finish the requests in flight, exit)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jobtitles.errors import UserError, cli_entry
from jobtitles.log import setup_logging
from jobtitles.serve.settings import API_KEY_ENV, BACKENDS, ServeSettings


class ArgParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"serve.py: {message}")


def build_parser() -> argparse.ArgumentParser:
    d = ServeSettings(model_dir=Path("."))
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
    p.add_argument("--no_gc_freeze", action="store_true",
                   help="Leave the objects alive after loading in the garbage collector's reach (slower tail).")
    p.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                   help="uvicorn's event loop (auto: uvloop when installed).")
    p.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"],
                   help="uvicorn's HTTP parser (auto: httptools when installed).")
    p.add_argument("--log_level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    if args.threads < 0:
        raise UserError(f"--threads: expected 0 (every core) or a positive number, found {args.threads}")
    if args.workers < 0:
        raise UserError(f"--workers: expected 0 (one per core) or a positive number, found {args.workers}")
    for name in ("max_titles", "max_batch_titles", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name}: expected a positive number, found {getattr(args, name)}")
    if args.max_body_mb <= 0 or args.batch_wait_ms < 0:
        raise UserError("--max_body_mb must be > 0 and --batch_wait_ms >= 0")
    if not (args.model / "config.json").is_file():
        from jobtitles.model_folder import read_model_config

        read_model_config(args.model)  # raises the project's message for a wrong folder
    return ServeSettings(model_dir=args.model, backend=args.backend, max_titles=args.max_titles,
                         max_body_mb=args.max_body_mb, api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
                         batch_wait_ms=args.batch_wait_ms, max_batch_titles=args.max_batch_titles,
                         batching=not args.no_batching, workers=args.workers, threads=args.threads,
                         batch_size=args.batch_size, gc_freeze=not args.no_gc_freeze)


@cli_entry
def serve_main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    settings = settings_from_args(args)
    import uvicorn

    from jobtitles.serve.app import create_app
    from jobtitles.serve.backend import choose_backend

    # Chosen (and exported if needed) before uvicorn starts, so a problem is one `error:` line, not a
    # lifespan traceback; the model itself is loaded in the app's lifespan handler.
    choice = choose_backend(settings.model_dir, settings.backend)
    fields = {k: v for k, v in vars(settings).items() if k not in ("model_dir", "backend", "backend_reason")}
    app = create_app(settings.model_dir, choice.backend, backend_reason=choice.reason, **fields)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        print(f"warning: listening on {args.host} without --api_key: anyone who can reach it can use it",
              file=sys.stderr)
    # uvicorn handles SIGINT/SIGTERM: it stops accepting, lets requests in flight finish, then runs the
    # lifespan shutdown (which drains the batcher).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=30,
                loop=args.loop, http=args.http)
    return 0
