"""The HTTP service (serve.py / jobtitles.serve) against the real server on a free loopback port, with the
tiny trained model: predictions equal TitleClassifier's, the Hugging Face InferenceClient works unchanged, bad
requests get one 4xx JSON shape and the server keeps serving, the API key, micro-batching, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from jobtitles.predict.inference import TitleClassifier
from jobtitles.serve import ServeSettings, create_app
from jobtitles.serve.runner import BackgroundServer

ROOT = Path(__file__).resolve().parents[1]
KEY = "s3cret-key"
TITLES = ["VP of Sales", "Senior Software Engineer", "CEO & Founder"]


@pytest.fixture(scope="module", autouse=True)
def torch_threads_restored():
    """Servers here load the torch backend with one intra-op thread per worker (torch's setting is process-wide):
    later test files get their threads back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tiny_run_dir) -> Path:
    return tiny_run_dir / "model"


@pytest.fixture(scope="module")
def reference(model_dir) -> TitleClassifier:
    return TitleClassifier(model_dir, backend="torch")


@pytest.fixture(scope="module")
def server(model_dir):
    app = create_app(ServeSettings(model_dir, backend="torch", max_body_mb=0.5, max_titles=50, batch_wait_ms=1))
    with BackgroundServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(model_dir):
    with BackgroundServer(create_app(ServeSettings(model_dir, backend="torch", api_key=KEY))) as srv:
        yield srv


def test_predict_matches_title_classifier(server, reference):
    r = httpx.post(server.url + "/predict", json={"titles": TITLES})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["labels"] == reference.labels
    scores = reference.predict_scores(TITLES)
    assert [p["title"] for p in body["predictions"]] == TITLES  # input order
    assert [p["labels"] for p in body["predictions"]] == reference.predict(TITLES)
    served = np.array([[p["scores"][lab] for lab in reference.labels] for p in body["predictions"]])
    np.testing.assert_allclose(served, scores, atol=1e-5)
    assert not any(p["truncated"] for p in body["predictions"]) and body["n_truncated"] == 0

    one = httpx.post(server.url + "/predict", json={"titles": "VP of Sales"}).json()  # one string
    assert one["predictions"][0]["labels"] == reference.predict("VP of Sales")


