"""The Trends view's FastAPI app: the trends reports of the lake, to logged-in Airflow users only.

Airflow mounts a plugin's FastAPI app on the api-server but does not protect it: each route
here depends on :func:`reader`, which authenticates the request as Airflow's own API routes do
(``get_user``: a JWT as ``Authorization: Bearer`` or in the ``_token`` cookie the UI's login
sets; none is 401, an invalid one 403) and asks the configured auth manager whether that user
may read the DAG's runs (else 403), the reports being made of them.

Routes (under the plugin's URL prefix):

* ``/``: the index, every reported date and the latest report in a frame;
* ``/latest/``: ``reports/latest/index.html``; ``/dt/<date>/``: ``reports/dt=<date>/index.html``;
* ``/dates``: the reported dates as JSON, newest first.

Reports are read through the lake (:func:`spotify_etl.airflow.tasks.open_lake`: the settings'
folder, or S3 through the AWS connection). They are served with a Content-Security-Policy that
lets them run their inline code but reach nothing: they are self-contained pages.
"""

from __future__ import annotations

import functools
import html
import sys
from typing import TYPE_CHECKING, Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse

if TYPE_CHECKING:
    from spotify_etl.lake import Lake

# The reports: their own inline scripts and styles, images as data: URLs, and no request anywhere.
# "sandbox" runs them in an origin of their own even inside the UI's same-origin frame: a script
# in a report (its text comes from Spotify's playlists) can reach neither the UI nor its cookie.
REPORT_POLICY = (
    "sandbox allow-scripts allow-downloads; "
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'self'"
)
INDEX_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _dag_id() -> str:
    from spotify_etl.airflow import DAG_ID

    return DAG_ID


def _import_the_package() -> None:
    """On MWAA the package lives in the DAGs folder, which the api-server does not put on sys.path."""
    try:
        import spotify_etl  # noqa: F401
    except ModuleNotFoundError:
        from airflow.configuration import conf

        sys.path.append(conf.get("core", "dags_folder"))


def reader(user: Annotated[BaseUser, Depends(get_user)]) -> BaseUser:
    """The logged-in user, if the auth manager lets them read the DAG's runs; else 403."""
    allowed = get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=_dag_id()), user=user
    )
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: you may not read this DAG's runs")
    return user


@functools.cache
def _open_lake() -> Lake:
    from spotify_etl.airflow.tasks import open_lake
    from spotify_etl.settings import Settings

    return open_lake(Settings.from_env())


def _lake() -> Lake:
    """The lake of the api-server's settings, opened once (a failure is not kept: the next request retries)."""
    try:
        return _open_lake()
    except Exception as exc:  # a setting the api-server lacks, a connection it cannot read: say so
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"The lake cannot be opened: {exc}") from exc


def reported_dates(lake: Lake) -> list[str]:
    """Dates with a report (:meth:`Lake.report_dates`), newest first."""
    try:
        return lake.report_dates()[::-1]
    except Exception as exc:  # the lake's storage failed (LakeError names the folder)
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Could not list the reports: {exc}") from exc


def read_report(day: str | None) -> bytes:
    lake = _lake()
    path = lake.report_path(day)
    try:
        data: bytes = lake.fs.cat_file(path)
    except FileNotFoundError:
        what = "the latest report" if day is None else f"a report for {day}"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"No {what} in the lake ({lake.url(path)}): the report task writes it."
        ) from None
    except Exception as exc:  # the lake's storage failed: say which object, not a bare 500
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Could not read {lake.url(path)}: {exc}") from exc
    return data


def report_response(data: bytes) -> HTMLResponse:
    return HTMLResponse(data, headers={**NO_STORE, "Content-Security-Policy": REPORT_POLICY})


def index_page(prefix: str, dates: list[str], asked_for: str | None) -> str:
    dag_id = html.escape(_dag_id())
    note = ""
    if asked_for and asked_for != _dag_id():
        note = f"<p class=note>These are the trends of <b>{dag_id}</b>; {html.escape(asked_for)} has none.</p>"
    links = "".join(f'<a href="{prefix}/dt/{d}/" target="report">{d}</a> ' for d in dates)
    if dates:
        body = f'<iframe name="report" src="{prefix}/latest/" title="Trends report"></iframe>'
    else:
        body = "<p>No report yet: every run's report task writes one; the first appears after a run.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Trends: {dag_id}</title>
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; display: flex; flex-direction: column; height: 100vh; }}
nav {{ padding: 6px 10px; border-bottom: 1px solid #ccc; font-size: 14px; }}
nav a {{ margin-right: 8px; }} .note {{ margin: 6px 10px; }}
iframe {{ flex: 1; border: 0; width: 100%; }}
</style></head>
<body><nav>Trends of <b>{dag_id}</b>: <a href="{prefix}/latest/" target="report">latest</a> {links}</nav>{note}
{body}
</body></html>"""


def create_app() -> FastAPI:
    _import_the_package()
    app = FastAPI(title="Spotify playlist trends", dependencies=[Depends(reader)], docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, dag_id: str | None = None) -> HTMLResponse:
        prefix = request.scope.get("root_path", "").rstrip("/")
        page = index_page(prefix, reported_dates(_lake()), dag_id)
        return HTMLResponse(page, headers={**NO_STORE, "Content-Security-Policy": INDEX_POLICY})

    @app.get("/dates")
    def dates() -> JSONResponse:
        return JSONResponse({"dag_id": _dag_id(), "dates": reported_dates(_lake())}, headers=NO_STORE)

    @app.get("/latest/", response_class=HTMLResponse)
    def latest() -> HTMLResponse:
        return report_response(read_report(None))

    @app.get("/dt/{day}/", response_class=HTMLResponse)
    def of_date(day: str) -> HTMLResponse:
        from spotify_etl.dates import check_date

        try:
            check_date(day)
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        return report_response(read_report(day))

    return app
