"""The page as a person uses it: the real server on a free loopback port with the tiny trained model, driven by
Debian's headless Chromium through Selenium. Skipped when chromium or chromedriver is not installed."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile

import pytest

from jobtitles.predict.inference import TitleClassifier
from jobtitles.serve import ServeSettings, create_app
from jobtitles.serve.runner import BackgroundServer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# No skip: Debian's chromium and chromium-driver are real dependencies of these tests (.ci/run installs them).


def headless_chromium(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--disable-quic", "--window-size=420,900", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.fixture(scope="module")
def page(tiny_run_dir):
    model_dir = tiny_run_dir / "model"
    profile = tempfile.mkdtemp(prefix="jobtitles-chromium-")
    with BackgroundServer(create_app(ServeSettings(model_dir, backend="torch"))) as server:
        driver = headless_chromium(profile)
        try:
            yield driver, server.url, TitleClassifier(model_dir, backend="torch")
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


def read_results(driver) -> list[tuple[str, list[str]]]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results tr.result"))
    out = []
    for row in driver.find_elements(By.CSS_SELECTOR, "#results tr.result"):
        title = row.find_element(By.CSS_SELECTOR, "td.title").text
        out.append((title, [chip.text for chip in row.find_elements(By.CSS_SELECTOR, "td.labels .chip")]))
    return out


def test_type_two_titles_and_read_the_labels(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url, clf = page
    driver.get(url + "/")
    WebDriverWait(driver, 20).until(lambda d: "CV micro-F1" in d.find_element(By.ID, "model-summary").text)
    box = driver.find_element(By.ID, "titles")
    box.clear()
    box.send_keys("VP of Sales\nSenior Software Engineer")
    driver.find_element(By.ID, "predict").click()
    results = read_results(driver)
    titles = ["VP of Sales", "Senior Software Engineer"]
    assert results == list(zip(titles, clf.predict(titles)))
    bars = driver.find_elements(By.CSS_SELECTOR, "#results tr.result:first-child .bar")
    assert len(bars) == len(clf.labels)  # a score bar per label
    assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None


def test_upload_a_csv(page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url, clf = page
    csv = tmp_path / "titles.csv"
    csv.write_text("Title;Column 1\nCEO & Founder;Chief Officer\nHead of Engineering;Director\nAnalyst;\n",
                   encoding="utf-8")
    driver.get(url + "/")
    driver.find_element(By.ID, "csv-file").send_keys(str(csv))
    WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tr.result")) == 3)
    titles = ["CEO & Founder", "Head of Engineering", "Analyst"]
    assert read_results(driver) == list(zip(titles, clf.predict(titles)))
    assert driver.find_element(By.ID, "results-box").is_displayed()

    bad = tmp_path / "bad.csv"
    bad.write_text("Name,Column 1\nCEO,Chief Officer\n", encoding="utf-8")
    driver.find_element(By.ID, "csv-file").send_keys(str(bad))
    error = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "error").text)
    assert error.startswith("bad.csv") and "comma-delimited" in error
    # the error answer clears the previous results: none of them reads as this upload's
    assert driver.find_elements(By.CSS_SELECTOR, "#results tr.result") == []
    assert not driver.find_element(By.ID, "results-box").is_displayed()
    assert driver.execute_script("return last;") is None  # "Download CSV" has no old answer to save


def test_download_csv_is_spreadsheet_safe(page):
    """The "Download CSV" button's file: text cells that start with a formula sign get a leading "'" (the rule of
    jobtitles.core.spreadsheet, which textCell must apply to every string exactly as escape_cell does)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from jobtitles.core.spreadsheet import FORMULA_SIGNS, LEADING_SPACE, escape_cell

    driver, url, clf = page
    driver.get(url + "/")
    WebDriverWait(driver, 20).until(lambda d: "CV micro-F1" in d.find_element(By.ID, "model-summary").text)
    titles = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\t=1+1", "\r=1+1",
              " =1+1", "\uff1d1+1", "'=1+1", "Sales\n=1+1", "VP of Sales"]
    # sent as JSON (the text box trims each line): the server answers the titles as given
    driver.execute_script("run('/predict', {method: 'POST', headers: headers({'Content-Type': 'application/json'}),"
                          " body: JSON.stringify({titles: arguments[0]})});", titles)
    WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tr.result")) == 11)
    # keep the file the button builds instead of saving it (and stay on the page)
    driver.execute_script("URL.createObjectURL = (blob) => { window.downloaded = blob; return '#'; };"
                          "HTMLAnchorElement.prototype.click = function () {};")
    driver.find_element(By.ID, "download").click()
    text = driver.execute_async_script("window.downloaded.text().then(arguments[0]);")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows[0][:4] == ["row", "title", "predicted", "truncated"]
    assert [r[1] for r in rows[1:]] == ['\'=HYPERLINK("http://x","y")', "'+cmd|' /C calc'!A0", "'@SUM(1+1)",
                                        "'-2+3", "'\t=1+1", "'\r=1+1", "' =1+1", "'\uff1d1+1", "''=1+1",
                                        "Sales\n=1+1", "VP of Sales"]
    assert [r[2] for r in rows[1:]] == [" | ".join(labels) for labels in clf.predict(titles)]
    probes = [p + s for p in ("", "'", " ", "''\u3000", "a") for s in FORMULA_SIGNS + LEADING_SPACE + "a'"]
    assert driver.execute_script("return arguments[0].map(textCell);", probes) == [escape_cell(p) for p in probes]
