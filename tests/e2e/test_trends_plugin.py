"""The Trends view (plugins/spotify_trends.py) on the running Airflow of ``make up``.

Its FastAPI app is mounted on the api-server, which does not protect a plugin's app: these
tests ask it as a client would, without a login, with a forged JWT (as bearer and as the UI's
``_token`` cookie) and logged in, and open it in Chromium after the UI's login. The reports it
serves are written into the server's lake here, for far-past dates no run reports on (the report
task's pages: tests/e2e/test_history_dag.py); the lake's ``reports/latest`` is put back afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from airflow_client.client.api import PluginApi
from spotify_etl.lake import LocalLake

from tests.e2e.airflow_api import DAG_ID, Server
from tests.e2e.test_ui_browser import ARTIFACTS, page  # noqa: F401 - the browser test's Chromium page fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PREFIX = "/spotify-trends"
# Far-past dates no run of the other tests reports on; REAL: a report as the report task makes one.
OLDER, NEWER, MISSING, REAL = "2001-02-03", "2001-02-04", "2001-02-05", "2001-02-07"
# make screenshots sets it (docs/img): the browser test saves the report and the Trends view there.
SCREENSHOTS = os.environ.get("SPOTIFY_ETL_SCREENSHOTS")
ROUTES = ["/", "/dates", "/latest/", f"/dt/{NEWER}/"]


def report(day: str) -> bytes:
    """A page as the report task writes one: self-contained, inline script, an SVG chart."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Trends {day}</title></head><body>"
        f"<h1>Trends of {day}</h1><svg width='10' height='10'><rect width='10' height='{day[-1]}'/></svg>"
        f"<script>document.body.insertAdjacentHTML('beforeend', '<p id=ran>script ran on {day}</p>');</script>"
        "</body></html>"
    ).encode()


@pytest.fixture(scope="module")
def reports(airflow_server: Server) -> Iterator[dict[str, bytes]]:
    lake = LocalLake(airflow_server.lake)
    latest = Path(lake.root, "reports", "latest", "index.html")
    kept = latest.read_bytes() if latest.exists() else None
    pages = {OLDER: report(OLDER), NEWER: report(NEWER)}
    written = [f"{lake.root}/reports/dt={day}/index.html" for day in pages]
    for path, data in zip(written, pages.values(), strict=True):
        lake.write_bytes(path, data)
    lake.write_bytes(str(latest), pages[NEWER])
    try:
        yield {**pages, "latest": pages[NEWER]}
    finally:
        for path in written:
            Path(path).unlink()
            Path(path).parent.rmdir()
        if kept is None:
            latest.unlink()
        else:
            lake.write_bytes(str(latest), kept)


