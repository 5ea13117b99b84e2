"""The patient page in headless Chromium: time from navigation to every chart drawn.

A watcher installed before each document loads (CDP `Page.addScriptToEvaluateOnNewDocument`) checks every 5 ms for:
the overview rendered (`#patient-header h1`), the trend cards present, no callback queued or running in the Dash
renderer's store, no component marked loading, and every `dcc.Graph` (`.dash-graph`) holding a drawn Plotly chart
(`.js-plotly-plot .main-svg`). When that first holds, it waits one animation frame (the paint) and records
`performance.now()`, which counts from the start of the navigation. Each patient is a full navigation
(`driver.get`), with the browser cache warm from the warm-up loads, as for a therapist opening patient after patient.

The browser signs in through the login form first (the HTTP step's user). `capture_requests` loads one patient with Chromium's performance log on and returns the bodies it posted to
`/_dash-update-component`, to check that the HTTP step posts the same requests.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--window-size=1280,900",
)

WATCHER = r"""
(function () {
  window.__bench = {drawnAt: null, marks: {}};
  function pending(s) {
    var c = Object.assign({}, s.callbacks || {});
    delete c.stored; delete c.completed;
    return Object.values(c).reduce(function (n, l) { return n + (l ? l.length : 0); }, 0);
  }
  function ready() {
    var s = window.store && window.store.getState && window.store.getState();
    if (!s) return false;
    if (!document.querySelector('#patient-header h1')) return false;
    var marks = window.__bench.marks;
    if (marks.header == null) marks.header = performance.now();
    if (!document.querySelector('#patient-trends .dash-graph')) return false;
    if (marks.trends == null) marks.trends = performance.now();
    if (pending(s) > 0 || s.isLoading) return false;
    if (document.querySelector('[data-dash-is-loading="true"]')) return false;
    var graphs = document.querySelectorAll('.dash-graph');
    if (graphs.length === 0) return false;
    for (var i = 0; i < graphs.length; i++) {
      if (!graphs[i].querySelector('.js-plotly-plot .main-svg')) return false;
    }
    window.__bench.graphs = graphs.length;
    return true;
  }
  var timer = setInterval(function () {
    if (window.__bench.drawnAt != null || window.__bench.waiting) return;
    if (ready()) {
      window.__bench.waiting = true;
      clearInterval(timer);
      requestAnimationFrame(function () { window.__bench.drawnAt = performance.now(); });
    }
  }, 5);
})();
"""

TIMINGS = r"""
var nav = performance.getEntriesByType('navigation')[0] || {};
var cbs = performance.getEntriesByType('resource').filter(function (e) {
  return e.name.indexOf('/_dash-update-component') >= 0; });
