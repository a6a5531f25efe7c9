"""The Airflow UI in a real browser: Debian's Chromium driven by Playwright.

Logs in with the simple auth manager's form, opens the DAG and its docs, triggers it with a
playlist typed into the trigger form's params field, and waits until the run page shows
Success. Screenshots land in test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import lake_view
from tests.e2e.airflow_api import DAG_ID, Server, task_log, wait_run, xcom

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(900)]

# Debian's Chromium (make browser installs it); CHROMIUM_BIN names another Chromium-based browser
# (the GitHub workflow's fallback, see .github/workflows/ci.yml).
CHROMIUM = Path(os.environ.get("CHROMIUM_BIN") or "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# One of the REST test's two playlists, so that test's "exactly these raw documents for
# today" holds whichever of the two runs first.
PLAYLIST = "1h9q8vXXDl2vHOmwdsuXms"


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: make browser (as root) installs Debian's chromium, or set CHROMIUM_BIN"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(60_000)  # a busy 2-core machine renders slowly
            yield context.new_page()
        finally:
            browser.close()


def test_log_in_trigger_with_a_playlist_and_see_the_run_succeed(airflow_server: Server, page: Any) -> None:
    url = airflow_server.url
    ARTIFACTS.mkdir(exist_ok=True)

    page.goto(f"{url}/dags/{DAG_ID}")
    page.wait_for_url("**/auth/login**")  # not logged in yet: the simple auth manager's form
    page.get_by_label("Username").fill(airflow_server.user)
    page.get_by_label("Password").fill(airflow_server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/dags/{DAG_ID}")

    # The DAG's doc_md (its runbook) is one click away.
    page.locator('[aria-label="Dag Docs"]').click()
    docs = page.get_by_role("dialog")
    docs.get_by_text("spotify_playlist_etl: daily Spotify playlist ETL (runbook)").wait_for()
    assert "reprocess" in docs.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-dag-docs.png"))
    page.keyboard.press("Escape")
    docs.wait_for(state="hidden")

    # Trigger with one playlist typed into the params form (it shows include/config/playlists.toml's
    # list, one per line: empty as shipped, never the sample playlists).
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    playlists = form.locator("textarea[name=element_playlists]")
    assert "4dn0iEoAxn69ea0Tyov8V5" not in playlists.input_value()
    playlists.fill(PLAYLIST)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/dags/{DAG_ID}/dagRuns")
    ) as posted:
        form.get_by_role("button", name="Trigger", exact=True).click()
    assert posted.value.status == 200, posted.value.text()
    run = posted.value.json()
    assert run["conf"] == {"playlists": [PLAYLIST]} and run["triggered_by"] == "ui"
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/**")

    # The run page refreshes itself while the run is going; wait (bounded) for its state badge.
    badge = page.get_by_test_id("header-card").get_by_test_id("state-badge")
    deadline = time.monotonic() + 420
    state = ""
    while time.monotonic() < deadline:
        state = badge.inner_text().strip() if badge.count() else ""
        if state in ("Success", "Failed"):
            break
        time.sleep(2)
    page.screenshot(path=str(ARTIFACTS / "ui-run-success.png"), full_page=True)
    assert state == "Success", f"run page shows {state!r} (screenshot in {ARTIFACTS})"

    # The same run through the API: it extracted exactly the typed playlist.
    client = airflow_server.client
    assert wait_run(client, run["dag_run_id"], timeout=60).state == "success"
    assert xcom(client, run["dag_run_id"], "plan")["playlists"] == [PLAYLIST]
    assert xcom(client, run["dag_run_id"], "chunk_playlists") == [[PLAYLIST]]  # one chunk of one playlist
    numbers = lake_view.sample_numbers(PLAYLIST)
    assert f"{numbers['items']} items in {numbers['pages']} pages" in task_log(
        client, run["dag_run_id"], "extract_playlist", map_index=0
    )

    # The transform's XCom summary as the task's Storage -> XCom tab shows it: the same numbers.
    rows = xcom(client, run["dag_run_id"], "transform")["rows"]
    page.goto(f"{url}/dags/{DAG_ID}/runs/{run['dag_run_id']}/tasks/transform/xcom")
    for key in ("rows", "rejected", "bytes_written", "seconds", "entries", "documents"):
        page.get_by_role("cell", name=key, exact=True).wait_for()
    page.get_by_role("button", name="Expand all extra JSON").click()
    rows_cell = page.get_by_role("row").filter(has=page.get_by_role("cell", name="rows", exact=True))
    shown, deadline = "", time.monotonic() + 60
    while time.monotonic() < deadline and f'"songs": {rows["songs"]}' not in shown:
        time.sleep(0.5)
        shown = " ".join(rows_cell.inner_text().replace("\xa0", " ").split())
    page.screenshot(path=str(ARTIFACTS / "ui-transform-xcom.png"), full_page=True)
    for table, count in rows.items():
        assert f'"{table}": {count}' in shown, shown