def test_label_sets_follow_the_saved_decision_rule(model_dir, tmp_path):
    """The served label sets come from the folder's own rule (TitleClassifier.decide), not from a fixed 0.5."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["decision_thresholds"] = {lab: 0.001 for lab in cfg["decision_thresholds"]}  # nearly every label passes
    (folder / "config.json").write_text(json.dumps(cfg))
    clf = TitleClassifier(folder, backend="torch")
    expected = clf.predict(TITLES)
    assert any(len(labels) > 2 for labels in expected)  # far from what a 0.5 cut would give
    with BackgroundServer(create_app(ServeSettings(folder, backend="torch"))) as srv:
        body = httpx.post(srv.url + "/predict", json={"titles": TITLES}).json()
    assert [p["labels"] for p in body["predictions"]] == expected


def test_long_title_is_truncated_and_said(server, reference):
    long_title = "Senior Vice President of Global Sales " * 3000  # about 110,000 characters
    r = httpx.post(server.url + "/predict", json={"titles": [long_title, "CEO"]})
    assert r.status_code == 200, r.text
    first, second = r.json()["predictions"]
    assert first["truncated"] is True and second["truncated"] is False and r.json()["n_truncated"] == 1
    assert first["labels"] == reference.predict(long_title)  # the model saw the first max_length tokens


def test_truncated_flags_agree_with_a_full_tokenization(reference):
    from jobtitles.serve.predictor import Predictor

    predictor = Predictor(reference)
    n = reference.max_length
    titles = ["CEO", "a " * (n - 3), "a " * (n - 2), "a " * n, "x" * (n - 3), "é" * n, "VP " * n, "a." * (n // 2 + 2), "Straße " * 9,
              "Geschäftsführer " * (n // 3), "最高経営責任者" * 10]
    counts = [len(ids) for ids in reference.tokenizer(titles, truncation=False, verbose=False)["input_ids"]]
    assert predictor.scores(titles)[1] == [c > n for c in counts]  # the flags of the one tokenization
    assert any(c > n for c in counts) and any(c <= n for c in counts)


def test_health_and_info(server, reference):
    assert httpx.get(server.url + "/health").json() == {"status": "ok", "model_changed": False}
    info = httpx.get(server.url + "/info").json()
    assert info["labels"] == reference.labels
    assert info["thresholds"] == pytest.approx(dict(zip(reference.labels, reference.thresholds.tolist())))
    assert info["backend"] == "torch" and info["max_titles"] == 50
    names = [m["name"] for m in info["cv_metrics"]]
    assert "CV micro-F1 (2-fold)" in names and "CV subset accuracy (2-fold)" in names
    cv = json.loads((reference.model_dir.parent / "cv_results.json").read_text())
    variant = cv["decision_rule"]["variant"]  # the shipped rule's figures, as in the card
    assert info["cv_micro_f1"] == pytest.approx(round(cv["summary"][variant]["micro_f1"]["mean"], 4))
    assert info["base_model"]  # from the card or the run's run_info.json


def test_page_and_static_files(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and 'id="titles"' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from outside the server
    for name in ("app.js", "style.css"):
        r = httpx.get(f"{server.url}/static/{name}")
        assert r.status_code == 200 and len(r.text) > 500
    assert "://" not in httpx.get(server.url + "/static/app.js").text


def test_csv_upload(server, reference):
    csv = "Title;Column 1;Column 2\nVP of Sales;Vice President;\n\nCEO & Founder;Chief Officer;Owner\n"
    r = httpx.post(server.url + "/predict_csv", files={"file": ("mine.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["title"] for p in preds] == ["VP of Sales", "CEO & Founder"]
    assert [p["row"] for p in preds] == [2, 4]  # file line numbers
    assert [p["gold"] for p in preds] == [["Vice President"], ["Chief Officer", "Owner"]]
    assert [p["labels"] for p in preds] == reference.predict(["VP of Sales", "CEO & Founder"])


HF_CLIENT = """
import json, sys
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
url, keyed_url, key = sys.argv[1:4]
out = {}
out["plain"] = [e.__dict__ for e in InferenceClient(base_url=url).text_classification("VP of Sales")]
out["top2"] = [e.__dict__ for e in InferenceClient(base_url=url).text_classification("VP of Sales", top_k=2)]
out["keyed"] = [e.__dict__ for e in InferenceClient(base_url=keyed_url, api_key=key).text_classification("CEO")]
try:
    InferenceClient(base_url=keyed_url).text_classification("CEO")
    out["no_key"] = "accepted"
except HfHubHTTPError as err:
    out["no_key"] = err.response.status_code
