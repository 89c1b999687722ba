"""The console in a real browser: Debian's headless Chromium driven by Selenium through
Debian's chromedriver. Sign in, filter the history, open a run and see its source, create
and revoke a token as admin, an agent refused at sign-in, no console errors on any page,
and the pages at desktop and phone width (screenshots under target/console-screenshots,
kept as CI artefacts)."""

import shutil
import subprocess
from pathlib import Path

import httpx2
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ADMIN_TOKEN, BINARY, ROOT, server_env, spawned_server

SCREENSHOTS = ROOT / "target" / "console-screenshots"
DESKTOP = (1280, 900)
PHONE = (390, 844)


def executable(*names):
    for name in names:
        found = shutil.which(name) or (Path("/usr/bin") / name if (Path("/usr/bin") / name).exists() else None)
        if found:
            return str(found)
    pytest.fail(f"none of {names} is installed: `make test` installs Debian's chromium and "
                "chromium-driver (apt-get install chromium chromium-driver)")


@pytest.fixture
def console(binary, data_dir):
    with spawned_server(binary, data_dir, SANDGRAPH_RATE_LIMIT="100000/second") as base:
        yield base, data_dir


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = executable("chromium", "chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path=executable("chromedriver")))
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def no_console_errors(driver, page):
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == [], f"console errors on {page}: {errors}"


def screenshot(driver, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def fits_the_width(driver, page):
    # Nothing but the tables' own scroll boxes may be wider than the viewport.
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    culprits = driver.execute_script("""
        const width = document.documentElement.clientWidth;
        return [...document.querySelectorAll('body *')]
          .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest('.table-wrap, pre'))
          .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id);""")
    assert overflow <= 1, f"{page} is {overflow}px wider than the screen: {culprits}"


def create_token(data_dir, role, name):
    out = subprocess.run(
        [str(BINARY), "token", "create", "--role", role, "--name", name],
        env=server_env(data_dir), capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def navigate_by(driver, element):
    """Click something that loads a new page, and wait until the old page is gone (a
    form submission's click returns before the next page is there)."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def old_page_gone(_driver):
        try:
            old.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            # Chromium 156 may answer a query on a node of an unloaded document with an
            # inspector error instead of "stale element": the old page is gone too.
            if "does not belong to the document" in str(exc):
                return True
            raise

    WebDriverWait(driver, 10).until(old_page_gone)


def sign_in(driver, base, token):
    driver.get(f"{base}/ui/login")
    driver.find_element(By.ID, "token").send_keys(token)
    navigate_by(driver, driver.find_element(By.ID, "sign-in"))
    # The next page: the history, or the form again with its error.
    WebDriverWait(driver, 10).until(
        lambda d: d.current_url.endswith("/ui/history") or d.find_elements(By.ID, "login-error"))


def test_an_admin_uses_the_console_in_a_real_browser(console, browser):
    base, data_dir = console
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    marker = "browser_test_marker"
    runs = [httpx2.post(f"{base}/execute_code", headers=headers,
                        json={"code": f"print('{marker}', {i})", "cache": False}).json()
            for i in range(3)]
    failed = httpx2.post(f"{base}/execute_code", headers=headers,
                         json={"code": "raise ValueError('boom')"}).json()
    assert failed["exit_reason"] == "error"

    sign_in(browser, base, ADMIN_TOKEN)
    assert browser.current_url.endswith("/ui/history"), browser.page_source[-3000:]
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(rows) >= 4
    no_console_errors(browser, "history")
    fits_the_width(browser, "history")
    screenshot(browser, "history-desktop")

    # Filter by exit reason: only the failed run is left.
    browser.find_element(By.CSS_SELECTOR, "select[name=outcome] option[value=error]").click()
    navigate_by(browser, browser.find_element(By.ID, "apply-filters"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(rows) == 1
    assert "outcome=error" in browser.current_url

    # Open it: its source, highlighted, and its audit trail.
    navigate_by(browser, rows[0].find_element(By.CSS_SELECTOR, "a.run-link"))
    source = browser.find_element(By.ID, "source")
    assert "raise ValueError('boom')" in source.text
    assert source.find_elements(By.CSS_SELECTOR, "span.k"), "keywords are highlighted"
    assert browser.find_element(By.ID, "record-id").text == failed["id"]
    assert browser.find_elements(By.CSS_SELECTOR, "#trail tbody tr")
    no_console_errors(browser, "run")
    screenshot(browser, "run-desktop")

    # Code stats with its chart.
    navigate_by(browser, browser.find_element(By.CSS_SELECTOR, "dd a.hash"))
    assert browser.find_element(By.ID, "stat-runs").text == "1"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart circle")
    no_console_errors(browser, "code")

    # Filter by code hash from the history form.
    browser.get(f"{base}/ui/history?code_hash={runs[0]['code_hash']}")
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(rows) == 1

    # Tokens: create one (shown once), then revoke it.
    browser.get(f"{base}/ui/tokens")
    browser.find_element(By.CSS_SELECTOR, "#create-token input[name=name]").send_keys("from-browser")
    navigate_by(browser, browser.find_element(By.ID, "create"))
    secret = browser.find_element(By.ID, "new-token").text
    assert secret.startswith("sg_")
    assert httpx2.get(f"{base}/execution_history",
                      headers={"Authorization": f"Bearer {secret}"}).status_code == 403
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#tokens tbody tr")
               if r.find_element(By.CSS_SELECTOR, "td").text == "from-browser")
    token_id = row.get_attribute("data-token-id")
    navigate_by(browser, row.find_element(By.CSS_SELECTOR, "button.revoke"))
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-token-id='{token_id}']")
    assert "revoked" in row.text
    assert httpx2.get(f"{base}/prompts",
                      headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    no_console_errors(browser, "tokens")
    screenshot(browser, "tokens-desktop")

    for page in ("audit", "health"):
        browser.get(f"{base}/ui/{page}")
        no_console_errors(browser, page)
        fits_the_width(browser, page)
    browser.get(f"{base}/docs")
    no_console_errors(browser, "docs")

    # Phone width: the same pages fit.
    browser.set_window_size(*PHONE)
    for page, path in (("history", "/ui/history"), ("run", f"/ui/runs/{failed['id']}"),
                       ("tokens", "/ui/tokens"), ("audit", "/ui/audit"), ("health", "/ui/health")):
        browser.get(f"{base}{path}")
        fits_the_width(browser, f"{page} at phone width")
        no_console_errors(browser, f"{page} at phone width")
        screenshot(browser, f"{page}-phone")

    # Sign out: back at the sign-in page, and the history is closed.
    navigate_by(browser, browser.find_element(By.ID, "sign-out"))
    assert browser.current_url.endswith("/ui/login")
    browser.get(f"{base}/ui/history")
    assert browser.current_url.endswith("/ui/login")


def test_an_agent_is_refused_at_sign_in(console, browser):
    base, data_dir = console
    sign_in(browser, base, create_token(data_dir, "agent", "browser-agent"))
    assert browser.current_url.endswith("/ui/login")
    assert "cannot sign in" in browser.find_element(By.ID, "login-error").text
    browser.get(f"{base}/ui/history")
    assert browser.current_url.endswith("/ui/login"), "no history for an agent"
    screenshot(browser, "agent-refused")
