"""Screenshot of the page with real predictions for the docs (docs/img/serve.png): starts the app on a free
loopback port with a trained model folder, types titles into headless Chromium, clicks Predict, saves the page.

    python bench/serve_screenshot.py --model outputs/serve_bench_model
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TITLES = ["VP of Sales", "Senior Software Engineer", "CEO & Founder", "Head of Marketing EMEA", "Office Manager"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "outputs" / "serve_bench_model")
    p.add_argument("--backend", default=None)
    p.add_argument("--output", type=Path, default=ROOT / "docs" / "img" / "serve.png")
    p.add_argument("--width", type=int, default=1000)
    args = p.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from jobtitles.serve import ServeSettings, create_app
    from jobtitles.serve.runner import BackgroundServer

    profile = tempfile.mkdtemp(prefix="jobtitles-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--disable-quic", "--hide-scrollbars", f"--window-size={args.width},1400",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    with BackgroundServer(create_app(ServeSettings(args.model, backend=args.backend))) as server:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            driver.get(server.url + "/")
            WebDriverWait(driver, 30).until(lambda d: "CV micro-F1" in d.find_element(By.ID, "model-summary").text)
            driver.find_element(By.ID, "titles").send_keys("\n".join(TITLES))
            driver.find_element(By.ID, "predict").click()
            WebDriverWait(driver, 30).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tr.result")) == len(TITLES))
            driver.find_element(By.CSS_SELECTOR, "#model-box summary").click()
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(args.width, height + 200)  # the window includes the browser's frame
            driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
            args.output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.output))
            for row in driver.find_elements(By.CSS_SELECTOR, "#results tr.result"):
                print(row.find_element(By.CSS_SELECTOR, "td.title").text, "->",
                      [c.text for c in row.find_elements(By.CSS_SELECTOR, ".chip")])
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