print(json.dumps(out))
"""


def test_huggingface_inference_client(server, keyed_server, reference):
    # huggingface_hub refuses every request (loopback too) while HF_HUB_OFFLINE is set: the client runs in a
    # process without it (huggingface_hub also reads TRANSFORMERS_OFFLINE); the servers stay offline.
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", HF_CLIENT, server.url, keyed_server.url, KEY], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    scores = dict(zip(reference.labels, reference.predict_scores(["VP of Sales"])[0].tolist()))
    best_first = sorted(scores.items(), key=lambda kv: -kv[1])
    assert [e["label"] for e in out["plain"]] == [lab for lab, _ in best_first]
    assert [e["score"] for e in out["plain"]] == pytest.approx([s for _, s in best_first], abs=1e-5)
    assert [e["label"] for e in out["top2"]] == [lab for lab, _ in best_first[:2]]
    assert len(out["keyed"]) == len(reference.labels)
    assert out["no_key"] == 401

    # a plain {"inputs": [...]} POST: a list per input; softmax from the same logits sums to 1
    r = httpx.post(server.url + "/", json={"inputs": ["VP of Sales", "CEO"],
                                           "parameters": {"function_to_apply": "softmax"}})
    assert r.status_code == 200 and len(r.json()) == 2
    assert sum(e["score"] for e in r.json()[0]) == pytest.approx(1.0, abs=1e-4)


def bad_requests(url: str) -> list[tuple[str, dict, int, str]]:
    """(what, httpx.request kwargs, expected status, expected error code)."""
    j = {"headers": {"content-type": "application/json"}}
    big = json.dumps({"titles": ["x" * 1000] * 600})  # about 600 kB, over the 0.5 MB limit

    def chunked():  # no Content-Length: the limit is counted on the bytes that arrive
        yield b'{"titles": ["'
        for _ in range(60):
            yield b"y" * 10_000
        yield b'"]}'

    def csv(name: str, body: bytes, ctype: str = "text/csv") -> dict:
        return {"files": {"file": (name, body, ctype)}}

    p, c, hf = ("POST", url + "/predict"), ("POST", url + "/predict_csv"), ("POST", url + "/")
    rows = [
        ("empty list", {"json": {"titles": []}}, 422, "empty_list"),
        ("missing field", {"json": {}}, 422, "missing_field"),
        ("numbers", {"json": {"titles": [1, 2]}}, 422, "invalid_type"),
        ("null titles", {"json": {"titles": None}}, 422, "invalid_type"),
        ("null body", {"content": b"null", **j}, 422, "invalid_body"),
        ("empty body", {"content": b"", **j}, 422, "missing_body"),
        ("null inside", {"json": {"titles": ["CEO", None]}}, 422, "invalid_type"),
        ("nested list", {"json": {"titles": [["CEO"]]}}, 422, "invalid_type"),
        ("object", {"json": {"titles": {"a": "CEO"}}}, 422, "invalid_type"),
        ("blank title", {"json": {"titles": ["CEO", "   "]}}, 422, "empty_title"),
        ("unknown field", {"json": {"titles": "CEO", "top_k": 3}}, 422, "unknown_field"),
        ("array body", {"json": ["CEO"]}, 422, "invalid_body"),
        ("too many titles", {"json": {"titles": ["CEO"] * 51}}, 413, "too_many_titles"),
        ("body over the limit", {"content": big.encode(), **j}, 413, "body_too_large"),
        ("chunked body over the limit", {"content": chunked(), **j}, 413, "body_too_large"),
        ("text/plain", {"content": b'{"titles": ["CEO"]}', "headers": {"content-type": "text/plain"}}, 415,
         "unsupported_media_type"),
        ("form encoded (curl -d without -H)", {"data": {"titles": "CEO"}}, 415, "unsupported_media_type"),
        ("invalid JSON", {"content": b'{"titles": ["CEO"', **j}, 400, "invalid_json"),
        ("invalid UTF-8", {"content": b'{"titles": ["Gesch\xe4ftsf\xfchrer"]}', **j}, 400, "invalid_utf8"),
        ("HF: number", {"json": {"inputs": 5}, "_target": hf}, 422, "invalid_type"),
        ("HF: top_k 0", {"json": {"inputs": "CEO", "parameters": {"top_k": 0}}, "_target": hf}, 422,
         "invalid_value"),
        ("HF: unknown function", {"json": {"inputs": "CEO", "parameters": {"function_to_apply": "relu"}},
                                  "_target": hf}, 422, "invalid_value"),
        ("CSV: no Title column", {**csv("a.csv", b"Name;Column 1\nCEO;Chief Officer\n"), "_target": c}, 400,
         "invalid_csv"),
        ("CSV: comma-delimited", {**csv("a.csv", b"Title,Column 1\nCEO,Chief Officer\n"), "_target": c}, 400,
         "invalid_csv"),
        ("CSV: not UTF-8", {**csv("a.csv", b"Title;Column 1\nGesch\xe4ftsf\xfchrer;\n"), "_target": c}, 400,
         "invalid_csv"),
        ("CSV: empty file", {**csv("a.csv", b""), "_target": c}, 400, "invalid_csv"),
        ("CSV: spreadsheet", {**csv("a.xlsx", b"PK\x03\x04", "application/octet-stream"), "_target": c}, 415,
         "unsupported_file"),
        ("CSV: no file field", {"files": {"other": ("a.csv", b"Title\nCEO\n")}, "_target": c}, 422,
         "missing_field"),
        ("CSV: sent as JSON", {"json": {"titles": ["CEO"]}, "_target": c}, 415, "unsupported_media_type"),
        ("CSV: too many rows", {**csv("a.csv", b"Title\n" + b"CEO\n" * 51), "_target": c}, 413, "too_many_titles"),
        ("GET on a POST route", {"_target": ("GET", url + "/predict")}, 405, "method_not_allowed"),
        ("no such route", {"json": {}, "_target": ("POST", url + "/nope")}, 404, "not_found"),
    ]
    return [(what, {"_target": p, **kw}, status, code) for what, kw, status, code in rows]


def test_bad_requests_get_one_json_shape_and_the_server_keeps_serving(server, reference):
    cases = bad_requests(server.url)
    assert len(cases) >= 20
    failures = []
    with httpx.Client(timeout=30) as client:
        for what, kw, status, code in cases:
            method, target = kw.pop("_target")
            r = client.request(method, target, **kw)
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            ok = (r.status_code == status and body is not None and set(body) == {"error"}
                  and body["error"]["code"] == code and len(body["error"]["message"]) > 10
                  and "Traceback" not in r.text)
            if not ok:
                failures.append(f"{what}: {r.status_code} {r.text[:300]}")
        assert not failures, "\n".join(failures)
        good = client.post(server.url + "/predict", json={"titles": TITLES})
    assert good.status_code == 200 and [p["labels"] for p in good.json()["predictions"]] == reference.predict(TITLES)


def test_error_messages_say_what_was_expected_and_found(server):
    r = httpx.post(server.url + "/predict", json={"titles": ["CEO", 42]})
    assert r.json()["error"] == {"code": "invalid_type", "field": "titles[1]",
                                 "message": "titles[1]: expected a string, found number"}
    r = httpx.post(server.url + "/predict", json={"titles": ["CEO"] * 51})
    assert "51 titles; at most 50 per request (--max_titles)" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/predict_csv", files={"file": ("mine.csv", b"Name;Column 1\nCEO;x\n")})
    assert r.json()["error"]["message"].startswith("mine.csv")  # the user's file name, not a temp path
    assert "Title" in r.json()["error"]["message"]


def test_api_key_is_compared_once_per_request(keyed_server, monkeypatch):
    """The route classes check the key before the body is read; the /docs dependency does not check it again."""
    import secrets

    calls = []
    real = secrets.compare_digest
    monkeypatch.setattr("jobtitles.serve.guards.secrets.compare_digest", lambda a, b: calls.append(1) or real(a, b))
    key = {"X-API-Key": KEY}
    for method, path, body in (("GET", "/info", None), ("POST", "/predict", {"titles": ["CEO"]}),
                               ("POST", "/", {"inputs": "CEO"})):
        calls.clear()
        r = httpx.request(method, keyed_server.url + path, json=body, headers=key)
        assert (r.status_code, len(calls)) == (200, 1), (path, r.text)


def test_api_key(keyed_server):
    url = keyed_server.url
    assert httpx.get(url + "/health").status_code == 200  # open: load balancers probe it
    assert httpx.get(url + "/").status_code == 200  # the page and its files are open; the page asks for the key
    assert httpx.get(url + "/static/app.js").status_code == 200
    for method, path in (("GET", "/info"), ("POST", "/predict"), ("POST", "/"), ("POST", "/predict_csv")):
        r = httpx.request(method, url + path, json={"titles": ["CEO"]})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (path, r.text)
        wrong = httpx.request(method, url + path, json={"titles": ["CEO"]}, headers={"X-API-Key": KEY + "x"})
        assert wrong.status_code == 401
    ok = httpx.post(url + "/predict", json={"titles": ["CEO"]}, headers={"X-API-Key": KEY})
    assert ok.status_code == 200
    bearer = httpx.post(url + "/", json={"inputs": "CEO"}, headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200
    # the key is checked before the body: a stranger learns nothing about the API from error messages
    assert httpx.post(url + "/predict", content=b"{", headers={"content-type": "text/plain"}).status_code == 401


class FakePredictor:
    """Records the titles of every model call; a title's 'score' is its length."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def scores(self, titles):
        self.calls.append(list(titles))
        time.sleep(0.02)
        return np.array([[len(t)] for t in titles], dtype=np.float32), [False] * len(titles)

    def predictions(self, titles, scored):
        scores, _ = scored
        return [(t, float(s[0])) for t, s in zip(titles, scores)]


