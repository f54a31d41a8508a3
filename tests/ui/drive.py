"""Drives Strata's web UI in Debian's Chromium (through Debian's
ChromeDriver and Selenium) and checks each page against the API's own
answers. Used by tests/ui.rs.

    drive.py open BASE OUT          auth off: the page loads, offers tenants
    drive.py auth BASE OUT TOKEN    auth on: refused without a token, then
                                    every page with it

Screenshots go to OUT/<page>.png. Exits non-zero (with the reason) on the
first failed check. A console error on any page is a failure.
"""

import json
import math
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

MODE, BASE, OUT = sys.argv[1:4]
TOKEN = sys.argv[4] if len(sys.argv) > 4 else None
TENANT = "acme"


def fail(msg):
    raise SystemExit(f"FAILED: {msg}")


def check(cond, msg):
    if not cond:
        fail(msg)


def api(path, params=None, token=TOKEN, method="GET", body=None):
    url = BASE + path + ("?" + urllib.parse.urlencode(params) if params else "")
    req = urllib.request.Request(url, method=method, data=body)
    req.add_header("X-Scope-OrgID", TENANT)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        j = json.loads(r.read())
    return j.get("data", j)


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
        "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp()}",
    ]:
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    o.add_experimental_option("prefs", {
        "download.default_directory": OUT,
        "download.prompt_for_download": False,
    })
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


D = browser()
W = WebDriverWait(D, 30)


def console_errors(allow=None):
    """SEVERE console entries since the last call (minus allowed ones)."""
    out = []
    for e in D.get_log("browser"):
        if e["level"] != "SEVERE":
            continue
        if allow and allow in e["message"]:
            continue
        out.append(e["message"])
    return out


def clean(page, allow=None):
    errs = console_errors(allow)
    check(not errs, f"{page}: console errors: {errs}")


def open_page(query):
    D.get(BASE + "/?" + urllib.parse.urlencode(query))


def css(sel):
    return D.find_elements(By.CSS_SELECTOR, sel)


def wait_for(sel, what=None):
    try:
        W.until(lambda d: d.find_elements(By.CSS_SELECTOR, sel))
    except Exception:
        errors = [e.text for e in css(".error")]
        fail(f"{what or sel} never appeared; page errors: {errors}; console: {console_errors()}")
    return css(sel)


def shot(name):
    D.save_screenshot(os.path.join(OUT, f"{name}.png"))


def label_text(metric):
    m = dict(metric)
    name = m.pop("__name__", "")
    pairs = [f'{k}="{v}"' for k, v in m.items()]
    return f"{name}{{{', '.join(pairs)}}}" if pairs else (name or "{}")


def pct(v, digits):
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def first_paint():
    return D.execute_script(
        "const p = performance.getEntriesByName('first-contentful-paint')[0];"
        "return p ? p.startTime : null;")


def explore_promql(now_ms):
    to = now_ms // 60_000 * 60_000
    frm = to - 2 * 3600_000
    q = "sum by (route) (rate(http_requests_total[5m]))"
    open_page({"page": "explore", "tenant": TENANT, "lang": "promql", "q": q, "from": frm, "to": to})
    paths = wait_for("#result path.series", "the PromQL chart")
    step = math.ceil((to - frm) / 1000 / 500)
    want = api("/api/v1/query_range", {"query": q, "start": frm / 1000, "end": to / 1000, "step": step})["result"]
    drawn = {p.get_attribute("data-name"): int(p.get_attribute("data-points")) for p in paths}
    expect = {label_text(s["metric"]): len(s["values"]) for s in want}
    check(drawn == expect, f"chart series {drawn} != API {expect}")
    legend = sorted(li.text for li in css("#result ul.legend li"))
    check(legend == sorted(expect), f"legend {legend} != {sorted(expect)}")
    # Hover shows each series' value; a drag zooms into a narrower range.
    overlay = css("#result rect.overlay")[0]
    ActionChains(D).move_to_element(overlay).perform()
    tip = css("#result .tooltip")[0]
    W.until(lambda d: tip.is_displayed())
    check(len(tip.text.splitlines()) == len(expect) + 1, f"tooltip: {tip.text!r}")
    shot("explore-promql")
    ActionChains(D).move_to_element_with_offset(overlay, -200, 0).click_and_hold() \
        .move_by_offset(150, 0).release().perform()
    W.until(lambda d: "from=" in d.current_url and f"from={frm}" not in d.current_url)
    params = urllib.parse.parse_qs(urllib.parse.urlparse(D.current_url).query)
    zf, zt = int(params["from"][0]), int(params["to"][0])
    check(frm < zf < zt < to, f"zoom {zf}..{zt} not inside {frm}..{to}")
    wait_for("#result path.series", "the zoomed chart")
    clean("explore promql")

    # Instant: a table of the vector.
    q = "http_requests_total"
    open_page({"page": "explore", "tenant": TENANT, "lang": "promql", "mode": "instant", "q": q, "from": frm, "to": to})
    rows = wait_for("#instant tbody tr", "the instant table")
    want = api("/api/v1/query", {"query": q, "time": to / 1000})["result"]
    check(len(rows) == len(want), f"instant rows {len(rows)} != {len(want)}")

    # Autocomplete: metric names from the API.
    box = css("#query")[0]
    box.clear()
    box.send_keys("pg_st")
    try:
        W.until(lambda d: "pg_stat_activity_count" in [i.text for i in css("#suggest li")])
    except Exception:
        fail(f"suggestions {[i.text for i in css('#suggest li')]}")
    css("#suggest li")[0].click()
    check(css("#query")[0].get_attribute("value") == "pg_stat_activity_count", "a picked suggestion is not inserted")
    clean("explore instant")


