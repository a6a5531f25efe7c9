"""S3's 409 ConditionalRequestConflict to an ``If-None-Match: *`` PUT: the create lost to a concurrent one.

AWS's PutObject reference: "If a conflicting operation occurs during the upload S3 returns a 409
ConditionalRequestConflict response." moto does not answer it, so a 127.0.0.1 server answers every
PUT that way, with AWS's error document.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import unquote

import pytest
from spotify_etl.lake import LakeError, S3Lake

CONFLICT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ConditionalRequestConflict</Code>'
    b"<Message>A conflicting operation occurred. If using PutObject you can retry the request.</Message>"
    b"<RequestId>UNIT</RequestId><HostId>unit</HostId></Error>"
)
DENIED = CONFLICT.replace(b"ConditionalRequestConflict", b"AccessDenied").replace(
    b"A conflicting operation occurred. If using PutObject you can retry the request.", b"Access Denied"
)


class Conflicting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" before it sends the body
    puts: ClassVar[list[tuple[str, str | None]]] = []

    def do_PUT(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).puts.append((unquote(self.path), self.headers.get("If-None-Match")))
        status, body = (409, CONFLICT) if "lock" in self.path else (403, DENIED)
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # http.server's signature
        pass


@pytest.fixture
def lake() -> Iterator[S3Lake]:
    import s3fs

    server = ThreadingHTTPServer(("127.0.0.1", 0), Conflicting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Conflicting.puts = []
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    credentials = {"key": "unit", "secret": "unit"}  # pragma: allowlist secret
    fs = s3fs.S3FileSystem(**credentials, client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
                           config_kwargs={"retries": {"max_attempts": 1}}, skip_instance_cache=True)  # fmt: skip
    try:
        yield S3Lake(fs, "bucket", "lake")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_409_conditional_conflict_is_a_lost_create_and_another_refusal_an_error(lake: S3Lake) -> None:
    assert lake.create_exclusive(f"{lake.root}/_publish/dt=2026-11-25/lock", b"{}") is False
    assert Conflicting.puts[0] == ("/bucket/lake/_publish/dt=2026-11-25/lock", "*")
    with pytest.raises(LakeError, match=r"could not write bucket 'bucket', key 'lake/other'.*Access Denied"):
        lake.create_exclusive(f"{lake.root}/other", b"{}")
