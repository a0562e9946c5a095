"""Flower's pages in a headless Chromium: what an operator sees of a real worker's batched messages.

Chromium and its driver come from the distribution's packages (scripts/services.sh installs them as root);
Selenium is given the driver's path, so Selenium Manager never downloads one.
"""

from __future__ import annotations

import base64
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from customer_updates import Producer
from customer_updates.messaging.names import APPLY_TASK
from customer_updates.settings import Settings
from tests.conftest import _unavailable, cli_env, load_examples
from tests.flower_process import running_flower

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
AUTH = ("ops", "flower-browser-secret")
# The result and kwargs columns too: a refused command's summary must be visible, personal data must not.
COLUMNS = "name,uuid,state,kwargs,result,received,runtime,worker"
FINAL = ("SUCCESS", "FAILURE")


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium that sends Flower's basic-auth header with every request, XHRs included."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        _unavailable("Chromium (apt-get install chromium chromium-driver)", FileNotFoundError(", ".join(missing)))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a driver to download
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1600,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    try:
        token = base64.b64encode(":".join(AUTH).encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


@pytest.fixture
def flower(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[str]:
    env = cli_env(pg_url, redis_url, flower_basic_auth=":".join(AUTH))
    with running_flower(env, tmp_path / "flower.log", "--address", "127.0.0.1", f"--tasks_columns={COLUMNS}") as base:
        yield base


def settled_tasks(base: str, ids: set[str], timeout: float = 40) -> dict[str, dict[str, Any]]:
    """Flower's API view of the tasks `ids` once each is SUCCESS or FAILURE."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = httpx.get(f"{base}/api/tasks", auth=AUTH, timeout=5).json()
        if all(tasks.get(task_id, {}).get("state") in FINAL for task_id in ids):
            return {task_id: tasks[task_id] for task_id in ids}
        assert time.monotonic() < deadline, {task_id: tasks.get(task_id, {}).get("state") for task_id in ids}
        time.sleep(0.3)


def task_id_of(tasks: dict[str, dict[str, Any]], request_id: str) -> str:
    """The apply task whose (masked) kwargs name this request id."""
    found = [task_id for task_id, task in tasks.items()
             if task.get("name") == APPLY_TASK and request_id in (task.get("kwargs") or "")]
    assert len(found) == 1, (request_id, found)
    return found[0]


def shown_seconds(text: str) -> float:
    """Flower's runtime cell ("12.34 ms", "1.23 s") in seconds."""
    match = re.fullmatch(r"([\d.]+) (ms|s)", text.strip())
    assert match, text
    return float(match[1]) / (1000 if match[2] == "ms" else 1)


def table_rows(driver: Any, ids: set[str], timeout: float = 20) -> dict[str, dict[str, str]]:
    """The tasks table as the page shows it, by task id, once its XHR brought a row for each of `ids`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def rows(drv: Any) -> dict[str, dict[str, str]] | Literal[False]:
        columns = [th.get_attribute("data-column") for th in drv.find_elements(By.CSS_SELECTOR, "#tasks-table th")]
        found: dict[str, dict[str, str]] = {}
        for row in drv.find_elements(By.CSS_SELECTOR, "#tasks-table tbody tr"):
            links = row.find_elements(By.CSS_SELECTOR, "a[href*='/task/']")
            if not links:
                continue
            task_id = str(links[0].get_attribute("href")).rsplit("/task/", 1)[1]
            cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            found[task_id] = dict(zip(columns, cells, strict=False))
        shown = all(found.get(task_id, {}).get("state") in FINAL for task_id in ids)
        return found if shown else False

    result: dict[str, dict[str, str]] = WebDriverWait(driver, timeout, poll_frequency=0.3).until(rows)
    return result


def test_flowers_pages_show_each_batched_message_with_its_own_state_and_share_of_runtime(
        pg_url: str, redis_url: str, flower: str, start_worker: Any, browser: Any, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    load_examples(pg_url)
    producer = Producer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url))
    sent = {"919800000001", "919800000002", "919800000003", "919800000005", "917654399999",
            "ben.browser@example.com", "eli.browser@example.com"}
    # Queued before the worker starts, so that it takes them as one batch: one message of three commands,
    # two of one (the second for no customer: refused with 1012), one that is not {'commands': [...]}.
    three = producer.enqueue_batch(1, {"root": {"customer": [
        {"mobile": "919800000001", "lastname": "Browser"},
        {"mobile": "919800000002", "email": "ben.browser@example.com"},  # a first email: allowed
        {"mobile": "919800000003", "firstname": "Browser"}]}})
    good = producer.enqueue_update(1, {"mobile": "919800000005", "email": "eli.browser@example.com"})
    refused = producer.enqueue_update(1, {"mobile": "917654399999", "lastname": "Nobody"})
    dead = producer.celery.send_task(APPLY_TASK, kwargs={"not_commands": 1}).id
    producer.close()
    # A flush interval longer than the worker's start: its first batch holds every queued message.
    start_worker(pg_url, redis_url, concurrency=1, worker_flush_interval="1.0")

    deadline = time.monotonic() + 40
    while True:
        listed = httpx.get(f"{flower}/api/tasks", auth=AUTH, timeout=5).json()
        if dead in listed and sum(1 for t in listed.values() if t.get("name") == APPLY_TASK) >= 4:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.3)
    ids = {"three": task_id_of(listed, three.request_ids[0]), "good": task_id_of(listed, good),
           "refused": task_id_of(listed, refused), "dead": dead}
    tasks = settled_tasks(flower, set(ids.values()))
    assert {name: tasks[task_id]["state"] for name, task_id in ids.items()} == {
        "three": "SUCCESS", "good": "SUCCESS", "refused": "SUCCESS", "dead": "FAILURE"}

    # Each message's runtime is its share of its batch's, by commands: within a batch they are in proportion
    # and sum to no more than the batch's time from hand-over to return (not each the whole batch's runtime).
    # The batch's runtime counts from its hand-over to the pool, so it is bounded by received..succeeded.
    batches: dict[float, list[str]] = defaultdict(list)
    for name, task_id in ids.items():
        batches[tasks[task_id]["received"]].append(name)
    shared = max(batches.values(), key=len)
    assert len(shared) >= 3, dict(batches)
    received = tasks[ids[shared[0]]]["received"]
    wall = max(tasks[ids[name]]["succeeded"] or tasks[ids[name]]["failed"] for name in shared) - received
    runtimes = {name: tasks[ids[name]]["runtime"] for name in shared}
    assert sum(runtimes.values()) <= wall + 0.01, (runtimes, wall)
    commands = {"three": 3, "good": 1, "refused": 1, "dead": 1}
    per_command = {name: runtimes[name] / commands[name] for name in shared}
    assert max(per_command.values()) - min(per_command.values()) < 1e-6 * max(per_command.values()), runtimes
    assert all(runtimes[name] < sum(runtimes.values()) for name in shared), runtimes

    # What a person sees on the tasks page (filled by the datatable's XHR).
    browser.get(f"{flower}/tasks")
    rows = table_rows(browser, set(ids.values()))
    browser.save_screenshot(str(tmp_path / "flower-tasks.png"))
    assert {name: rows[task_id]["state"] for name, task_id in ids.items()} == {
        "three": "SUCCESS", "good": "SUCCESS", "refused": "SUCCESS", "dead": "FAILURE"}
    shown = {name: shown_seconds(rows[ids[name]]["runtime"]) for name in ids}
    assert all(seconds < 1 for seconds in shown.values()), shown
    assert all(abs(shown[name] - runtimes[name]) < 0.0001 for name in shared), (shown, runtimes)
    assert shown["three"] > shown["good"], shown  # three commands' share against one's, as displayed
    assert "'failed': 1" in rows[ids["refused"]]["result"] and "1012" in rows[ids["refused"]]["result"]
    assert "'applied': 3" in rows[ids["three"]]["result"]
    page_text = browser.find_element(By.TAG_NAME, "body").text
    assert {value for value in sent if value in page_text} == set()

    # The dead-lettered message's own page: FAILURE, why, and no personal data anywhere on it.
    browser.get(f"{flower}/task/{dead}")
    WebDriverWait(browser, 10).until(lambda drv: drv.find_elements(By.CSS_SELECTOR, ".badge.text-bg-danger"))
    assert browser.find_element(By.CSS_SELECTOR, ".badge.text-bg-danger").text == "FAILURE"
    detail = browser.find_element(By.TAG_NAME, "body").text
    assert "DeadLettered" in detail and "InvalidMessage" in detail
    for task_id in (ids["three"], ids["refused"]):
        browser.get(f"{flower}/task/{task_id}")
        WebDriverWait(browser, 10).until(lambda drv: drv.find_elements(By.CSS_SELECTOR, ".badge.text-bg-success"))
        detail += browser.find_element(By.TAG_NAME, "body").text
    assert {value for value in sent if value in detail} == set()
