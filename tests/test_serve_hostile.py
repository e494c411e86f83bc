"""The HTTP service against hostile clients, on a real server on a free loopback port with the tiny trained
model: slow or half-sent bodies and heads are cut off in bounded time, SIGTERM exits 0 within its deadline
whatever the sockets do, text that is not text and odd JSON get a 4xx of the error shape (never a 500 from the
input), a bug is the JSON 500 without a traceback in the answer, model folders and settings the project
refuses are one line, no answer names a server path, and a model folder replaced under the server is reported.
Every wait is bounded in time."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from jobtitles.core.errors import UserError
from jobtitles.serve import ServeSettings, create_app
from jobtitles.serve.runner import BackgroundServer

ROOT = Path(__file__).resolve().parents[1]
JSON_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"


@pytest.fixture(scope="module", autouse=True)
def torch_threads_restored():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def log_handlers_restored():
    """serve_main called in-process binds the project's log handler to the test's captured stderr, which is
    closed after the test: later tests' log lines would fail to write."""
    logger = logging.getLogger("jobtitles")
    handlers = list(logger.handlers)
    yield
    logger.handlers[:] = handlers


@pytest.fixture(scope="module")
def model_dir(tiny_run_dir) -> Path:
    return tiny_run_dir / "model"


@pytest.fixture(scope="module")
def server(model_dir):
    app = create_app(ServeSettings(model_dir, backend="torch", workers=1, body_timeout=1, header_timeout=1,
                                   model_check_s=0))
    with BackgroundServer(app) as srv:
        yield srv


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def exchange(port: int, chunks: list[bytes], gap: float = 0.0, limit: float = 10.0) -> tuple[bytes, float]:
    """Send `chunks` (`gap` s apart) on a fresh connection, then read until the server closes it; returns what
    came back and the seconds until the close. At most `limit` seconds in all."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                time.sleep(gap)
        except OSError:  # the server closed the connection while we were still trickling: what we test
            pass
        data = b""
        while time.monotonic() - start < limit:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
    return data, time.monotonic() - start


def error_of(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


# --- 1. slow bodies and heads -------------------------------------------------------------------------------
def test_half_sent_and_trickled_bodies_get_408_and_the_connection_closed(server):
    port = _port(server.url)
    raw, took = exchange(port, [JSON_HEAD + b'{"titles": ["VP'])
    status, error = error_of(raw)
    assert status == 408 and 0.9 < took < 5, (raw, took)
    assert error == {"code": "body_timeout", "message": "the request body did not arrive within 1 s "
                     "(--body_timeout): 15 of 100 bytes came; send the whole body at once"}
    assert b"connection: close" in raw.lower()

    # one byte every 0.2 s: each read is quick, the whole body is not; the deadline is for the whole body
    raw, took = exchange(port, [JSON_HEAD] + [b" "] * 30, gap=0.2)
    assert error_of(raw)[0] == 408 and took < 5, (raw, took)
    ok = httpx.post(server.url + "/predict", json={"titles": ["VP of Sales"]})
    assert ok.status_code == 200  # and the server goes on serving


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_half_sent_heads_and_idle_connections_are_cut_off(model_dir, http):
    app = create_app(ServeSettings(model_dir, backend="torch", workers=1, header_timeout=1, model_check_s=0))
    with BackgroundServer(app, http=http) as srv:
        port = _port(srv.url)
        raw, took = exchange(port, [b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty"])
        assert error_of(raw) == (408, {"code": "header_timeout", "message": "the request line and headers did not "
                                       "arrive within 1 s (--header_timeout); send the whole request at once"})
        assert 0.9 < took < 5
        raw, took = exchange(port, [b""])  # connected, nothing sent: closed, nothing to answer
        assert raw == b"" and 0.9 < took < 5
        # headers trickled one line every 0.2 s: each byte is quick, the head is not
        raw, took = exchange(port, [b"GET /health HTTP/1.1\r\n"] + [b"X-A: b\r\n"] * 30, gap=0.2)
        assert error_of(raw)[0] == 408 and took < 5
        # a kept-alive connection whose next request stops half-way (uvicorn's keep-alive timer stops at its
        # first byte)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.3)
            sock.sendall(b"GET /hea")
            start, data = time.monotonic(), b""
            while (part := sock.recv(65536)) and time.monotonic() - start < 10:
                data += part
        assert data.startswith(b"HTTP/1.1 200") and b"header_timeout" in data and time.monotonic() - start < 5
        # a head that grows without end is refused at 16 KiB (httptools has no limit of its own)
        raw, took = exchange(port, [b"GET /" + b"a" * 4096] * 8, gap=0.05)
        status, error = error_of(raw) if raw.startswith(b"HTTP/1.1 431") else (int(raw.split()[1]), {})
        assert status in (400, 431) and took < 5, raw[:200]  # h11 refuses it itself (400), first
        assert httpx.get(srv.url + "/health").status_code == 200


# --- 2. shutdown ------------------------------------------------------------------------------------------------
def _start_serve_py(model_dir: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, int, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--model", str(model_dir), "--port",
                                 str(port), "--backend", "torch", "--workers", "1", *extra],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port, log
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.2)


def test_sigterm_with_stalled_clients_exits_0_within_the_deadline(model_dir, tmp_path):
    proc, port, log = _start_serve_py(model_dir, tmp_path, "--shutdown_timeout", "2", "--body_timeout", "60",
                                      "--header_timeout", "60")
    socks = []
    try:
        for first in (JSON_HEAD + b'{"tit',                                   # half a body
                      b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty",     # half a head
                      b"",                                                    # connected, silent
                      b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"):            # kept alive after an answer
            sock = socket.create_connection(("127.0.0.1", port), timeout=15)
            sock.sendall(first)
            socks.append(sock)
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=2 + 8)  # the deadline plus a margin for a busy CI machine
        took = time.monotonic() - start
        half_body = b""
        while part := socks[0].recv(65536):
            half_body += part
    finally:
        for sock in socks:
            sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0 and took < 2 + 5, (code, took, text)
    assert "Traceback" not in text, text
    assert error_of(half_body) == (503, {"code": "shutting_down", "message": "the server is shutting down and this "
                                         "request did not finish within 2 s (--shutdown_timeout); retry"})


# --- 3. text that is not text, and odd JSON ---------------------------------------------------------------
SURROGATE_CASES = [  # (route, raw JSON body, field)
    ("/predict", b'{"titles": ["CEO", "VP \\ud800 Sales"]}', "titles[1]"),
    ("/predict", b'{"titles": "VP \\udfff"}', "titles[0]"),
    ("/", b'{"inputs": ["CEO", "CFO", "\\ud83d"]}', "inputs[2]"),
    ("/", b'{"inputs": "\\udc00", "parameters": {"top_k": 1}}', "inputs[0]"),
]


@pytest.mark.parametrize("route,body,field", SURROGATE_CASES)
def test_lone_surrogates_are_422_naming_the_item_on_every_route(server, route, body, field):
    r = httpx.post(server.url + route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    char = json.loads(body.decode()).get("titles", json.loads(body.decode()).get("inputs"))
    char = char if isinstance(char, str) else char[int(field.split("[")[1][:-1])]
    bad = next(c for c in char if 0xD800 <= ord(c) <= 0xDFFF)
    assert error == {"code": "invalid_text", "field": field, "message": (
        f"{field}: a lone UTF-16 surrogate ({ascii(bad)}) at character {char.index(bad)}, which is not text; "
        f"send valid Unicode (was a character cut in half?)")}


def test_upload_titles_get_the_same_text_checks(model_dir):
    """CSV uploads are read by predict.py's reader: a row of zero-width and control characters only is an empty
    title and skipped, as predict.py skips it (titles.is_blank); strict UTF-8, so no surrogate can come in; the
    shared text check names a file row."""
    from jobtitles.serve.app import check_texts
    from jobtitles.serve.http_errors import ApiError

    with BackgroundServer(create_app(ServeSettings(model_dir, backend="torch", workers=1, model_check_s=0))) as srv:
        csv = "Title\nCEO\n\u200b\u2060\x01\nVP of Sales\n".encode()
        r = httpx.post(srv.url + "/predict_csv", files={"file": ("mine.csv", csv, "text/csv")})
        cesu = httpx.post(srv.url + "/predict_csv", files={"file": ("s.csv", b"Title\nVP \xed\xa0\x80\n", "text/csv")})
    assert r.status_code == 200, r.text
    assert [(p["row"], p["title"]) for p in r.json()["predictions"]] == [(2, "CEO"), (4, "VP of Sales")]
    assert cesu.status_code == 400 and cesu.json()["error"]["message"].startswith("s.csv: row 2 is not valid utf-8")
    with pytest.raises(ApiError, match=r"^mine.csv row 7: a lone UTF-16 surrogate \('\\ud800'\) at character 3"):
        check_texts(["CEO", "VP \ud800"], ["mine.csv row 2", "mine.csv row 7"], "file")


def hostile_bodies() -> list[tuple[str, str, bytes, int, str, str | None]]:
    """(what, route, raw body, status, error code, message start or None)."""
    deep = b'{"titles": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return [
        ("deep nesting", "/predict", deep, 400, "invalid_json",
         "the body is not valid JSON for this server: arrays or objects nested too deeply"),
        ("5,000-digit number", "/", b'{"inputs": "CEO", "parameters": {"top_k": 1' + b"0" * 5000 + b"}}", 400,
         "invalid_json", "the body is not valid JSON for this server: a number has more than 4,300 digits"),
        ("5,000-digit number in an ignored key", "/", b'{"inputs": "CEO", "x": ' + b"9" * 5000 + b"}", 400,
         "invalid_json", None),
        ("top_k NaN", "/", b'{"inputs": "CEO", "parameters": {"top_k": NaN}}', 422, "invalid_value",
         "parameters.top_k: Input should be a valid integer"),
        ("top_k Infinity", "/", b'{"inputs": "CEO", "parameters": {"top_k": Infinity}}', 422, "invalid_value", None),
        ("top_k 1e999", "/", b'{"inputs": "CEO", "parameters": {"top_k": 1e999}}', 422, "invalid_value", None),
        ("top_k as a string", "/", b'{"inputs": "CEO", "parameters": {"top_k": "2"}}', 422, "invalid_value",
         "parameters.top_k: Input should be a valid integer (found string)"),
        ("top_k true", "/", b'{"inputs": "CEO", "parameters": {"top_k": true}}', 422, "invalid_value",
         "parameters.top_k: Input should be a valid integer (found boolean)"),
        ("top_k 2.5", "/", b'{"inputs": "CEO", "parameters": {"top_k": 2.5}}', 422, "invalid_value", None),
        ("parameters a list", "/", b'{"inputs": "CEO", "parameters": [1]}', 422, "invalid_body",
         "parameters: expected a JSON object, found array"),
        ("function_to_apply a number", "/", b'{"inputs": "CEO", "parameters": {"function_to_apply": 5}}', 422,
         "invalid_value", None),
        ("inputs an object", "/", b'{"inputs": {"text": "CEO"}}', 422, "invalid_type",
         "inputs: expected a string or a list of strings, found object"),
        ("inputs a boolean", "/", b'{"inputs": true}', 422, "invalid_type", None),
        ("inputs nested", "/", b'{"inputs": [["CEO"]]}', 422, "invalid_type", "inputs[0]: expected a string"),
        ("titles a number", "/predict", b'{"titles": 1e400}', 422, "invalid_type", None),
        ("title a boolean", "/predict", b'{"titles": ["CEO", false]}', 422, "invalid_type",
         "titles[1]: expected a string, found boolean"),
        ("title zero-width only", "/predict", '{"titles": ["\u200b\u200d"]}'.encode(), 422, "empty_title",
         "titles[0]: empty title"),
        ("title of controls", "/predict", b'{"titles": ["\\u0000\\u0007"]}', 422, "empty_title", None),
        ("unknown key with a surrogate", "/predict", b'{"titles": "CEO", "\\ud800x": 1}', 422, "invalid_text",
         "body: the key '\\ud800x' is not valid Unicode (a lone UTF-16 surrogate)"),
        ("parameter key with a surrogate", "/", b'{"inputs": "CEO", "parameters": {"\\udfff": 1}}', 422,
         "invalid_text", None),
        ("unknown key of 100 kB", "/predict", b'{"titles": "CEO", "' + b"k" * 100_000 + b'": 1}', 422,
         "unknown_field", None),
        ("JSON string body", "/predict", b'"CEO"', 422, "invalid_body", None),
        ("JSON number body", "/", b"42", 422, "invalid_body", None),
    ]


def test_hostile_json_bodies_get_a_4xx_of_the_error_shape(server):
    failures = []
    with httpx.Client(timeout=30) as client:
        for what, route, body, status, code, start in hostile_bodies():
            r = client.post(server.url + route, content=body, headers={"content-type": "application/json"})
            try:
                error = r.json()["error"]
                ok = (r.status_code == status and error["code"] == code and set(r.json()) == {"error"}
                      and (start is None or error["message"].startswith(start)) and len(r.content) < 1000)
            except (ValueError, KeyError):
                ok = False
            if not ok:
                failures.append(f"{what}: {r.status_code} {r.text[:300]}")
        good = client.post(server.url + "/predict", json={"titles": ["VP of Sales"]})
    assert not failures, "\n".join(failures)
    assert good.status_code == 200


def test_a_bug_is_the_json_500_logged_once_without_a_traceback_in_the_answer(model_dir, caplog):
    app = create_app(ServeSettings(model_dir, backend="torch", workers=1, model_check_s=0))
    with BackgroundServer(app) as srv:
        def broken(titles):
            raise RuntimeError("boom in /srv/secret/model")

        app.state.loaded.batcher.predict = broken
        with caplog.at_level(logging.ERROR, logger="jobtitles.serve"):
            r = httpx.post(srv.url + "/predict", json={"titles": ["CEO"]})
        metrics = httpx.get(srv.url + "/metrics").text
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal_error", "message": "internal error; the server log has the "
                                                                       "details"}}
    assert "boom" not in r.text and "Traceback" not in r.text and "/srv" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "jobtitles.serve" and rec.levelno >= logging.ERROR]
    assert [rec.getMessage() for rec in logged] == ["unhandled error in POST /predict"]
    assert logged[0].exc_info is not None  # the traceback goes to the log, once
    assert 'jobtitles_http_requests_total{method="POST",route="/predict",status="500"} 1.0' in metrics


# --- 4. model folders and settings refused in one line --------------------------------------------------------
def test_a_plain_transformers_checkpoint_is_refused_in_one_line(tiny_model_dir, capsys):
    from jobtitles.serve.cli import serve_main

    assert serve_main(["--model", str(tiny_model_dir), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tiny_model_dir}: not a trained multi-label classifier") and err.count("\n") == 1
    with pytest.raises(UserError, match="not a trained multi-label classifier .*found problem_type None"):
        create_app(ServeSettings(tiny_model_dir))


def test_a_model_that_fails_to_load_is_one_line_at_startup(model_dir, tmp_path, capfd):
    """A folder that passes the config check but whose weights are missing: the lifespan's UserError, not
    Starlette's formatted traceback; BackgroundServer raises it and serve.py exits 2."""
    from jobtitles.serve.cli import serve_main

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(UserError, match="the model weights do not load"):
        with BackgroundServer(create_app(ServeSettings(folder, backend="torch", workers=1, model_check_s=0))):
            pass
    assert "Traceback" not in capfd.readouterr().err
    assert serve_main(["--model", str(folder), "--backend", "torch", "--port", "0", "--workers", "1"]) == 2
    err = capfd.readouterr().err
    assert "the model weights do not load" in err and "Application startup failed" in err
    assert "Traceback" not in err


