"""The page's labelling view (serve --label_folder DIR): the queue from DIR/suggestions.csv, accepted rows appended
atomically to DIR/labelled.csv in the model's training schema (read back by the training reader), the refusals,
and the view driven in Debian's headless Chromium. The real server on a loopback port with a copy of the tiny
trained model whose config names a non-default training layout (',' delimited, 'Job Title', 'Label N', a label
family in the first column), so every file written here can only be right by following the schema."""

from __future__ import annotations

import errno
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from jobtitles.core.data import load_labeled_csv
from jobtitles.predict.inference import TitleClassifier
from jobtitles.serve import ServeSettings, create_app
from jobtitles.serve.runner import BackgroundServer

KEY = "label-key"
AUTH = {"X-API-Key": KEY}
FAMILY = ["Director", "Manager", "Vice President"]  # the first label column's labels: one per title
SCHEMA = {"text_column": "Job Title", "label_column_prefix": "Label", "delimiter": ",", "label_columns": 2,
          "empty_label": "Not Required", "column_of": {lab: 0 for lab in FAMILY}}
HEADER = "Job Title,Label 1,Label 2,suggested_labels,reason,pool_count,rank\n"


@pytest.fixture(scope="module", autouse=True)
def torch_threads_restored():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tiny_run_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("labelling-model") / "model"
    shutil.copytree(tiny_run_dir / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["jobtitles_training_schema"] = SCHEMA
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.fixture(scope="module")
def label_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("labelling") / "labels"
    folder.mkdir()
    return folder


@pytest.fixture()
def folder(label_dir) -> Path:
    """The server's label folder, emptied for each test."""
    for path in label_dir.iterdir():
        path.unlink()
    return label_dir


@pytest.fixture(scope="module")
def server(model_dir, label_dir):
    app = create_app(ServeSettings(model_dir, backend="torch", api_key=KEY, label_folder=label_dir))
    with BackgroundServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def plain_server(model_dir):
    with BackgroundServer(create_app(ServeSettings(model_dir, backend="torch"))) as srv:
        yield srv


def accept(server, rows, headers=AUTH) -> httpx.Response:
    return httpx.post(server.url + "/label/accept", json={"rows": rows}, headers=headers, timeout=30)


def read_back(path: Path) -> list[tuple[str, set[str]]]:
    data = load_labeled_csv(path, delimiter=",", text_column="Job Title", label_prefix="Label")
    return [(t, set(labels)) for t, labels in zip(data.titles, data.label_sets)]


def test_accept_appends_atomically_and_the_training_reader_reads_it_back(server, folder):
    old = b"Job Title,Label 1,Label 2\r\nCEO,Chief Officer,\r\n\"Manager, Finance\",Manager,\r\nBoard Member,,"
    (folder / "labelled.csv").write_bytes(old)  # CRLF, no newline at the end: as a spreadsheet may save it
    rows = [{"title": "VP of Sales", "labels": ["Vice President"]},
            {"title": "  Founder   and  Director ", "labels": ["Owner", "Director"]},
            {"title": "Board Advisor", "labels": []},
            {"title": " ceo", "labels": ["Owner"]},                      # already there: nothing replaced
            {"title": 'Head "Ops", EMEA', "labels": ["Director"]},
            {"title": "vp of  sales", "labels": ["Manager"]}]             # earlier in this request
    r = accept(server, rows)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(w["row"], w["title"], w["labels"]) for w in body["written"]] == [
        (0, "VP of Sales", ["Vice President"]), (1, "Founder and Director", ["Owner", "Director"]),
        (2, "Board Advisor", ["Not Required"]), (4, 'Head "Ops", EMEA', ["Director"])]
    assert [(s["row"], s["title"]) for s in body["skipped"]] == [(3, "ceo"), (5, "vp of sales")]
    assert body["file"] == "labels/labelled.csv" and body["labelled"] == 7
    raw = (folder / "labelled.csv").read_bytes()
    assert raw == old + (b"\r\nVP of Sales,Vice President,\r\nFounder and Director,Director,Owner\r\n"
                         b"Board Advisor,,\r\n\"Head \"\"Ops\"\", EMEA\",Director,\r\n")  # the family's column first
    assert read_back(folder / "labelled.csv") == [
        ("CEO", {"Chief Officer"}), ("Manager, Finance", {"Manager"}), ("Board Member", {"Not Required"}),
        ("VP of Sales", {"Vice President"}), ("Founder and Director", {"Owner", "Director"}),
        ("Board Advisor", {"Not Required"}), ('Head "Ops", EMEA', {"Director"})]

    # a new file gets the schema's header
    (folder / "labelled.csv").unlink()
    assert accept(server, [{"title": "Sales Rep", "labels": ["Individual Contributor/Staff"]}]).status_code == 200
    assert (folder / "labelled.csv").read_bytes() == \
        b"Job Title,Label 1,Label 2\nSales Rep,Individual Contributor/Staff,\n"
    assert sorted(p.name for p in folder.iterdir()) == ["labelled.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(server, folder, monkeypatch):
    old = b"Job Title,Label 1,Label 2\nCEO,Chief Officer,\n"
    (folder / "labelled.csv").write_bytes(old)
    real = Path.write_bytes

    def half_then_full_disk(self, data):  # the disk fills up half-way through the write
        real(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full_disk)
    r = accept(server, [{"title": "VP of Sales", "labels": ["Vice President"]}])
    monkeypatch.undo()
    assert r.status_code == 507, r.text
    error = r.json()["error"]
    assert error["code"] == "write_failed" and "labels/labelled.csv" in error["message"]
    assert "No space left" in error["message"] and str(folder) not in r.text  # no server path
    assert (folder / "labelled.csv").read_bytes() == old
    assert sorted(p.name for p in folder.iterdir()) == ["labelled.csv"]


def test_two_accepts_at_once_both_land(server, folder, monkeypatch):
    from jobtitles.serve import label_store

    real = label_store.write_bytes
    monkeypatch.setattr(label_store, "write_bytes", lambda path, data: (time.sleep(0.3), real(path, data)))
    answers = []
    rows = [{"title": "Owner", "labels": ["Owner"]}, {"title": "Founding CEO", "labels": ["Chief Officer"]}]
    threads = [threading.Thread(target=lambda row=row: answers.append(accept(server, [row]))) for row in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200]
    lines = (folder / "labelled.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Job Title,Label 1,Label 2"
    assert sorted(lines[1:]) == ["Founding CEO,Chief Officer,", "Owner,Owner,"]  # neither write lost the other
    assert sorted(read_back(folder / "labelled.csv")) == [("Founding CEO", {"Chief Officer"}), ("Owner", {"Owner"})]


def test_refusals_name_the_row_and_field_and_write_nothing(server, plain_server, folder):
    for method, path in (("GET", "/label/queue"), ("POST", "/label/accept")):
        r = httpx.request(method, plain_server.url + path, json={"rows": [{"title": "CEO", "labels": []}]})
        assert r.status_code == 404 and r.json()["error"]["code"] == "labelling_off", r.text
        assert "--label_folder" in r.json()["error"]["message"]
    assert httpx.get(plain_server.url + "/info").json()["labelling"] is False
    assert httpx.get(server.url + "/info", headers=AUTH).json()["labelling"] is True

    good = {"title": "VP of Sales", "labels": ["Vice President"]}
    for headers in ({}, {"X-API-Key": KEY + "x"}, {"Authorization": "Bearer nope"}):
        assert accept(server, [good], headers).status_code == 401
        assert httpx.get(server.url + "/label/queue", headers=headers).status_code == 401
    assert not (folder / "labelled.csv").exists()

    old = b"Job Title,Label 1,Label 2\nCEO,Chief Officer,\n"
    (folder / "labelled.csv").write_bytes(old)
    cases = [
        ([good, {"title": "CFO", "labels": ["Chief Officer", "Intern"]}], 422, "unknown_label", "rows[1].labels[1]",
         "'Intern' is not one of the model's labels"),
        ([{"title": "Director / Manager", "labels": ["Director", "Manager"]}], 422, "exclusive_group",
         "rows[0].labels", "'Director', 'Manager' are all in the label group 'Column 1'"),
        ([good, {"title": " \u200b ", "labels": ["Owner"]}], 422, "empty_title", "rows[1].title", "empty title"),
        ([{"title": "VP\nSales", "labels": []}], 422, "multiline_title", "rows[0].title", "one line"),
        ([{"title": "x" * 1001, "labels": []}], 422, "title_too_long", "rows[0].title", "at most 1,000"),
        ([{"title": "a, b, c", "labels": []}], 422, "invalid_text", "rows[0].title", "delimiter ','"),
        ([{"title": "Owner", "labels": ["Not Required", "Owner"]}], 422, "empty_label_with_others",
         "rows[0].labels", "'Not Required' is the empty label"),
        ([good] * 201, 413, "too_many_rows", "rows", "at most 200"),
        ([{"title": 5, "labels": []}], 422, "invalid_value", "rows[0].title", "rows[0].title"),
    ]
    for rows, status, code, field, text in cases:
        r = accept(server, rows)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert (error["code"], error.get("field")) == (code, field), r.text
        assert text in error["message"], error["message"]
    assert (folder / "labelled.csv").read_bytes() == old

    foreign = b"Title;Column 1\nCEO;Chief Officer\n"  # not the model's training layout
    (folder / "labelled.csv").write_bytes(foreign)
    r = accept(server, [good])
    assert r.status_code == 409 and r.json()["error"]["code"] == "labelled_header", r.text
    assert "Job Title,Label 1,Label 2" in r.json()["error"]["message"]
    assert (folder / "labelled.csv").read_bytes() == foreign


def test_queue_offers_what_is_not_labelled_with_the_suggested_labels(server, folder, model_dir, monkeypatch):
    r = httpx.get(server.url + "/label/queue", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [] and "jobtitles suggest --model <model> --pool <titles> --n 200 --output " \
        "labels/suggestions.csv" in r.json()["message"]

    (folder / "suggestions.csv").write_text(
        HEADER + "CEO,,,Chief Officer,most uncertain,12,1\n"
        "Head of Engineering,,,Director | Manager,'=near the threshold,5,2\n"
        "Sales Rep,,,,rare in the pool,3,3\n"
        "Owner,,,Not Required | Owner | Intern,,,4\n"
        "\"Manager, Finance\",,,Manager,,7,5\n"
        "head of  engineering,,,Manager,,1,6\n", encoding="utf-8")
    (folder / "labelled.csv").write_bytes(b"Job Title,Label 1,Label 2\n ceo ,Chief Officer,\n")
    model_labels = TitleClassifier(model_dir, backend="torch").predict("Sales Rep")
    # the model's label set is already a valid choice (one of the family, the empty label alone): shown as it is
    assert len(set(model_labels) & set(FAMILY)) <= 1 and ("Not Required" not in model_labels or len(model_labels) == 1)
    body = httpx.get(server.url + "/label/queue", headers=AUTH).json()
    assert [(i["title"], i["labels"], i["reason"], i["pool_count"], i["rank"]) for i in body["items"]] == [
        ("Head of Engineering", ["Director"], "=near the threshold", 5, 2),  # one of the family; unescaped
        ("Sales Rep", model_labels, "rare in the pool", 3, 3),             # no suggestion: the model's labels
        ("Owner", ["Owner"], "", None, 4),                                  # the model's labels only, no empty
        ("Manager, Finance", ["Manager"], "", 7, 5)]
    assert body["remaining"] == 0 and body["message"] is None and body["labelled"] == 1
    assert body["file"] == "labels/labelled.csv" and body["empty_label"] == "Not Required"
    assert body["labels"] == TitleClassifier(model_dir, backend="torch").labels
    assert body["label_groups"] == [{"name": "Column 1", "labels": FAMILY, "kind": "at_most_one"}]

    from jobtitles.serve import label_store, labelling

    monkeypatch.setattr(labelling, "MAX_LABEL_ROWS", 2)  # one answer is bounded in rows ...
    body = httpx.get(server.url + "/label/queue", headers=AUTH).json()
    assert [i["title"] for i in body["items"]] == ["Head of Engineering", "Sales Rep"] and body["remaining"] == 2
    monkeypatch.setattr(label_store, "MAX_FILE_BYTES", 100)  # ... and the file in bytes
    r = httpx.get(server.url + "/label/queue", headers=AUTH)
    assert r.status_code == 409 and r.json()["error"]["code"] == "file_too_large", r.text


def test_serve_refuses_a_label_folder_it_cannot_use(model_dir, tmp_path, capsys):
    from jobtitles.serve.cli import serve_main

    inside = "the model folder or a folder inside it"
    for folder, text in ((tmp_path / "missing", "no such folder"), (model_dir, inside)):
        assert serve_main(["--model", str(model_dir), "--label_folder", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --label_folder {folder}: {text}") and err.count("\n") == 1, err
    (model_dir / "sub").mkdir()
    try:
        assert serve_main(["--model", str(model_dir), "--label_folder", str(model_dir / "sub")]) == 2
        assert inside in capsys.readouterr().err
    finally:
        (model_dir / "sub").rmdir()


def test_label_a_suggested_title_on_the_page(server, plain_server, folder):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from test_serve_browser import headless_chromium

    (folder / "suggestions.csv").write_text(HEADER + "Head of Engineering,,,Director,uncertain,5,1\n"
                                            "Sales Rep,,,Individual Contributor/Staff,rare,3,2\n", encoding="utf-8")
    profile = tempfile.mkdtemp(prefix="jobtitles-chromium-")
    driver = headless_chromium(profile)
    try:
        driver.get(plain_server.url + "/")  # no label folder: no view
        WebDriverWait(driver, 20).until(lambda d: "CV micro-F1" in d.find_element(By.ID, "model-summary").text)
        assert not driver.find_element(By.ID, "label-box").is_displayed()

        driver.get(server.url + "/")  # the key is asked for, then sent with every label request
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "key-box").is_displayed())
        driver.find_element(By.ID, "api-key").send_keys(KEY)
        driver.find_element(By.ID, "save-key").click()
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#label-queue .label-item"))
        item = driver.find_element(By.CSS_SELECTOR, "#label-queue .label-item")
        assert item.find_element(By.CSS_SELECTOR, ".title").text == "Head of Engineering"

        def toggle(label):
            return item.find_element(By.XPATH, f".//button[contains(@class,'toggle') and text()='{label}']")

        def pressed():
            return [b.text for b in item.find_elements(By.CSS_SELECTOR, ".toggle[aria-pressed=true]")]

        assert pressed() == ["Director"]
        toggle("Director").click()            # off
        toggle("Vice President").click()      # on
        toggle("Owner").click()               # on
        toggle("Manager").click()             # on, and Vice President (same group) off
        assert pressed() == ["Manager", "Owner"]
        item.find_element(By.CSS_SELECTOR, "button.accept").click()
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "label-count").text.startswith("1 row(s)"))
        assert driver.find_element(By.ID, "label-count").text == \
            "1 row(s) written to labels/labelled.csv · 1 title(s) in it"
        titles = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#label-queue .label-item .title")]
        assert titles == ["Sales Rep"]  # the accepted row left the list
        assert (folder / "labelled.csv").read_bytes() == \
            b"Job Title,Label 1,Label 2\nHead of Engineering,Manager,Owner\n"
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
