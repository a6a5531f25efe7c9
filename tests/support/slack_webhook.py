"""A Slack incoming webhook on 127.0.0.1 that answers as Slack does, and the Airflow connection to it.

Slack's documented answers (api.slack.com changelog 2016-05-17, "errors for incoming webhooks"):
200 ``ok`` for a message; 400 ``invalid_payload`` for a body that is not a JSON object with text;
404 ``no_service`` for an unknown webhook path (a revoked or mistyped token); 404
``channel_not_found`` and 410 ``channel_is_archived`` for a channel gone, or any other status
such as a 500 of Slack's own (:meth:`break_channel`).
The ``SlackWebhookHook`` builds the URL as ``<host>/<password>`` (host with its scheme).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "T0000ALERT/B0000ALERT/alertsWebhookToken0001"  # pragma: allowlist secret


class SlackWebhook:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.messages: list[str] = []
        self.refusal: tuple[int, str] | None = None
        self.refused = 0  # messages answered with the refusal
        server.expect_request(f"/{TOKEN}", method="POST").respond_with_handler(self._answer)
        server.no_handler_status_code = 404  # any other path: no such webhook

    def _answer(self, request: Request) -> Response:
        if self.refusal:
            self.refused += 1
            return Response(self.refusal[1], status=self.refusal[0], content_type="text/plain")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not str(body.get("text") or "").strip():
            return Response("invalid_payload", status=400, content_type="text/plain")
        self.messages.append(body["text"])
        return Response("ok", status=200, content_type="text/plain")

    def break_channel(self, status: int = 404, error: str = "channel_not_found") -> None:
        self.refusal = (status, error)

    def connection(self, token: str = TOKEN) -> dict[str, Any]:
        """The ``slackwebhook`` connection (``AIRFLOW_CONN_<ID>`` JSON form) pointing here."""
        return {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{self.server.port}", "password": token}

    def wait_for(self, text: str, timeout: float) -> list[str]:
        """The messages received once one holds ``text``; fails naming what came after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not any(text in m for m in self.messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"no webhook message with {text!r} within {timeout:.0f}s; got {self.messages}")
            time.sleep(0.5)
        return list(self.messages)


@contextmanager
def slack_webhook() -> Iterator[SlackWebhook]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield SlackWebhook(server)
    finally:
        server.clear()
        server.stop()