def test_settings_are_checked_in_one_place(model_dir, capsys):
    from jobtitles.serve.cli import serve_main

    cases = [({"max_titles": 0}, "--max_titles: expected a positive number, found 0"),
             ({"body_timeout": -1}, "--body_timeout: expected a positive number of seconds, found -1"),
             ({"shutdown_timeout": float("nan")}, "--shutdown_timeout: expected a positive number of seconds, "
                                                  "found nan"),
             ({"header_timeout": 0}, "--header_timeout: expected a positive number of seconds, found 0"),
             ({"workers": True}, r"--workers: expected 0 \(one per core\) or a positive number, found True"),
             ({"batch_wait_ms": "5"}, "--batch_wait_ms: expected 0 or a positive number of milliseconds, found '5'"),
             ({"max_body_mb": float("inf")}, "--max_body_mb: expected a positive number of megabytes, found inf"),
             ({"model_check_s": -0.5}, r"--model_check_s: expected 0 \(never\) or a positive number of seconds"),
             ({"backend": "tpu"}, "--backend: expected one of torch, onnx, onnx-int8, found 'tpu'")]
    for options, message in cases:
        with pytest.raises(UserError, match=f"^{message}"):
            create_app(ServeSettings(model_dir, **options))
    for folder in (5, None, ""):
        with pytest.raises(UserError, match=f"^--model: expected a model folder path, found {folder!r}"):
            ServeSettings(folder)
    assert serve_main(["--model", str(model_dir), "--body_timeout", "-1"]) == 2
    assert capsys.readouterr().err == "error: --body_timeout: expected a positive number of seconds, found -1.0\n"


