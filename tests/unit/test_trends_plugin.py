"""plugins/: what every Airflow component pays for the Trends view, and its pages' text.

Airflow imports every plugin module in each component (scheduler, dag-processor, triggerer,
workers), so the plugin module must import nothing beyond Airflow's plugin base; the app and
its imports wait for the api-server's first request. Its routes and their refusals run against
a real api-server in tests/e2e/test_trends_plugin.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"

# One interpreter (Airflow's import is most of the cost): the module alone, then Airflow's discovery.
PROBE = r"""
import importlib.util, json, sys
from airflow import plugins_manager  # what Airflow has loaded before it reads any plugin
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("spotify_trends", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = sorted(set(sys.modules) - before)
apps, _ = plugins_manager.get_fastapi_plugins()
views, _ = plugins_manager._get_ui_plugins()
print("PROBE:" + json.dumps({
    "imported": imported,
    "apps": [(a["name"], a["url_prefix"], type(a["app"]).__name__) for a in apps],
    "views": [(v["name"], v["destination"], v["href"]) for v in views],
    "app_module_loaded": "spotify_trends_app" in sys.modules,
    "errors": plugins_manager._get_plugins()[1],
}))
"""


def test_airflow_finds_the_plugin_which_imports_nothing_and_leaves_the_app_to_the_first_request(
    tmp_path: Path,
) -> None:
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(PLUGINS / "spotify_trends.py")],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE:")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads(lines[-1].removeprefix("PROBE:")) == {
        "imported": [],  # nothing beyond what Airflow had already loaded (the module is not kept in sys.modules)
        "apps": [["Spotify playlist trends", "/spotify-trends", "LazyApp"]],
        "views": [["Trends", "nav", "/spotify-trends/"], ["Trends", "dag", "/spotify-trends/?dag_id={DAG_ID}"]],
        "app_module_loaded": False,  # plugins/.airflowignore: discovery did not import it as a plugin
        "errors": {},
    }


@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(PLUGINS))
    import spotify_trends_app

    return spotify_trends_app


def test_the_index_escapes_what_it_is_given_and_says_when_there_is_no_report(app_module) -> None:  # type: ignore[no-untyped-def]
    page = app_module.index_page("/spotify-trends", [], "<script>alert(1)</script>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; has none" in page
    assert "No report yet" in page and "<iframe" not in page
    page = app_module.index_page("/spotify-trends", ["2026-12-02", "2026-12-01"], None)
    assert '<iframe name="report" src="/spotify-trends/latest/"' in page and "has none" not in page
    assert page.index("/dt/2026-12-02/") < page.index("/dt/2026-12-01/")


def test_reported_dates_are_the_dated_folders_newest_first(app_module, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from spotify_etl.lake import LocalLake

    lake = LocalLake(tmp_path / "lake")
    assert app_module.reported_dates(lake) == []  # no reports folder yet
    for name in ("dt=2026-12-01", "dt=2026-12-03", "latest", "dt=not-a-date", "_tmp"):
        (tmp_path / "lake" / "reports" / name).mkdir(parents=True)
    assert app_module.reported_dates(lake) == ["2026-12-03", "2026-12-01"]
    assert lake.report_path(None) == f"{lake.root}/reports/latest/index.html"
    assert lake.report_path("2026-12-01") == f"{lake.root}/reports/dt=2026-12-01/index.html"


def test_a_lake_the_api_server_cannot_open_is_a_503_naming_why(app_module, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from fastapi import HTTPException

    monkeypatch.setenv("SPOTIFY_ETL_TARGET", "aws")
    monkeypatch.delenv("SPOTIFY_ETL_S3_BUCKET", raising=False)
    app_module._open_lake.cache_clear()
    try:
        with pytest.raises(HTTPException) as refused:
            app_module._lake()
    finally:
        app_module._open_lake.cache_clear()
    assert refused.value.status_code == 503
    assert "SPOTIFY_ETL_S3_BUCKET" in refused.value.detail
