"""upband listen in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``;
``.ci/run`` installs them when missing): the page loads with no console error, playback
switches versions without moving the position, loudness matching and a looped region work,
a full MUSHRA trial is filled in and submitted, its rows are in SQLite, and a reload resumes
at the next trial.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from test_listen_support import make_test
from upband.listen.server import Running, make_app, start

pytest.importorskip("werkzeug", reason="the listen extra (Werkzeug) is not installed")
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install -e '.[dev]')")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                          "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1360,1000",
                "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Path]]:
    folder = tmp_path_factory.mktemp("listen")
    path = make_test(folder / "t", items=2, seconds=2.0)
    running = start(make_app([path], db=folder / "results.sqlite"), background=True)
    yield running, folder / "results.sqlite"
    running.stop()


def wait(driver: Any, script: str, timeout: float = 15.0) -> Any:
    """Poll ``script`` (JavaScript returning a value) until it is truthy."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def state(driver: Any) -> dict[str, Any]:
    result: dict[str, Any] = driver.execute_script("return window.upbandPlayer.state()")
    return result


def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_browsing_page_plays_switches_matches_and_loops(browser: Any,
                                                        served: tuple[Running, Path]) -> None:
    running, _ = served
    browser.get(running.url("/"))
    wait(browser, "return document.body.dataset.ready === '1'")
    wait(browser, "return [...document.querySelectorAll('canvas.spec')].every("
                  "c => c.dataset.drawn === '1')")
    assert errors(browser) == []
    buttons = browser.find_elements(By.CSS_SELECTOR, "button.version")
    assert [b.text.split(maxsplit=1)[1] for b in buttons] == [
        "reference", "anchor-3.5k", "anchor-7k", "input", "model"]
    assert "cutoff 7.0 kHz" in browser.find_elements(By.TAG_NAME, "figcaption")[2].text
    assert "10.00" in browser.find_element(By.CSS_SELECTOR, "table.metrics").text
    browser.find_element(By.ID, "play").click()
    until(lambda: state(browser)["position"] > 0.3)
    assert state(browser)["context"] == "running"
    before = state(browser)["position"]
    buttons[3].click()  # input
    time.sleep(0.1)
    st = state(browser)
    assert st["playing"] and st["active"] == 3 and st["sources"] == 5
    assert st["gains"] == [0, 0, 0, 1, 0]  # one version audible, the others running silent
    assert before < st["position"] < before + 0.5  # the position went on: no restart, no gap
    browser.find_element(By.ID, "match").click()  # loudness match: the model is 6 dB quieter
    time.sleep(0.1)
    assert state(browser)["gains"][3] == pytest.approx(10 ** (-6.02 / 20), abs=1e-3)
    browser.find_element(By.CSS_SELECTOR, "button.version:nth-child(5)").click()
    time.sleep(0.1)
    assert state(browser)["gains"] == pytest.approx([0, 0, 0, 0, 1], abs=1e-3)
    overlay = browser.find_elements(By.CSS_SELECTOR, "canvas.overlay")[0]
    width = overlay.size["width"]
    (ActionChains(browser).move_to_element_with_offset(overlay, int(-0.3 * width), 0)
     .click_and_hold().move_by_offset(int(0.3 * width), 0).release().perform())
    loop = state(browser)["loop"]
    assert loop is not None and loop[0] == pytest.approx(0.4, abs=0.05) \
        and loop[1] == pytest.approx(1.0, abs=0.05)
    for _ in range(8):  # a second: the position stays inside the loop
        time.sleep(0.12)
        assert loop[0] - 0.01 <= state(browser)["position"] <= loop[1] + 0.01
    browser.find_element(By.ID, "play").click()
    assert not state(browser)["playing"]
    assert errors(browser) == []


def test_a_full_mushra_trial_is_saved_and_a_reload_resumes(browser: Any,
                                                           served: tuple[Running, Path]) -> None:
    running, db = served
    browser.get(running.url("/test/mushra"))
    browser.find_element(By.ID, "start").click()
    wait(browser, "return document.getElementById('progress')")
    assert browser.find_element(By.ID, "progress").text == "Trial 1 of 2"
    token = browser.find_element(By.ID, "who").text.split()[-1]
    submit = browser.find_element(By.ID, "submit")
    assert submit.get_attribute("disabled") is not None  # nothing heard yet
    slots = browser.find_elements(By.CSS_SELECTOR, "button.slot")
    assert [s.text.split()[-1] for s in slots] == ["Reference", "A", "B", "C", "D", "E"]
    for button in slots:
        button.click()
        time.sleep(0.05)
    assert sorted(state(browser)["heard"]) == [0, 1, 2, 3, 4, 5]
    sliders = browser.find_elements(By.CSS_SELECTOR, "input.rating")
    scores = [100, 15, 35, 60, 80]
    for slider, score in zip(sliders, scores, strict=True):
        browser.execute_script("arguments[0].value = arguments[1];"
                               "arguments[0].dispatchEvent(new Event('input'))", slider, score)
    assert submit.get_attribute("disabled") is None
    submit.click()
    wait(browser, "const p = document.getElementById('progress');"
                  "return p && p.textContent === 'Trial 2 of 2'")
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT participant, test, trial, position, stimulus, slot, value, "
                           "time FROM ratings WHERE participant = ? ORDER BY slot",
                           (token,)).fetchall()
        order = con.execute("SELECT stimuli FROM plan WHERE participant = ? AND position = 0",
                            (token,)).fetchone()[0]
    assert [r[6] for r in rows] == scores and [r[5] for r in rows] == [0, 1, 2, 3, 4]
    assert {r[1] for r in rows} == {"mushra"} and {r[3] for r in rows} == {0}
    assert [r[4] for r in rows] == __import__("json").loads(order)  # slot order, as planned
    assert sorted(r[4] for r in rows) == sorted(["reference", "anchor-3.5k", "anchor-7k",
                                                 "input", "model"])
    browser.refresh()  # resume: the token is kept by the browser, trial 2 comes back
    wait(browser, "const p = document.getElementById('progress');"
                  "return p && p.textContent === 'Trial 2 of 2'")
    assert browser.find_element(By.ID, "who").text.endswith(token)
    assert errors(browser) == []
