"""The console's Jobs page in headless Chromium: filters by owner and labels answered by the
server, and the page with 10,000 jobs in the store — one page of rows in the browser, pages by
the server's tokens, and a filter that finds the oldest job of all.

The rows are read in the page by one script each time (the page re-renders them every second,
so elements found by one WebDriver call may be stale by the next).
"""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid

import pytest

from tests.http.browser import MISSING
from tests.http.client import Http
from tests.http.test_console import browser, shots, snap, text, until  # noqa: F401 - fixtures
from workmesh.services.bench._jobs_page import BASIC, NEEDLE, PAGE, seed_jobs
from workmesh.services.devmesh import DevMesh

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(MISSING), reason=MISSING or "-")]
SEEDED = 10_000
CLICK = "[...document.querySelectorAll('button')].find(b => b.textContent === arguments[0]).click()"
ROWS = "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.job)"


def _ids(http: Http, **query) -> tuple[list[str], str]:
    reply = http.get("/v1/jobs?" + urllib.parse.urlencode(query, doseq=True))
    assert reply.status == 200, reply.body
    body = reply.json()
    return [j["jobId"] for j in body["jobs"]], body.get("nextPageToken", "")


def _filter(driver, selector: str, value: str) -> None:
    driver.execute_script(
        "const e = document.querySelector(arguments[0]); e.value = arguments[1];e.dispatchEvent(new Event('change'))",
        selector,
        value,
    )


def _rows_are(driver, expected: list[str]) -> None:
    until(driver, lambda d: d.execute_script(ROWS) == expected)


def test_jobs_page_filters_by_owner_and_labels_on_the_server(browser, http, shots):  # noqa: F811
    run = uuid.uuid4().hex[:8]
    ana, bob = f"ana-{run}", f"bob-{run}"
    made = []
    for i in range(4):
        body = {
            "workflowType": "echo",
            "params": {"message": {"stringValue": "hi"}},
            "user": ana if i % 2 == 0 else bob,
            "labels": {"run": run, "project": "x" if i < 2 else "y"},
        }
        reply = http.post("/v1/jobs", body)
        assert reply.status == 200, reply.body
        made.append(reply.json()["job"]["jobId"])
    browser.get(f"{http.base}/#/jobs?owner={bob}")
    _rows_are(browser, [made[3], made[1]])
    _filter(browser, "#filter-owner", "")
    _filter(browser, "#filter-label", f"run={run} project=y")
    _rows_are(browser, [made[3], made[2]])
    _filter(browser, "#filter-owner", ana)
    _rows_are(browser, [made[2]])
    snap(browser, shots / "jobs-filtered.png")
    _filter(browser, "#filter-label", "project")  # no "=": the server's message is shown
    until(browser, lambda d: "labels[0]: must be key=value" in text(d, "#jobs-error"))
    assert browser.execute_script(ROWS) == []


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A dev mesh whose job store holds 10,000 ended jobs (seeded before the gateway opens it)."""
    tmp = tmp_path_factory.mktemp("jobs-10k")
    url = f"sqlite:///{tmp / 'jobs.db'}"
    seeded = asyncio.run(seed_jobs(url, SEEDED))
    with DevMesh(workers=(BASIC,), results=False, database_url=url, data_dir=tmp, log_dir=tmp) as mesh:
        yield Http(mesh.http_port), seeded


def test_jobs_page_with_10000_jobs_pages_and_filters_on_the_server(browser, big, shots):  # noqa: F811
    http, seeded = big
    assert len(seeded["ids"]) == SEEDED
    first, token = _ids(http, page_size=PAGE)
    assert first == seeded["ids"][:PAGE] and token
    browser.get(f"{http.base}/#/jobs")
    _rows_are(browser, first)  # one page in the browser, not 10,000 rows
    assert text(browser, "#main .row .muted") == f"page 1, {PAGE} job(s)"
    snap(browser, shots / "jobs-10000.png")
    # older → : the server's next page, twice; newer ← : back
    for page in (2, 3):
        browser.execute_script(CLICK, "older →")
        _rows_are(browser, seeded["ids"][(page - 1) * PAGE : page * PAGE])
        assert text(browser, "#main .row .muted") == f"page {page}, {PAGE} job(s)"
    browser.execute_script(CLICK, "← newer")
    _rows_are(browser, seeded["ids"][PAGE : 2 * PAGE])
    # the oldest of the 10,000 jobs, found by its owner: filtered by the server, not on a page
    _filter(browser, "#filter-owner", NEEDLE)
    _rows_are(browser, [seeded["ids"][-1]])
    assert text(browser, "#main .row .muted") == "page 1, 1 job(s)"
    snap(browser, shots / "jobs-10000-needle.png")
    # owner and label: the same jobs as the API gives, a page of them
    _filter(browser, "#filter-owner", "user2")
    _filter(browser, "#filter-label", "project=p42")
    expected, _ = _ids(http, page_size=PAGE, owner="user2", labels="project=p42")
    assert len(expected) == PAGE
    _rows_are(browser, expected)
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.cells[5].textContent)"
    )
    assert all("workmesh.user=user2" in t and "project=p42" in t for t in labels)
    # the steps of one workflow, by the page's parent filter
    parent = seeded["parents"][0]
    steps, _ = _ids(http, parent_id=parent)
    assert len(steps) == 10
    browser.get(f"{http.base}/#/jobs?parent={parent}")
    _rows_are(browser, steps)
    assert parent in text(browser, "#filter-parent")


def test_compare_picks_the_jobs_with_a_label_from_the_server(browser, http, shots):  # noqa: F811
    run = uuid.uuid4().hex[:8]
    made = []
    for _ in range(2):
        body = {"workflowType": "echo", "params": {"message": {"stringValue": "hi"}}, "labels": {"project": run}}
        reply = http.post("/v1/jobs", body)
        assert reply.status == 200, reply.body
        made.append(reply.json()["job"]["jobId"])
    until(browser, lambda _: _ids(http, labels=f"project={run}", statuses="JOB_STATUS_SUCCEEDED")[0] == made[::-1])
    browser.get(f"{http.base}/#/compare")
    picks = "return [...document.querySelectorAll('#pick-jobs input[type=checkbox]')].map(b => b.value)"
    until(browser, lambda d: d.execute_script(picks))
    _filter(browser, "#pick-label", f"project={run}")
    until(browser, lambda d: d.execute_script(picks) == made[::-1])
    snap(browser, shots / "compare-picked-by-label.png")
    _filter(browser, "#pick-label", "project")
    until(browser, lambda d: "labels[0]: must be key=value" in text(d, "#pick-error"))
    assert browser.execute_script(picks) == []