return {
  drawn: window.__bench.drawnAt,
  header: window.__bench.marks.header,
  trends: window.__bench.marks.trends,
  graphs: window.__bench.graphs,
  html_done: nav.responseEnd,
  dom_content_loaded: nav.domContentLoadedEventEnd,
  load_event: nav.loadEventEnd,
  callbacks: cbs.length,
  callback_times: cbs.map(function (e) { return [e.startTime, e.responseEnd]; })
    .sort(function (a, b) { return a[0] - b[0]; })
};
"""


def driver(perf_log: bool = False):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    caps = {"browser": "ALL"}
    if perf_log:
        caps["performance"] = "ALL"
    opts.set_capability("goog:loggingPrefs", caps)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(120)
    return d


def sign_in(d, base: str, username: str, password: str, timeout: float = 30) -> None:
    """Through the login form, as a person would."""
    from selenium.webdriver.common.by import By

    d.get(f"{base}/login")
    d.find_element(By.ID, "username").send_keys(username)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "login-submit").click()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "/login" not in d.current_url:
            return
        time.sleep(0.05)
    raise PermissionError(f"sign-in as {username!r} failed")


def _open(d, url: str, timeout: float = 60) -> dict[str, Any]:
    d.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = d.execute_script("return window.__bench && window.__bench.drawnAt")
        if t is not None:
            return d.execute_script(TIMINGS)
        time.sleep(0.02)
    raise TimeoutError(f"{url}: the charts were not all drawn within {timeout:g} s")


def run(base: str, login: tuple[str, str], pids: list[str], warmup: list[str], say) -> dict[str, Any]:
    from bench.dashboard_queries import stats

    d = driver()
    try:
        sign_in(d, base, *login)
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCHER})
        for pid in warmup:
            _open(d, f"{base}/patients/{pid}")
        d.get_log("browser")  # drop warm-up messages
        loads = []
        for pid in pids:
            t = _open(d, f"{base}/patients/{pid}")
            loads.append({"patient_id": pid, **t, **_callback_phases(t.get("callback_times") or [])})
        severe = [m for m in d.get_log("browser") if m.get("level") == "SEVERE"]
        version = d.capabilities.get("browserVersion")
    finally:
        d.quit()

    def col(key: str) -> list[float]:
        return [x[key] for x in loads if x.get(key) is not None]

    phases = {
        "page HTML received": col("html_done"),
        "DOMContentLoaded (scripts run)": col("dom_content_loaded"),
        "viewer + router requests sent": col("router_sent"),
        "router response (patient layout) received": col("router_done"),
        "overview request sent": col("overview_sent"),
        "overview response received": col("overview_done"),
        "overview drawn (header)": col("header"),
        "trends + sessions requests sent": col("data_sent"),
        "trends + sessions responses received": col("data_done"),
        "trend cards in the DOM": col("trends"),
        "all charts drawn": col("drawn"),
    }
    result = {
        "patients": len(pids),
        "warmup_patients": len(warmup),
        "chromium": version,
        "navigation_to_all_drawn": stats(col("drawn")),
        "phases_median_ms": {k: round(statistics.median(v), 1) for k, v in phases.items() if v},
        "graphs_per_page_median": statistics.median(col("graphs")) if loads else None,
        "callback_requests_per_page_median": statistics.median(col("callbacks")) if loads else None,
        "console_errors": [m.get("message", "")[:300] for m in severe],
        "loads": loads,
    }
    say(
        f"browser: median {result['navigation_to_all_drawn'].get('median_ms', float('nan')):.0f} ms from navigation"
        f" to all {result['graphs_per_page_median']:g} charts drawn ({len(severe)} console errors)"
    )
    return result


def _callback_phases(times: list[list[float]]) -> dict[str, float | None]:
    """The page's callback requests in the order sent: viewer + router, overview, trends + sessions."""
    if len(times) != 5:
        return {}
    return {
        "router_sent": min(t[0] for t in times[:2]),
        "router_done": max(t[1] for t in times[:2]),
        "overview_sent": times[2][0],
        "overview_done": times[2][1],
        "data_sent": min(t[0] for t in times[3:]),
        "data_done": max(t[1] for t in times[3:]),
    }


def capture_requests(base: str, login: tuple[str, str], pid: str) -> list[dict[str, Any]]:
    """The JSON bodies Chromium posts to /_dash-update-component while loading the patient's page."""
    d = driver(perf_log=True)
    try:
        sign_in(d, base, *login)
        d.execute_cdp_cmd("Network.enable", {})
        d.get_log("performance")  # drop the sign-in's entries
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCHER})
        _open(d, f"{base}/patients/{pid}")
        bodies = []
        for entry in d.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") != "Network.requestWillBeSent":
                continue
            req = msg["params"]["request"]
            if "/_dash-update-component" in req["url"] and req.get("postData"):
                bodies.append(json.loads(req["postData"]))
        return bodies
    finally:
        d.quit()


def compare(captured: list[dict[str, Any]], built: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Is each body the HTTP step posts identical (as JSON) to the one the browser posted for the same output?"""
    by_output = {b["output"]: b for b in captured}
    out = {}
    for name, body in built.items():
        seen = by_output.get(body["output"])
        out[name] = (
            "identical" if seen == body else ("not posted by the browser" if seen is None else "differs")
        )
    extra = sorted(set(by_output) - {b["output"] for b in built.values()})
    return {
        "callbacks": out,
        "browser_posted_others": extra,
        "all_identical": all(v == "identical" for v in out.values()),
    }