@pytest.mark.parametrize("enabled", [True, False])
def test_micro_batching_shares_model_calls_and_keeps_each_answer(enabled):
    from jobtitles.serve.batching import MicroBatcher

    fake = FakePredictor()
    batcher = MicroBatcher([fake], wait_ms=200, max_batch_titles=64, enabled=enabled)  # type: ignore[arg-type]
    requests = [[f"title {i}" + "x" * i] for i in range(10)] + [["a", "bb", "ccc"]]

    async def main():
        return await asyncio.gather(*(batcher.predict(r) for r in requests))

    answers = asyncio.run(main())
    batcher.close()
    assert answers == [[(t, float(len(t))) for t in r] for r in requests]  # each request gets its own rows
    if enabled:
        assert len(fake.calls) == 1 and len(fake.calls[0]) == 13
        assert batcher.stats.batch_sizes == {11: 1}
    else:
        assert len(fake.calls) == 11


class OverlappingFake(FakePredictor):
    """Its first call waits (up to 10 s) until the other fake's first call runs too: passes only if two workers
    run parts of one request at the same time."""

    def __init__(self, both_running: threading.Barrier) -> None:
        super().__init__()
        self.both_running = both_running

    def scores(self, titles):
        self.calls.append(list(titles))
        if len(self.calls) == 1:
            self.both_running.wait()
        return np.array([[len(t)] for t in titles], dtype=np.float32), [False] * len(titles)