def explore_sql():
    q = ("SELECT date_trunc('minute', timestamp) AS minute, route, max(value) AS requests "
         "FROM http_requests_total GROUP BY 1, 2 ORDER BY 1, 2")
    open_page({"page": "explore", "tenant": TENANT, "lang": "sql", "q": q})
    wait_for("#sql-table tbody tr", "the SQL table")
    want = api("/api/v1/sql", method="POST", body=json.dumps({"query": q}).encode())
    rows = css("#sql-table tbody tr")
    check(len(rows) == min(1000, len(want["rows"])), f"SQL rows {len(rows)} != {len(want['rows'])}")
    routes = {r[1] for r in want["rows"]}
    series = css("#sql-chart path.series")
    check(len(series) == len(routes), f"SQL chart lines {len(series)} != routes {routes}")
    shot("explore-sql")
    css("#csv")[0].click()
    path = os.path.join(OUT, "strata.csv")
    deadline = time.time() + 20
    while time.time() < deadline and not os.path.exists(path):
        time.sleep(0.2)
    check(os.path.exists(path), "the CSV download never arrived")
    with open(path) as f:
        lines = f.read().strip().splitlines()
    check(len(lines) == len(want["rows"]) + 1, f"CSV lines {len(lines)} != rows + header {len(want['rows']) + 1}")
    os.remove(path)
    clean("explore sql")


def explore_logql(now_ms):
    to = now_ms
    frm = to - 4 * 3600_000
    q = '{job="wms"}'
    open_page({"page": "explore", "tenant": TENANT, "lang": "logql", "q": q, "from": frm, "to": to})
    entries = wait_for("#log-lines .entry", "the log lines")
    want = api("/loki/api/v1/query_range", {"query": q, "start": f"{frm}000000", "end": f"{to}000000", "limit": 1000, "direction": "backward"})
    n = sum(len(s["values"]) for s in want["result"])
    check(len(entries) == n, f"log lines {len(entries)} != API {n}")
    bars = wait_for("#volume rect.bar", "the volume histogram")
    total = sum(float(b.get_attribute("data-value")) for b in bars)
    check(total == n, f"volume bars sum to {total}, lines {n}")
    check("level=\"warn\"" in D.page_source, "stream labels not shown")
    shot("explore-logql")
    clean("explore logql")


def processes(at):
    open_page({"page": "processes", "tenant": TENANT, "time": at})
    wait_for(".process[data-process='picking'] tbody tr", "the picking process")
    slos = api("/api/v1/slo", {"time": at / 1000})
    for s in slos:
        row = next((r for r in css(f"tr[data-slo='{s['name']}']")
                    if json.loads(r.get_attribute("data-labels")) == s["labels"]), None)
        check(row is not None, f"no row for {s['name']} {s['labels']}")
        budget = row.find_element(By.CSS_SELECTOR, "td.budget").text
        check(budget == pct(s["error_budget_remaining"], 1), f"{s['labels']}: budget {budget} != {s['error_budget_remaining']}")
    firing = sum(1 for s in slos for a in s["alerts"] if a["firing"])
    card = css(".process[data-process='picking']")[0].text
    check(f"{firing} alert" in card, f"{firing} firing alerts not shown: {card}")
    shot("processes")
    clean("processes")
    css(".process[data-process='picking'] h2 a")[0].click()
    wait_for(".burndown path.series", "the budget burn-down")
    W.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".signal path.series")) >= 3)
    check("The SLO's query" in D.page_source or "the SLO's query" in D.page_source, "the SLO's own queries not charted")
    shot("process")
    clean("process")


