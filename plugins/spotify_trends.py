"""The "Trends" view: the pipeline's trends reports in the Airflow UI (Airflow 3.1+ plugin).

Registers a FastAPI app under :data:`URL_PREFIX` on the api-server and two external views of
it: "Trends" in the navigation (Browse) and a "Trends" tab on the DAG's page. The app serves
the reports the ``report`` task writes into the lake (``reports/latest/index.html`` and
``reports/dt=<date>/index.html``) to logged-in Airflow users only; see spotify_trends_app.py.

Airflow imports every plugin module in every component (scheduler, dag-processor, workers),
so this one imports nothing but Airflow's plugin base: the app is built by the api-server on
the first request it routes here (:class:`LazyApp`). spotify_trends_app.py is left to that
import (plugins/.airflowignore keeps the plugins manager from loading it as a plugin).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/spotify-trends"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class LazyApp:
    """An ASGI app that builds the real one (spotify_trends_app.create_app) when first called."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if self._app is None:
            from spotify_trends_app import create_app  # the plugins folder is on sys.path (Airflow puts it there)

            self._app = create_app()
        await self._app(scope, receive, send)


class SpotifyTrendsPlugin(AirflowPlugin):
    name = "spotify_trends"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Spotify playlist trends"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012 - Airflow's plugin interface: class attributes
        # Browse > Trends: the latest report and every date's.
        {"name": "Trends", "href": f"{URL_PREFIX}/", "destination": "nav", "category": "browse",
         "url_route": "spotify-trends"},
        # A "Trends" tab on every DAG's page (Airflow shows a DAG view on all DAGs); the app
        # says which DAG its reports are of when opened from another one.
        {"name": "Trends", "href": f"{URL_PREFIX}/?dag_id={{DAG_ID}}", "destination": "dag",
         "url_route": "spotify-trends-dag"},
    ]  # fmt: skip
