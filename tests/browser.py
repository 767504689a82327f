"""A real browser for the tests and benchmarks: Debian's Chromium driven by selenium through
Debian's chromedriver, headless.

Both binaries are named by path, so selenium-manager is never asked for (it would download a
browser and a driver). Every wait polls the page until a condition holds, with a deadline meant
for a loaded two-core machine; nothing here times anything. Screenshots are test artifacts:
under `$BZZZ_TEST_ARTIFACTS/<test>/` when that is set (CI keeps the folder), else under the
test's tmp_path; each path is printed, and a last one is taken when the test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    JavascriptException,
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOT_INSTALLED = "Debian's chromium and chromium-driver are not installed (make sysdeps installs them)"
ARTIFACTS_ENV = "BZZZ_TEST_ARTIFACTS"
WINDOW = (1400, 1000)
# Pages on a machine shared with three agents, a forge and a monitor: deadlines are generous.
DEADLINE_S = 90.0

T = TypeVar("T")


def missing() -> str | None:
    """Why no browser can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (path.is_file() and os.access(path, os.X_OK)):
            return NOT_INSTALLED
    return None


def artifacts_dir(test_name: str, tmp_path: Path) -> Path:
    """Where this test's screenshots go: `$BZZZ_TEST_ARTIFACTS/<test>` or `<tmp_path>/artifacts`."""
    root = os.environ.get(ARTIFACTS_ENV)
    if root:
        folder = Path(root).absolute() / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)[:150]
        shutil.rmtree(folder, ignore_errors=True)  # a rerun's screenshots replace the last run's
    else:
        folder = tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Browser:
    """One headless Chromium window, and the waits and screenshots the tests use."""

    def __init__(self, driver: WebDriver, artifacts: Path) -> None:
        self.driver = driver
        self.artifacts = artifacts
        self._shots = 0

    def open(self, url: str) -> None:
        self.driver.get(url)

    def wait(self, condition: Callable[[WebDriver], T], what: str, timeout: float = DEADLINE_S) -> T:
        """The first truthy value of `condition(driver)`, polled until `timeout`; elements that
        vanish or are re-rendered while looked at are looked for again."""
        waiter = WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.2,
            ignored_exceptions=(
                NoSuchElementException,
                StaleElementReferenceException,
                JavascriptException,
                ElementClickInterceptedException,
                ElementNotInteractableException,
            ),
        )
        try:
            return waiter.until(condition)
        except TimeoutException:
            shot = self.screenshot("timed-out")
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (page: {shot})") from None

    def element(self, css: str, what: str | None = None, timeout: float = DEADLINE_S) -> WebElement:
        """The first element matching `css`, once there is one."""
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css), what or f"an element {css}", timeout)

    def visible(self, css: str, what: str | None = None, timeout: float = DEADLINE_S) -> WebElement:
        def shown(d: WebDriver) -> WebElement | None:
            found = d.find_element(By.CSS_SELECTOR, css)
            return found if found.is_displayed() else None

        return self.wait(shown, what or f"{css} visible", timeout)

    def click(self, css: str, what: str | None = None, timeout: float = DEADLINE_S) -> None:
        """Clicks the first element matching `css`, looked up afresh until a click lands (a live
        page re-renders what it shows: an element found a moment ago may be gone)."""

        def clicked(d: WebDriver) -> bool:
            d.find_element(By.CSS_SELECTOR, css).click()
            return True

        self.wait(clicked, what or f"a click on {css}", timeout)

    def all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def count(self, css: str) -> int:
        return len(self.driver.find_elements(By.CSS_SELECTOR, css))

    def attribute(self, css: str, name: str, value: str, timeout: float = DEADLINE_S) -> WebElement:
        """The first element matching `css` once its attribute `name` is `value`."""

        def has(d: WebDriver) -> WebElement | None:
            for found in d.find_elements(By.CSS_SELECTOR, css):
                if found.get_attribute(name) == value:
                    return found
            return None

        return self.wait(has, f'{css} with {name}="{value}"', timeout)

    def script(self, source: str, *args: Any) -> Any:
        return self.driver.execute_script(source, *args)

    def click_tab(self, tab: str) -> WebElement:
        """Switches the page to section `tab` (contract: a[data-tab] shows section#<tab>)."""
        self.click(f'a[data-tab="{tab}"]')
        return self.visible(f"section#{tab}", f"the {tab} section shown")

    def screenshot(self, step: str) -> Path:
        """The window as a PNG in the artifacts folder, numbered in the order taken; prints where."""
        self._shots += 1
        path = self.artifacts / f"{self._shots:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', step)}.png"
        try:
            self.driver.save_screenshot(str(path))
        except Exception as err:  # a dead browser: the test's own failure says more than this
            print(f"screenshot {step!r} not taken: {err}")
            return path
        print(f"screenshot: {path}")
        return path

    def keep_page(self, step: str) -> None:
        """The page's current DOM and its console next to the screenshots (for a failed test)."""
        try:
            (self.artifacts / f"{step}.html").write_text(self.driver.page_source)
            console = self.driver.get_log("browser")
            (self.artifacts / f"{step}.console.json").write_text(json.dumps(console, indent=1))
        except Exception as err:
            print(f"page {step!r} not kept: {err}")

    def alert(self) -> str | None:
        """The text of the alert dialog open on the page, if there is one (left open)."""
        try:
            return str(self.driver.switch_to.alert.text)
        except NoAlertPresentException:
            return None

    def console(self) -> list[dict[str, Any]]:
        """Console messages since the last call (errors, CSP violations, logs)."""
        return list(self.driver.get_log("browser"))


def options() -> webdriver.ChromeOptions:
    chosen = webdriver.ChromeOptions()
    chosen.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--disable-dev-shm-usage",  # /dev/shm is small in containers; the renderer crashes in it
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",  # no update checks, no calls home from a test
        "--disable-extensions",
        "--disable-component-update",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        chosen.add_argument(argument)
    if os.geteuid() == 0:
        chosen.add_argument("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    chosen.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An alert a page opens stays open and is looked for (`Browser.alert`), instead of being
    # dismissed by the next command: a test of hostile text must see it.
    chosen.unhandled_prompt_behavior = "ignore"
    return chosen


@contextmanager
def chromium(artifacts: Path, log_path: Path | None = None) -> Iterator[Browser]:
    """A headless Chromium, quit at the end; chromedriver's own log in `log_path` if given."""
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    artifacts.mkdir(parents=True, exist_ok=True)
    service = Service(
        executable_path=str(CHROMEDRIVER),  # given, so selenium-manager is never run
        log_output=str(log_path or artifacts / "chromedriver.log"),
    )
    driver = webdriver.Chrome(service=service, options=options())
    try:
        driver.set_page_load_timeout(DEADLINE_S)
        driver.set_script_timeout(DEADLINE_S)
        yield Browser(driver, artifacts)
    finally:
        driver.quit()
