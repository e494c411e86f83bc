"""What the page says beside its results, in the real browser (Debian's headless Chromium through Selenium, as in
test_serve_browser.py, which also checks that an error answer clears the previous results): a score past its
threshold that is not a label says which rule held it back. The server serves a copy of the tiny run's model whose config.json makes
every label but Owner pass (thresholds 0, Owner 1) and puts three labels in one group, so both rules act on
every title."""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

from jobtitles.predict.inference import TitleClassifier
from jobtitles.serve import ServeSettings, create_app
from jobtitles.serve.runner import BackgroundServer
from test_serve_browser import headless_chromium

GROUP = {"name": "Column 1", "labels": ["Manager", "Director", "Vice President"], "kind": "at_most_one"}
EMPTY = "Not Required"
TITLES = ["VP of Sales", "CEO & Founder", "Board Member", "Head of Engineering", "Sales Rep"]


@pytest.fixture(scope="module")
def held_model(tiny_run_dir, tmp_path_factory):
    model = tmp_path_factory.mktemp("held") / "model"
    shutil.copytree(tiny_run_dir / "model", model)
    cfg = json.loads((model / "config.json").read_text(encoding="utf-8"))
    assert cfg["decision_exclusive_label"] == EMPTY  # the tiny run's empty label (a row without labels)
    cfg["decision_thresholds"] = {lab: 1.0 if lab == "Owner" else 0.0 for lab in cfg["decision_thresholds"]}
    cfg["decision_label_groups"] = [GROUP]
    (model / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return model


@pytest.fixture(scope="module")
def page(held_model):
    profile = tempfile.mkdtemp(prefix="jobtitles-chromium-")
    with BackgroundServer(create_app(ServeSettings(held_model, backend="torch"))) as server:
        driver = headless_chromium(profile)
        try:
            yield driver, server.url, TitleClassifier(held_model, backend="torch")
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


def expected_notes(clf: TitleClassifier, title: str) -> dict[str, str]:
    """The note each held-back label should carry, from the real rule's decision and scores."""
    scores = dict(zip(clf.labels, clf.predict_scores([title])[0].tolist()))
    labels = clf.predict(title)
    top = max(GROUP["labels"], key=lambda lab: scores[lab])
    notes = {}
    for lab, thr in zip(clf.labels, clf.thresholds):
        if lab in labels or scores[lab] < thr:
            continue
        if lab in GROUP["labels"] and lab != top:
            notes[lab] = f"past its threshold, but one label per group (Column 1): {top} won"
        elif lab == EMPTY:
            won = max(labels, key=lambda x: scores[x])
            notes[lab] = f"past its threshold, but {EMPTY} never stands beside another label: {won} won"
        else:
            notes[lab] = f"past its threshold, but {EMPTY} never stands beside another label and scored higher"
    return notes


def read_notes(driver) -> list[tuple[str, list[str], dict[str, str]]]:
    from selenium.webdriver.common.by import By

    out = []
    for row in driver.find_elements(By.CSS_SELECTOR, "#results tr.result"):
        notes = {}
        for bar in row.find_elements(By.CSS_SELECTOR, ".bar"):
            why = bar.find_elements(By.CSS_SELECTOR, ".why")
            if why:
                name = bar.find_element(By.CSS_SELECTOR, ".name").text
                notes[name] = why[0].text
                assert "held" in bar.get_attribute("class") and why[0].text in bar.get_attribute("title")
        out.append((row.find_element(By.CSS_SELECTOR, "td.title").text,
                    [c.text for c in row.find_elements(By.CSS_SELECTOR, "td.labels .chip")], notes))
    return out


def test_a_held_back_score_says_which_rule_held_it(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url, clf = page
    driver.get(url + "/")
    # the closed "About the model" box, read as text: the rule the notes come from
    about = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "model-info").get_attribute("textContent"))
    assert "Label groupColumn 1: one of Manager, Director, Vice President or none" in about
    assert f"Empty label{EMPTY} (never beside another label)" in about
    box = driver.find_element(By.ID, "titles")
    box.send_keys("\n".join(TITLES))
    driver.find_element(By.ID, "predict").click()
    WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tr.result")) == 5)
    expected = [(t, clf.predict(t), expected_notes(clf, t)) for t in TITLES]
    assert read_notes(driver) == expected
    notes = [n for _, _, ns in expected for n in ns.values()]
    # every kind of note arises: the group (2 of its 3 labels pass and lose on every title) and the empty label
    assert sum("one label per group" in n for n in notes) >= 2 * len(TITLES)
    assert any(f"{EMPTY} never stands beside" in n for n in notes)
    assert all("Owner" not in ns for _, _, ns in expected)  # below its threshold: no note


def test_the_note_for_each_rule_on_crafted_scores(page):
    """The page's heldBack on scores the tiny model never gives (the empty label winning), with the served
    rule: thresholds 0 (Owner 1), the group above, Not Required as the empty label."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url, clf = page
    driver.get(url + "/")
    WebDriverWait(driver, 20).until(lambda d: "CV micro-F1" in d.find_element(By.ID, "model-summary").text)
    scores = {lab: 0.1 for lab in clf.labels} | {EMPTY: 0.9, "Director": 0.6, "Manager": 0.5, "Owner": 0.95}
    empty_won = {"labels": [EMPTY], "scores": scores}
    other_won = {"labels": ["Director"], "scores": scores | {EMPTY: 0.3}}
    pairs = {"Manager": empty_won, "Chief Officer": empty_won, "Owner": empty_won, EMPTY: other_won,
             "Director": empty_won}
    got = {lab: driver.execute_script("return heldBack(arguments[0], arguments[1]);", p, lab)
           for lab, p in pairs.items()}
    assert got == {
        "Manager": "past its threshold, but one label per group (Column 1): Director won",
        "Chief Officer": f"past its threshold, but {EMPTY} never stands beside another label and scored higher",
        "Owner": None,  # 0.95 is below its threshold 1
        EMPTY: f"past its threshold, but {EMPTY} never stands beside another label: Director won",
        "Director": f"past its threshold, but {EMPTY} never stands beside another label and scored higher",
    }