def test_long_requests_are_split_over_the_workers_and_come_back_in_order():
    from jobtitles.serve.batching import MicroBatcher

    both_running = threading.Barrier(2, timeout=10)
    fakes = [OverlappingFake(both_running), OverlappingFake(both_running)]
    batcher = MicroBatcher(fakes, wait_ms=0, max_batch_titles=64)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    long_request = [f"t{i}" + "x" * int(rng.integers(0, 80)) for i in range(150)]

    async def main():
        return await batcher.predict(long_request)

    answer = asyncio.run(main())
    batcher.close()
    assert answer == [(t, float(len(t))) for t in long_request]  # every row back in input order
    calls = [c for fake in fakes for c in fake.calls]
    assert sorted(len(c) for c in calls) == [22, 64, 64]  # one request, three parts of at most 64 titles
    assert all(len(fake.calls) >= 1 for fake in fakes) and not both_running.broken  # both ran parts at once
    # each part is a run of the length-sorted titles (little padding): the parts' length ranges do not overlap
    ranges = sorted((min(map(len, c)), max(map(len, c))) for c in calls)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(ranges, ranges[1:]))
    assert batcher.stats.model_calls == 3 and batcher.stats.titles == 150


def test_two_workers_serve_what_title_classifier_predicts(model_dir, reference):
    import gc

    titles = [f"{level} of {area}" for level in ("VP", "Director", "Head", "Senior Manager", "Chief")
              for area in ("Sales", "Marketing", "Engineering", "Data Science & Analytics")]
    gc.unfreeze()  # what earlier servers in this process froze
    app = create_app(ServeSettings(model_dir, backend="torch", workers=2, max_batch_titles=8))
    with BackgroundServer(app) as srv:
        assert gc.get_freeze_count() > 10_000  # the loaded libraries' objects are out of the collector's reach
        body = httpx.post(srv.url + "/predict", json={"titles": titles}).json()
        info = httpx.get(srv.url + "/info").json()
        loaded = app.state.loaded
        assert len(loaded.batcher._threads) == 2
        assert loaded.batcher.stats.model_calls == 3 and loaded.batcher.stats.largest_batch == 8  # 20 titles, parts of 8
    assert gc.get_freeze_count() == 0  # given back at shutdown
    assert [p["title"] for p in body["predictions"]] == titles
    assert [p["labels"] for p in body["predictions"]] == reference.predict(titles)
    served = np.array([[p["scores"][lab] for lab in reference.labels] for p in body["predictions"]])
    np.testing.assert_allclose(served, reference.predict_scores(titles), atol=1e-5)
    assert info["batching"]["workers"] == 2 and info["batching"]["threads_per_worker"] >= 1