def capacity(at):
    open_page({"page": "capacity", "tenant": TENANT, "time": at})
    rows = wait_for("#capacity-table tbody tr", "the capacity table")
    want = api("/api/v1/capacity", {"detail": "true", "time": at / 1000})
    check(len(rows) == len(want), f"capacity rows {len(rows)} != {len(want)}")
    left = float(css("#capacity-table td.exhaustion")[0].get_attribute("data-seconds-left"))
    check(left == want[0]["seconds_left"], f"{left} s left vs API {want[0]['seconds_left']}")
    check(abs(left / 86_400 - 50) < 3, f"{left / 86_400} days left, the data says 50")
    wait_for(".forecast polygon.band", "the forecast band")
    check(css(".forecast line.hline"), "no limit line")
    usage = css(".forecast path.series[data-name='usage']")[0]
    check(int(usage.get_attribute("data-points")) == len(want[0]["chart"]["history"]), "usage history points differ")
    shot("capacity")
    clean("capacity")


def neighbours(at):
    open_page({"page": "neighbours", "tenant": TENANT, "time": at})
    rows = wait_for(".neighbours tbody tr", "the neighbours table")
    want = api("/api/v1/neighbours", {"series": "true", "time": at / 1000})[0]
    check(rows[0].get_attribute("data-workload") == want["workloads"][0]["workload"] == "reports",
          f"top workload {rows[0].get_attribute('data-workload')}")
    blame = rows[0].find_element(By.CSS_SELECTOR, "td.blame").text
    check(blame == pct(want["workloads"][0]["blame"], 1), f"blame {blame}")
    W.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".shares polygon.area")) == len(want["workloads"]))
    shades = css(".shares rect.shade")
    check(len(shades) == want["contention_steps"] > 0, f"{len(shades)} shaded steps, API {want['contention_steps']}")
    shot("neighbours")
    clean("neighbours")


def tenants():
    # Two new log streams pass acme's max_streams (3, with 2 live): 429.
    push = json.dumps({"streams": [
        {"stream": {"job": "new", "n": str(i)}, "values": [[str(time.time_ns()), "x"]]} for i in range(2)
    ]}).encode()
    try:
        api("/loki/api/v1/push", method="POST", body=push)
        fail("a push over max_streams was taken")
    except urllib.error.HTTPError as e:
        check(e.code == 429, f"over max_streams: {e.code}")
    open_page({"page": "tenants", "tenant": TENANT})
    row = wait_for("#tenants-table tr[data-tenant='acme']", "the tenant row")[0]
    want = api("/api/v1/status/tenants")
    check([t["tenant"] for t in want["tenants"]] == ["acme"], f"an admin sees {want['tenants']}")
    me = want["tenants"][0]
    check(f"{me['metrics']['rows']} samples" in row.text, f"stored samples not shown: {row.text}")
    check(me["rejected"] == {"max_streams": 1}, f"rejections {me['rejected']}")
    check(row.find_element(By.CSS_SELECTOR, "td.rejected").text == "max_streams: 1", row.text)
    check(f"{me['live_streams']} / 3" in row.text and me["live_streams"] == 2, f"streams against the limit: {row.text}")
    check(not css("#wal"), "the server's WAL shown to a tenant admin")
    shot("tenants")
    clean("tenants")


def main():
    now_ms = int(time.time() * 1000)
    if MODE == "open":
        open_page({"page": "explore"})
        wait_for("#query", "the explore page")
        check(not css("#login[open]"), "auth is off, yet a login")
        offered = [o.get_attribute("value") for o in css("#tenant option")]
        print("tenants offered:", json.dumps(offered))
        clean("open")
        return
    # Without a token: the API refuses, the page asks for one.
    try:
        api("/api/v1/status/session", token=None)
        fail("the session call answered without a token")
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"without a token: {e.code}")
    D.get(BASE + "/")
    wait_for("#login[open]", "the login dialog")
    print(f"first contentful paint: {first_paint()} ms")
    shot("login")
    clean("login", allow="401")
    css("#token")[0].send_keys("not-a-token")
    css("#login-form button")[0].click()
    W.until(lambda d: d.find_element(By.ID, "login-error").is_displayed())
    check("invalid token" in css("#login-error")[0].text, css("#login-error")[0].text)
    clean("wrong token", allow="401")
    css("#token")[0].clear()
    css("#token")[0].send_keys(TOKEN)
    css("#login-form button")[0].click()
    wait_for("#query", "the explore page after signing in")
    offered = [o.get_attribute("value") for o in css("#tenant option")]
    check(offered == [TENANT], f"a token for acme offers {offered}")
    clean("signed in")
    explore_promql(now_ms)
    explore_sql()
    explore_logql(now_ms)
    # The analytics pages at one instant, as the API is asked.
    at = int(time.time() * 1000)
    processes(at)
    capacity(at)
    neighbours(at)
    tenants()
    print("every page checked")


try:
    main()
finally:
    D.quit()
