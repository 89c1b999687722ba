"""Console page loads in a real browser with 10,000 records (issue 14: "loads in well under
a second over loopback with 10k records, no console errors").

Starts the server (release build by default) on a fresh embedded store, records N runs
through `execute_code` (distinct code, so N execution records, N code texts and 2N audit
events), signs in with Debian's headless Chromium through Selenium, then loads each console
page R times and reports the browser's own Navigation Timing: from the start of navigation
to the `load` event (HTML, CSS, the page's scripts, layout), and the server's share
(`responseEnd - requestStart`). Any console error fails the run.

    build/test-venv/bin/python benches/console_browser.py [--records 10000] [--repeats 30]

It prints a Markdown table (and writes it to target/bench-results/console_browser.md).
A benchmark, not a test: nothing here asserts a time.
"""

import argparse
import concurrent.futures
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import httpx2  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# The server is started the way the Python tests start theirs (tests/python/conftest.py).
from conftest import ADMIN_TOKEN as TOKEN, spawned_server  # noqa: E402


def fill(base, records):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.monotonic()

    def run(i):
        with httpx2.Client(timeout=60) as client:
            for j in range(i, records, 8):
                body = {"code": f"print('console bench', {j})", "cache": False}
                if j % 7 == 0:
                    body["code"] = f"raise ValueError({j})"
                r = client.post(f"{base}/execute_code", headers=headers, json=body)
                r.raise_for_status()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(run, range(8)))
    return time.monotonic() - started


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


TIMING = """
const n = performance.getEntriesByType('navigation')[0];
return {load: n.loadEventEnd - n.startTime, server: n.responseEnd - n.requestStart,
        dom: n.domContentLoadedEventEnd - n.startTime, bytes: n.transferSize};
"""


def measure(driver, url, repeats):
    loads, servers, doms, size = [], [], [], 0
    for _ in range(repeats + 3):
        driver.get(url)
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        # loadEventEnd is set just after the load handlers return.
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(
            "return performance.getEntriesByType('navigation')[0].loadEventEnd > 0"))
        t = driver.execute_script(TIMING)
        loads.append(t["load"])
        servers.append(t["server"])
        doms.append(t["dom"])
        size = t["bytes"]
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    if errors:
        raise SystemExit(f"console errors on {url}: {errors}")
    loads, servers, doms = loads[3:], servers[3:], doms[3:]  # the first loads warm caches

    def p(values, q):
        return sorted(values)[min(len(values) - 1, int(len(values) * q))]

    return statistics.median(loads), p(loads, 0.95), statistics.median(servers), \
        statistics.median(doms), size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "sandgraph"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandgraph-console-bench-") as data_dir, \
            spawned_server(args.binary, data_dir, SANDGRAPH_RATE_LIMIT="1000000/second") as base:
        seconds = fill(base, args.records)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        page = httpx2.get(f"{base}/execution_history", headers=headers,
                          params={"limit": 1}).json()
        newest = page["items"][0]
        driver = browser()
        try:
            driver.get(f"{base}/ui/login")
            driver.find_element(By.ID, "token").send_keys(TOKEN)
            old = driver.find_element(By.TAG_NAME, "html")
            driver.find_element(By.ID, "sign-in").click()
            WebDriverWait(driver, 10).until(EC.staleness_of(old))
            pages = [
                ("history, newest 50", "/ui/history"),
                ("history, outcome = error", "/ui/history?outcome=error"),
                ("history, by code hash", f"/ui/history?code_hash={newest['code_hash']}"),
                ("one run (source highlighted)", f"/ui/runs/{newest['id']}"),
                ("code stats (chart)", f"/ui/code/{newest['code_hash']}"),
                ("audit log, newest 50", "/ui/audit"),
                ("health", "/ui/health"),
            ]
            rows = [(name, *measure(driver, base + path, args.repeats)) for name, path in pages]
        finally:
            driver.quit()

    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True,
                             text=True).stdout.strip()
    lines = [
        f"{args.records:,} execution records ({2 * args.records:,} audit events) in the embedded "
        f"store, filled in {seconds:.1f} s; {version}, headless; {args.repeats} loads per page "
        f"after 3 warm-ups; {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; binary {Path(args.binary).relative_to(ROOT) if Path(args.binary).is_relative_to(ROOT) else args.binary}.",
        "",
        "| page | load p50 ms | load p95 ms | DOMContentLoaded p50 ms | server share p50 ms | HTML bytes |",
        "|---|---|---|---|---|---|",
    ]
    for name, load, load95, server, dom, size in rows:
        lines.append(f"| {name} | {load:.1f} | {load95:.1f} | {dom:.1f} | {server:.1f} | {size:,} |")
    lines.append("")
    lines.append("No console errors on any page.")
    text = "\n".join(lines)
    print(text)
    out = ROOT / "target" / "bench-results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "console_browser.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