def test_prometheus_metrics_count_requests_titles_and_model_calls(model_dir):
    from prometheus_client.parser import text_string_to_metric_families

    app = create_app(ServeSettings(model_dir, backend="torch", api_key=KEY, max_body_mb=0.01))
    key = {"X-API-Key": KEY}
    with BackgroundServer(app) as srv:
        for titles in (["VP of Sales"], ["CEO", "Senior Software Engineer"], ["Director " * 400]):
            assert httpx.post(srv.url + "/predict", json={"titles": titles}, headers=key).status_code == 200
        assert httpx.post(srv.url + "/predict", json={"titles": []}, headers=key).status_code == 422
        assert httpx.post(srv.url + "/predict", json={"titles": ["x" * 20_000]}, headers=key).status_code == 413
        assert httpx.get(srv.url + "/metrics").status_code == 401  # behind the API key like every data route
        r = httpx.get(srv.url + "/metrics", headers=key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(r.text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("jobtitles_http_requests_total", route="/predict", method="POST", status="200") == 3
    assert value("jobtitles_http_requests_total", route="/predict", method="POST", status="422") == 1
    assert value("jobtitles_http_requests_total", route="unrouted", method="POST", status="413") == 1
    assert value("jobtitles_http_requests_total", route="/metrics", method="GET", status="401") == 1
    assert value("jobtitles_http_request_duration_seconds_count", route="/predict") == 4
    assert value("jobtitles_titles_predicted_total") == 4  # the 422 never reached the model
    assert value("jobtitles_titles_truncated_total") == 1
    assert value("jobtitles_model_call_duration_seconds_count") == 3
    assert value("jobtitles_model_call_duration_seconds_sum") > 0
    assert value("jobtitles_model_call_titles_sum") == 4
    assert value("jobtitles_queue_depth") == 0
    info = next(labels for (name, labels) in samples if name == "jobtitles_model_info")
    assert dict(info)["backend"] == "torch" and int(dict(info)["workers"]) >= 1


def test_truncated_titles_are_counted_on_the_hugging_face_route_too(model_dir):
    app = create_app(ServeSettings(model_dir, backend="torch", workers=1))
    with BackgroundServer(app) as srv:
        r = httpx.post(srv.url + "/", json={"inputs": ["Director " * 400, "VP of Sales"]})
        assert r.status_code == 200, r.text
        text = httpx.get(srv.url + "/metrics").text
    assert "jobtitles_titles_truncated_total 1.0" in text.splitlines()


def test_metrics_labels_stay_bounded_and_a_vanished_client_is_not_a_server_error():
    from jobtitles.serve.metrics import MetricsMiddleware, create_metrics

    async def not_found(scope, receive, send):
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def client_left(scope, receive, send):  # what the body-limit middleware does on a disconnect
        return None

    async def sent(message):
        return None

    metrics = create_metrics()
    for method in ("ZZZ123", "QQQ", "GET"):  # h11 passes any method token through
        asyncio.run(MetricsMiddleware(not_found, metrics)({"type": "http", "method": method, "path": f"/{method}"},
                                                          None, sent))
    asyncio.run(MetricsMiddleware(client_left, metrics)({"type": "http", "method": "POST", "path": "/predict"},
                                                        None, sent))
    counted = {tuple(s.labels.values()): s.value for s in metrics.requests.collect()[0].samples
               if s.name.endswith("_total")}
    assert counted == {("unrouted", "other", "404"): 2, ("unrouted", "GET", "404"): 1,
                       ("unrouted", "POST", "499"): 1}


def test_backend_choice_falls_back_to_torch_on_a_read_only_folder(model_dir, monkeypatch):
    from jobtitles.serve import backend

    monkeypatch.setattr(backend, "_writable", lambda folder: False)  # root ignores chmod; the rule is what counts
    choice = backend.choose_backend(model_dir, None)
    assert choice.backend == "torch" and "read-only" in choice.reason
    assert not (model_dir / "onnx").exists()


def test_writable_probe(tmp_path):
    from jobtitles.serve.backend import _writable

    assert _writable(tmp_path)
    assert not _writable(tmp_path / "missing")
    if os.geteuid() != 0:  # root writes into 0o555 folders anyway
        tmp_path.chmod(0o555)
        try:
            assert not _writable(tmp_path)
        finally:
            tmp_path.chmod(0o755)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_py_exports_onnx_int8_and_sigterm_finishes_requests_in_flight(tiny_run_dir, tmp_path, reference):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)  # the server exports ONNX into the model folder (and reads the CV rows)
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--model", str(run / "model"),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        info = httpx.get(url + "/info").json()
        assert info["backend"] == "onnx-int8" and (run / "model" / "onnx" / "model_int8.onnx").is_file()

        # A request in flight: headers and half the body sent, then SIGTERM, then the rest of the body.
        body = json.dumps({"titles": TITLES}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert proc.poll() is None  # still waiting for the request in flight
            with pytest.raises(OSError):  # no new connections meanwhile
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            sock.sendall(body[10:])
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw[:300]
        preds = json.loads(payload)["predictions"]
        int8 = TitleClassifier(run / "model", backend="onnx-int8")
        assert [p["labels"] for p in preds] == int8.predict(TITLES)
        assert proc.wait(timeout=30) == 0  # a finished graceful shutdown is a normal exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_serve_py_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    from jobtitles.serve.cli import serve_main

    assert serve_main(["--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "config.json" in err and "Traceback" not in err
    assert serve_main(["--model", str(tmp_path), "--max_titles", "0"]) == 2
    assert "--max_titles: expected a positive number, found 0" in capsys.readouterr().err


def test_first_use_export_without_parity_rows_serves_torch_and_writes_nothing(model_dir, tmp_path, caplog):
    """A folder from before parity_rows.csv, copied away from its run, has no titles to calibrate static int8 on
    nor to check it against: PyTorch is served with the reason, and nothing is written into the folder; the
    files a first-use export would write are named in a warning first."""
    from jobtitles.serve.backend import choose_backend

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    (folder / "parity_rows.csv").unlink()
    before = sorted(p.name for p in folder.iterdir())
    with caplog.at_level(logging.WARNING, logger="jobtitles.serve"):
        choice = choose_backend(folder, None)
    assert choice.backend == "torch" and choice.reason.startswith("int8 could not be exported (")
    assert "parity_rows.csv not found" in choice.reason and "pass --titles" in choice.reason
    assert sorted(p.name for p in folder.iterdir() if p.name != "onnx") == before
    assert not list((folder / "onnx").glob("*.onnx")) if (folder / "onnx").exists() else True
    assert any(r.levelno == logging.WARNING and "writing onnx/model.onnx, onnx/model_int8.onnx and "
               f"onnx/parity.json into {folder}" in r.getMessage() for r in caplog.records)


def test_an_int8_file_that_passed_no_parity_check_is_not_served_nor_replaced(model_dir, tmp_path):
    """serve picks int8 by the same record as predict.py and Spark: a file without a passed check (or replaced
    since it passed) is left as it is and PyTorch is served; a checked copy of the folder serves int8."""
    from jobtitles.predict.export import export_model
    from jobtitles.serve.backend import choose_backend

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    report = export_model(folder, int8=True, say=lambda line: None)  # the folder's own parity rows
    choice = choose_backend(folder, None)
    assert (choice.backend == "onnx-int8") == report.passed and report.checks[0].n > 0
    int8 = folder / "onnx" / "model_int8.onnx"
    int8.write_bytes(int8.read_bytes() + b"\0")  # replaced since its check
    before = int8.read_bytes()
    choice = choose_backend(folder, None)
    assert choice.backend == "torch" and "no passed parity check" in choice.reason and int8.read_bytes() == before


def test_threads_reach_the_model_and_bad_values_are_one_line(model_dir):
    from jobtitles.core.errors import UserError
    from jobtitles.serve.cli import build_parser, settings_from_args

    settings = settings_from_args(build_parser().parse_args(["--model", str(model_dir), "--threads", "1"]))
    assert settings.threads == 1
    app = create_app(ServeSettings(model_dir, backend="torch", threads=1))
    with BackgroundServer(app) as srv:
        assert httpx.post(srv.url + "/predict", json={"titles": TITLES}).status_code == 200
        assert app.state.loaded.predictor.clf.threads == 1
    with pytest.raises(UserError, match=r"--threads: expected 0 \(every core\) or a positive number, found -1"):
        settings_from_args(build_parser().parse_args(["--model", str(model_dir), "--threads", "-1"]))
    with pytest.raises(UserError, match=r"--workers: expected 0 \(one per core\) or a positive number, found -2"):
        settings_from_args(build_parser().parse_args(["--model", str(model_dir), "--workers", "-2"]))
