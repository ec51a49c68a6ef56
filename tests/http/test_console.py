"""The web console in headless Chromium against a live dev mesh.

Screenshots of every page are kept as test artifacts in ``.workmesh/artifacts/console`` (or
``$WORKMESH_ARTIFACTS/console``), not committed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.http.browser import MISSING, chrome
from tests.http.client import Http
from tests.http.conftest import TRACE_URL
from tests.http.test_api import submit
from tests.support import REPO, eventually
from workmesh.services.devmesh import DevMesh, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(MISSING), reason=MISSING or "-")]
WAIT = 60


@pytest.fixture(scope="module")
def shots() -> Path:
    root = Path(os.environ.get("WORKMESH_ARTIFACTS", REPO / ".workmesh" / "artifacts"))
    path = root / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chrome(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def snap(driver, path: Path) -> None:
    """A screenshot of the whole page (the window grown to the page's height for it)."""
    height = driver.execute_script("window.scrollTo(0, 0); return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 800), 4000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)


def until(driver, check, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: check(d))


def text(driver, selector: str) -> str:
    """The text of an element now (read in the page: the console re-renders elements)."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", selector
    )


def progress(driver) -> int:
    """The job page's progress bar, in percent (-1: none yet)."""
    return int(
        driver.execute_script(
            "const b = document.querySelector('#progress [role=progressbar]');"
            "return b ? b.getAttribute('aria-valuenow') : -1"
        )
    )


def css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def test_types_page_shows_the_example_types_with_instances(browser, http, shots):
    browser.get(f"{http.base}/#/types")
    until(browser, lambda d: len(css(d, ".card.type")) == 6)
    # One snapshot in the page: the cards are re-rendered whenever the load changes.
    cards = browser.execute_script("""return [...document.querySelectorAll('.card.type')].map(c =>
        [c.dataset.type, c.innerText, [...c.querySelectorAll('table.instances tr')].slice(1).map(r => r.innerText)])""")
    assert {name for name, _, _ in cards} == {"heat-demand", "echo", "sleep", "fail", "district-design", "heat-kpi"}
    for _name, text, rows in cards:
        assert rows and all("127.0.0.1:" in r and "passing" in r and "gRPC check" in r for r in rows), text
        assert "capacity" in text and "free" in text
    heat = next(text for name, text, _ in cards if name == "heat-demand")
    assert "buildings" in heat and "°C" in heat
    snap(browser, shots / "types.png")


def test_submit_heat_demand_through_the_form_and_follow_to_100(browser, http, shots):
    browser.get(f"{http.base}/#/submit/heat-demand")
    buildings = until(browser, lambda d: css(d, "#param-buildings") and css(d, "#param-buildings")[0])
    assert buildings.get_attribute("value") == "100"  # the default
    assert buildings.get_attribute("min") == "1" and buildings.get_attribute("max") == "100000"
    buildings.clear()
    buildings.send_keys("0")  # below the bound: the browser refuses the form
    css(browser, "#submit")[0].click()
    assert "#/submit/" in browser.current_url
    assert browser.execute_script("return document.getElementById('submit-form').checkValidity()") is False
    buildings.clear()
    buildings.send_keys("600")
    css(browser, "#submit-labels")[0].send_keys("project=console-test")
    snap(browser, shots / "submit.png")
    css(browser, "#submit")[0].click()
    until(browser, lambda d: "#/job/" in d.current_url)
    job_id = browser.current_url.rsplit("/", 1)[1]
    browser.execute_script("window.__sameDocument = true")  # gone after any reload
    until(browser, lambda d: progress(d) > 0)
    snap(browser, shots / "job-running.png")
    until(browser, lambda d: progress(d) == 100 and "SUCCEEDED" in text(d, "#job-status"))
    assert browser.execute_script("return window.__sameDocument === true"), "the page was reloaded"
    until(browser, lambda d: len(css(d, "#series tr[data-measurement]")) == 3)  # district, heat_demand, outdoor
    assert "SUCCEEDED" in css(browser, "#timeline")[0].text
    assert http.get(f"/v1/jobs/{job_id}").json()["params"]["buildings"] == {"intValue": "600"}
    # A quick plot of one series.
    button = next(b for b in css(browser, "#series tr[data-measurement=district] button") if b.text == "plot Q")
    button.click()
    until(browser, lambda d: css(d, "#quick-plot canvas"))
    snap(browser, shots / "job-done.png")


def test_compare_two_variations_and_toggle_one(browser, http, shots):
    jobs = [submit(http, "heat-demand", buildings=n) for n in (20, 200)]
    for job in jobs:
        eventually(
            lambda job=job: http.get(f"/v1/jobs/{job['jobId']}").json()["status"] == "JOB_STATUS_SUCCEEDED",
            timeout=90,
            interval=0.2,
        )
    ids = ",".join(j["jobId"] for j in jobs)
    browser.get(f"{http.base}/#/compare?jobs={ids}&measurement=district&field=Q&window=1d&agg=mean")
    until(browser, lambda d: d.execute_script("return window.workmeshCompare && window.workmeshCompare.series.length"))
    series = browser.execute_script("return window.workmeshCompare.series.slice(1).map(s => [s.label, s.show])")
    assert len(series) == 2 and all(show for _, show in series)
    assert {label.split(" ", 1)[1] for label, _ in series} == {"buildings=20", "buildings=200"}
    points = browser.execute_script("return window.workmeshCompare.data[0].length")
    assert points in (365, 366)  # daily means of a year
    snap(browser, shots / "compare.png")
    legend = css(browser, ".u-legend .u-series")
    legend[1].click()  # the first job's entry (entry 0 is the time axis)
    shown = browser.execute_script("return window.workmeshCompare.series.slice(1).map(s => s.show)")
    assert shown == [False, True]
    assert "u-off" in legend[1].get_attribute("class")
    assert "format=csv" in css(browser, "#csv")[0].get_attribute("href")
    snap(browser, shots / "compare-toggled.png")


def test_jobs_page_lists_jobs_with_progress(browser, http, shots):
    browser.get(f"{http.base}/#/jobs")
    # Checked in the page, in one go: the rows are re-rendered every second, so elements found
    # by one WebDriver call may be stale by the next.
    every_row_has_a_bar = (
        "const rows = [...document.querySelectorAll('#jobs tbody tr')];"
        "return rows.length > 0 && rows.every(r => r.querySelector('[role=progressbar]') !== null)"
    )
    until(browser, lambda d: d.execute_script(every_row_has_a_bar))
    snap(browser, shots / "jobs.png")


def test_a_jobs_trace_id_links_to_the_configured_tracing_ui(browser, http, shots):
    job = submit(http, "echo")
    assert job["traceId"], "the gateway gave the job no trace id"
    browser.get(f"{http.base}/#/job/{job['jobId']}")
    until(browser, lambda d: text(d, "#trace-id a"))
    # Read in the page in one go: the console re-renders the job page as events arrive.
    shown, href = browser.execute_script(
        "const a = document.querySelector('#trace-id a'); return [a.textContent, a.href]"
    )
    assert shown == job["traceId"]
    assert href == TRACE_URL.replace("{trace_id}", job["traceId"])
    snap(browser, shots / "job-trace-link.png")


def test_a_workflows_page_shows_its_step_tree_with_links_to_the_steps(browser, http, shots):
    job = submit(http, "district-design", buildings=5)
    browser.get(f"{http.base}/#/job/{job['jobId']}")
    until(browser, lambda d: "SUCCEEDED" in text(d, "#job-status"))

    def tree(d):  # one snapshot in the page: a row is re-rendered as its step's job is read
        return d.execute_script("""return [...document.querySelectorAll('#step-tree tr.step')].map(r =>
            [r.dataset.step, r.dataset.depth, [...r.cells].map(c => c.textContent),
             r.querySelector('a').getAttribute('href')])""")

    until(browser, lambda d: len(tree(d)) == 6 and all(" s" in cells[4] for _, _, cells, _ in tree(d)))
    rows = tree(browser)
    listed = http.get("/v1/jobs?page_size=100").json()["jobs"]
    children = {j["stepName"]: j for j in listed if j.get("parentId") == job["jobId"]}
    assert {name for name, _, _, _ in rows} == set(children) and len(children) == 6
    for name, depth, cells, href in rows:
        child = children[name]
        assert depth == "0" and cells[0] == name and cells[1] == child["workflowType"] and cells[2] == "SUCCEEDED"
        assert cells[3] != "—" and cells[5] == child["jobId"] and href == f"#/job/{child['jobId']}"
    snap(browser, shots / "district-design-steps.png")
    # a step's link leads to its job, which links back to its parent
    name = "simulate-as-is"
    browser.execute_script("document.querySelector(`#step-tree tr[data-step='${arguments[0]}'] a`).click()", name)
    until(browser, lambda d: children[name]["jobId"] in d.current_url and "SUCCEEDED" in text(d, "#job-status"))
    assert text(browser, "#parent-job") == f"{job['jobId']} (step {name})"
    assert text(browser, "#steps").startswith("No steps")


def test_cancel_a_running_sleep_job_from_its_page(browser, http, shots):
    job = submit(http, "sleep", seconds=300.0, steps=300)
    browser.get(f"{http.base}/#/job/{job['jobId']}")
    until(browser, lambda d: "RUNNING" in text(d, "#job-status"))
    snap(browser, shots / "sleep-running.png")
    css(browser, "#cancel")[0].click()
    until(browser, lambda d: "CANCELLED" in text(d, "#job-status"))
    assert http.get(f"/v1/jobs/{job['jobId']}").json()["status"] == "JOB_STATUS_CANCELLED"
    assert css(browser, "#cancel")[0].get_attribute("disabled") is not None
    snap(browser, shots / "sleep-cancelled.png")
    # Retry: a new attempt of the same job, followed on its page.
    until(browser, lambda d: css(d, "#retry") and css(d, "#retry")[0].get_attribute("disabled") is None)
    css(browser, "#retry")[0].click()
    until(browser, lambda d: "RUNNING" in text(d, "#job-status"))
    again = browser.current_url.rsplit("/", 1)[1]
    try:
        retried = http.get(f"/v1/jobs/{again}").json()
        assert again == job["jobId"] and retried["status"] == "JOB_STATUS_RUNNING"
        assert [a["outcome"] for a in retried["attemptHistory"]][:1] == ["CANCELLED"]
        assert css(browser, "#cancel")[0].get_attribute("disabled") is None
        snap(browser, shots / "sleep-retried.png")
    finally:
        http.post(f"/v1/jobs/{again}:cancel")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()
        self.server.seen.append(self.headers.get("X-Workmesh-Signature", ""))

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def webhook_receiver():
    """A real HTTP server on 127.0.0.1 that accepts every webhook (204) and notes its signature."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_jobs_notification_outcomes_show_on_its_page(browser, shots, tmp_path):
    # A mesh of its own: the shared one has no webhook secret (its bad-input cases rely on that),
    # and a dead webhook is given up on after 2 s here instead of 24 h.
    env = {"WORKMESH_NOTIFY_SECRET": "console-test", "WORKMESH_NOTIFY_GIVE_UP": "2", "WORKMESH_NOTIFY_POLL": "0.2"}
    mesh = DevMesh(
        workers=("workmesh.workers.examples.basic:worker",), results=False, data_dir=tmp_path, log_dir=tmp_path, env=env
    )
    with webhook_receiver() as receiver, mesh:
        http = Http(mesh.http_port)
        live = f"http://127.0.0.1:{receiver.server_port}/hook"
        dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        reply = http.post("/v1/jobs", {"workflowType": "echo", "notify": {"webhooks": [live, dead]}})
        assert reply.status == 200, reply.body
        job_id = reply.json()["job"]["jobId"]
        browser.get(f"{http.base}/#/job/{job_id}")
        until(browser, lambda d: "SUCCEEDED" in text(d, "#job-status"))
        until(browser, lambda d: len(css(d, "#notifications li.delivered, #notifications li.given-up")) == 2)
        delivered = text(browser, "#notifications li.delivered")
        given_up = text(browser, "#notifications li.given-up")
        assert "DELIVERED" in delivered and "webhook" in delivered and f"127.0.0.1:{receiver.server_port}" in delivered
        assert "GIVEN UP" in given_up and dead.rsplit("/", 1)[0] in given_up
        assert receiver.seen and receiver.seen[0]  # the live one got the signed webhook
        assert not css(browser, "#notifications li.none")
        snap(browser, shots / "job-notifications.png")


def test_a_steps_own_steps_show_nested_under_it(browser, shots, tmp_path):
    # A mesh of its own with a workflow whose step runs a step (tests/steps/series_flow.py).
    mesh = DevMesh(workers=("tests.steps.series_flow:worker",), data_dir=tmp_path, log_dir=tmp_path)
    with mesh:
        http = Http(mesh.http_port)
        reply = http.post("/v1/jobs", {"workflowType": "steps-series"})
        assert reply.status == 200, reply.body
        job_id = reply.json()["job"]["jobId"]
        browser.get(f"{http.base}/#/job/{job_id}")
        until(browser, lambda d: "SUCCEEDED" in text(d, "#job-status"))

        def tree(d):
            return d.execute_script("""return [...document.querySelectorAll('#step-tree tr.step')].map(r =>
                [r.dataset.step, r.dataset.depth, r.dataset.job, r.cells[2].textContent])""")

        def shape(d):
            # Rows in the order the steps started: a and b run in parallel (either first), then mid, deep under it.
            names = [(name, depth) for name, depth, _, _ in tree(d)]
            return sorted(names[:2]) + names[2:]

        until(browser, lambda d: shape(d) == [("a", "0"), ("b", "0"), ("mid", "0"), ("deep", "1")])
        listed = http.get("/v1/jobs?page_size=100").json()["jobs"]
        mid = next(j for j in listed if j.get("parentId") == job_id and j["stepName"] == "mid")
        deep = next(j for j in listed if j.get("parentId") == mid["jobId"])
        rows = tree(browser)
        assert rows[3] == ["deep", "1", deep["jobId"], "SUCCEEDED"] and rows[2][2] == mid["jobId"]
        assert all(status == "SUCCEEDED" for _, _, _, status in rows)
        snap(browser, shots / "nested-steps.png")