def test_a_port_in_use_is_one_line(model_dir, capsys):
    from jobtitles.serve.cli import serve_main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        taken.listen()
        assert serve_main(["--model", str(model_dir), "--port", str(port), "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --host 127.0.0.1 --port {port}: cannot listen there (") and err.count("\n") == 1


# --- 5. no server path in any answer --------------------------------------------------------------------------
def test_no_answer_names_a_server_path(model_dir, tmp_path, monkeypatch):
    from jobtitles.serve import backend

    folder = tmp_path / "served-here" / "model"
    shutil.copytree(model_dir.parent, folder.parent, ignore=shutil.ignore_patterns("folds", "plots"))
    monkeypatch.setattr(backend, "_onnxruntime_installed", lambda: True)
    monkeypatch.setattr(backend, "_writable", lambda folder: False)  # a reason that used to quote the folder
    app = create_app(ServeSettings(folder, workers=1, model_check_s=0))
    with BackgroundServer(app) as srv:
        answers = [httpx.get(srv.url + path) for path in ("/info", "/health", "/metrics", "/", "/static/app.js",
                                                          "/nope", "/docs", "/openapi.json")]
        answers += [httpx.post(srv.url + "/predict", json={"titles": []}),
                    httpx.post(srv.url + "/predict_csv", files={"file": ("a.csv", b"Name\nCEO\n", "text/csv")}),
                    httpx.post(srv.url + "/predict_csv", files={"file": ("a.csv", b"Title\n\xff\n", "text/csv")}),
                    httpx.post(srv.url + "/", json={"inputs": "CEO"})]
    info = answers[0].json()
    assert info["backend"] == "torch" and "read-only" in info["backend_reason"] and "model_dir" not in info
    assert info["base_model"].endswith("(a local folder)")  # the tiny base model is a local folder
    for r in answers:
        for secret in (str(tmp_path), str(model_dir.parent.parent), "/tmp/", "served-here"):
            assert secret not in r.text, (r.request.url, secret, r.text[:500])


# --- 6. a model folder replaced under the server ------------------------------------------------------------
def test_a_replaced_model_folder_is_logged_once_and_reported_by_health(model_dir, tmp_path, caplog):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    app = create_app(ServeSettings(folder, backend="torch", workers=1, model_check_s=0.1))
    with caplog.at_level(logging.WARNING, logger="jobtitles.serve"), BackgroundServer(app) as srv:
        time.sleep(0.3)
        assert httpx.get(srv.url + "/health").json() == {"status": "ok", "model_changed": False}
        config = folder / "config.json"
        cfg = json.loads(config.read_text())
        cfg["decision_thresholds"] = {lab: 0.01 for lab in cfg["decision_thresholds"]}
        config.write_text(json.dumps(cfg))  # someone copies another run's folder over this one
        deadline, health = time.monotonic() + 10, {}
        while time.monotonic() < deadline and not health.get("model_changed"):
            time.sleep(0.1)
            health = httpx.get(srv.url + "/health").json()
        time.sleep(0.3)  # a few more checks: the warning is not repeated
        served = httpx.post(srv.url + "/predict", json={"titles": ["VP of Sales"]})
    assert health == {"status": "ok", "model_changed": True}
    warnings = [r.getMessage() for r in caplog.records if "changed on disk" in r.getMessage()]
    assert warnings == [f"{folder} changed on disk since it was loaded; still serving the loaded model: restart the "
                        f"server to serve the new files"]
    assert served.status_code == 200  # the loaded model goes on serving