@pytest.fixture(scope="module")
def real_report(airflow_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """REAL's report made by spotify_etl.report from the sample playlists landed on REAL and the day
    before, each date with its run log row (a catalog of its own), written into the server's lake;
    the queries' rows."""
    from spotify_etl import report as trends
    from spotify_etl import runlog
    from spotify_etl.extract import SampleSource, extract_playlist
    from spotify_etl.settings import Settings
    from spotify_etl.targets import LocalTarget
    from spotify_etl.transform import transform_day

    root = tmp_path_factory.mktemp("real-report")
    lake = LocalLake(root / "lake")
    source = SampleSource()
    playlists = source.available()
    for n, day in enumerate(("2001-02-06", REAL)):
        started, planned = dt.datetime.now(dt.UTC), playlists[: len(playlists) - 1 + n]  # one more on REAL
        extracted = [extract_playlist(source, lake, p, day, f"{day}T06:00:00+00:00").as_dict() for p in planned]
        result = transform_day(lake, day).as_dict()
        row = runlog.build_row(run_id=f"manual__{day}", run_type="manual", started_at=started, mode="extract",
                               planned=planned, extracted=extracted, transformed=result)  # fmt: skip
        runlog.write_row(lake, row)
    target = LocalTarget(Settings(target="local", lake_dir=lake.root, duckdb_path=root / "catalog.duckdb"))
    target.catalog(lake)
    data = target.report_data(REAL)
    written = LocalLake(airflow_server.lake).report_path(REAL)
    LocalLake(airflow_server.lake).write_bytes(written, trends.render(REAL, data, "spotify_etl").encode())
    try:
        yield data
    finally:
        Path(written).unlink()
        Path(written).parent.rmdir()


def token(server: Server) -> str:
    response = httpx.post(
        f"{server.url}/auth/token", json={"username": server.user, "password": server.password}, timeout=60
    )
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def test_the_plugin_registers_its_app_and_the_trends_views(airflow_server: Server) -> None:
    (plugin,) = [p for p in PluginApi(airflow_server.client).get_plugins().plugins if p.name == "spotify_trends"]
    assert [(a.url_prefix, a.app) for a in plugin.fastapi_apps] == [(PREFIX, "spotify_trends.LazyApp")]
    views = {v.destination: v for v in plugin.external_views}
    assert set(views) == {"nav", "dag"}
    assert (views["nav"].name, views["nav"].href, views["nav"].category) == ("Trends", f"{PREFIX}/", "browse")
    # The UI fills in {DAG_ID} for a view on a DAG's page.
    assert (views["dag"].name, views["dag"].href) == ("Trends", f"{PREFIX}/?dag_id={{DAG_ID}}")
    import_errors = PluginApi(airflow_server.client).import_errors()
    assert not [e for e in import_errors.import_errors if "spotify_trends" in e.source], import_errors


def test_anonymous_and_forged_requests_are_refused(airflow_server: Server, reports: dict[str, bytes]) -> None:
    # A real user's claims signed with a guessed key: what a forger without the server's key can make.
    claims = jwt.decode(token(airflow_server), options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": int(dt.datetime.now(dt.UTC).timestamp()) + 600}, "guessed-" * 8, "HS512")
    for route in ROUTES:
        url = f"{airflow_server.url}{PREFIX}{route}"
        anonymous = httpx.get(url, timeout=30)
        assert anonymous.status_code == 401, (route, anonymous.text)
        assert NEWER.encode() not in anonymous.content
        for headers, cookies in (({"Authorization": f"Bearer {forged}"}, {}), ({}, {"_token": forged})):
            refused = httpx.get(url, headers=headers, cookies=cookies, timeout=30)
            assert refused.status_code == 403, (route, headers, cookies, refused.text)
            assert NEWER.encode() not in refused.content
        garbage = httpx.get(url, cookies={"_token": "not-a-jwt"}, timeout=30)
        assert garbage.status_code == 403, (route, garbage.text)


def test_a_logged_in_user_reads_the_latest_and_each_dates_report(
    airflow_server: Server, reports: dict[str, bytes]
) -> None:
    base = f"{airflow_server.url}{PREFIX}"
    bearer = {"Authorization": f"Bearer {token(airflow_server)}"}

    dates = httpx.get(f"{base}/dates", headers=bearer, timeout=30)
    assert dates.status_code == 200, dates.text
    listed = dates.json()
    assert listed["dag_id"] == DAG_ID
    assert listed["dates"] == sorted(listed["dates"], reverse=True)
    assert listed["dates"].index(NEWER) < listed["dates"].index(OLDER)

    for route, expected in (("/latest/", reports["latest"]), (f"/dt/{OLDER}/", reports[OLDER])):
        served = httpx.get(f"{base}{route}", headers=bearer, timeout=30)
        assert served.status_code == 200, (route, served.text)
        assert served.content == expected  # the lake's bytes, unchanged
        assert served.headers["content-type"].startswith("text/html")
        assert served.headers["cache-control"] == "no-store"
        policy = served.headers["content-security-policy"]
        assert "connect-src 'none'" in policy and "frame-ancestors 'self'" in policy
        assert policy.startswith("sandbox allow-scripts ")  # an origin of its own: no reach into the UI

    # The UI's own credential: the JWT in the _token cookie its login sets.
    by_cookie = httpx.get(f"{base}/dt/{NEWER}/", cookies={"_token": bearer["Authorization"][7:]}, timeout=30)
    assert by_cookie.status_code == 200 and by_cookie.content == reports[NEWER]

    missing = httpx.get(f"{base}/dt/{MISSING}/", headers=bearer, timeout=30)
    assert missing.status_code == 404
    assert f"reports/dt={MISSING}/index.html" in missing.json()["detail"]
    not_a_date = httpx.get(f"{base}/dt/2001-02-30/", headers=bearer, timeout=30)
    assert not_a_date.status_code == 400 and "not a date" in not_a_date.json()["detail"]
    traversal = httpx.get(f"{base}/dt/..%2F..%2Fcatalog.duckdb/", headers=bearer, timeout=30)
    assert traversal.status_code in (400, 404) and b"DUCK" not in traversal.content

    index = httpx.get(f"{base}/", headers=bearer, timeout=30)
    assert index.status_code == 200
    assert f'<iframe name="report" src="{PREFIX}/latest/"' in index.text
    for day in (OLDER, NEWER):
        assert f'href="{PREFIX}/dt/{day}/" target="report"' in index.text
    other = httpx.get(f"{base}/", params={"dag_id": "another_dag"}, headers=bearer, timeout=30)
    assert f"These are the trends of <b>{DAG_ID}</b>; another_dag has none." in other.text


@pytest.mark.browser
def test_a_browser_shows_the_trends_view_after_login(
    airflow_server: Server,
    reports: dict[str, bytes],
    real_report: dict[str, Any],
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    """The UI's own credential in a real browser: the login's cookie reaches the plugin's frame,
    the report's inline script runs inside its sandbox, and a real report's tables show the rows
    of its queries."""
    url = airflow_server.url
    page.goto(f"{url}/plugin/spotify-trends")
    page.wait_for_url("**/auth/login**")
    page.get_by_label("Username").fill(airflow_server.user)
    page.get_by_label("Password").fill(airflow_server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/plugin/spotify-trends")
    view = page.frame_locator('iframe[title="Trends"]')
    view.get_by_role("link", name=OLDER).wait_for()
    latest = view.frame_locator('iframe[name="report"]')
    latest.get_by_role("heading", name=f"Trends of {NEWER}").wait_for()
    latest.locator("#ran").wait_for()  # its script ran (sandbox allow-scripts)
    assert latest.locator("#ran").inner_text() == f"script ran on {NEWER}"
    view.get_by_role("link", name=OLDER).click()
    latest.get_by_role("heading", name=f"Trends of {OLDER}").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-trends.png"))

    # A report as the report task makes it, in the view's frame: the numbers of its queries.
    view.get_by_role("link", name=REAL).click()
    shown = latest.locator("#top_artists")
    shown.get_by_role("heading", name="Top artists of the date").wait_for()
    shown.locator("summary").click()  # the panel's data table
    cells = [row.locator("td").all_inner_texts() for row in shown.locator("tbody tr").all()]
    assert cells == [[str(v) for v in row.values()] for row in real_report["top_artists"]]
    assert real_report["top_artists"][0]["artist"] in shown.locator("svg text").all_text_contents()  # drawn too
    sizes = latest.locator("#sizes")
    sizes.locator("summary").click()
    cells = [row.locator("td").all_inner_texts() for row in sizes.locator("tbody tr").all()]
    assert cells == [[str(v) for v in row.values()] for row in real_report["sizes"]]
    if SCREENSHOTS:
        page.screenshot(path=f"{SCREENSHOTS}/trends.png")

    # The tab on the DAG's page: the same view, told which DAG it is on.
    page.goto(f"{url}/dags/{DAG_ID}/plugin/spotify-trends-dag")
    tab = page.frame_locator('iframe[title="Trends"]')
    tab.frame_locator('iframe[name="report"]').get_by_role("heading", name=f"Trends of {NEWER}").wait_for()
    assert "has none" not in tab.locator("body").inner_text()
    if SCREENSHOTS:  # the report as a page of its own, whole
        page.goto(f"{url}{PREFIX}/dt/{REAL}/")
        page.get_by_role("heading", name=f"Spotify playlist trends, dt={REAL}").wait_for()
        page.screenshot(path=f"{SCREENSHOTS}/report.png", full_page=True)
