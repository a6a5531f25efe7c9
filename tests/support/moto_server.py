"""A moto server on 127.0.0.1 as the AWS endpoint, and the Airflow connection that points to it.

moto emulates the AWS APIs but does not crawl or run SQL. Where the pipeline needs what
AWS would have produced, tests seed it through moto's own API (``/moto-api/...``), never
by changing production code: see :meth:`MotoAws.seed_athena_results` and
:meth:`MotoAws.set_transition`. Where moto answers differently from AWS in a way the
pipeline depends on, :func:`glue_like_aws`, :func:`athena_like_aws` and :func:`sns_like_aws`
make it answer as AWS does.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import requests

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
ACCESS_KEY, SECRET_KEY = "testing", "testing"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class MotoAws:
    endpoint: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def connection(self, endpoint: str | None = None) -> dict[str, Any]:
        """An Airflow ``aws`` connection (JSON form) with fake credentials and the endpoint."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": endpoint or self.endpoint, "region_name": REGION},
        }

    def airflow_env(self, conn_id: str = "aws_default", endpoint: str | None = None) -> dict[str, str]:
        """Environment for an Airflow process: the connection, and no credentials from the machine."""
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection(endpoint)),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def s3fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            endpoint_url=self.endpoint,
            client_kwargs={"region_name": REGION},
            skip_instance_cache=True,
        )

    def _post(self, path: str, body: dict[str, Any]) -> None:
        response = requests.post(f"{self.endpoint}{path}", json=body, timeout=10)
        assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text[:300]}"

    def reset(self) -> None:
        self._post("/moto-api/reset", {})

    def seed_athena_results(self, rows: Sequence[Sequence[object]], columns: Sequence[str]) -> None:
        """Queue the result the next Athena query returns, shaped as Athena returns it (header row
        first, a NULL as a cell with no value)."""
        result_rows = [
            {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in row]} for row in [columns, *rows]
        ]
        column_info = [{"Name": c, "Label": c, "Type": "varchar"} for c in columns]
        self._post(
            "/moto-api/static/athena/query-results",
            {
                "account_id": ACCOUNT_ID,
                "region": REGION,
                "results": [{"rows": result_rows, "column_info": column_info}],
            },
        )

    def seed_athena_run(
        self, checks: Sequence[Sequence[object]], columns: Sequence[str], report: Mapping[str, Any] | None = None
    ) -> None:
        """Queue what one DAG run's Athena queries return, in the order it starts them (moto hands a
        queued result to each query as it starts): the history views' DDL (no rows), the checks, then
        for a run that reaches its report, each report query's rows (``report``: query -> rows)."""
        from spotify_etl.history import VIEWS
        from spotify_etl.report import QUERIES

        for _ in VIEWS:
            self.seed_athena_results([], [])
        self.seed_athena_results(checks, columns)
        for query in QUERIES if report is not None else ():
            names = [c for c, _ in query.columns]
            self.seed_athena_results([[r[c] for c in names] for r in report[query.name]], names)

    def set_transition(self, model_name: str, transition: dict[str, Any]) -> None:
        """How fast a moto resource moves through its states (e.g. a Glue crawl: RUNNING -> COMPLETED)."""
        self._post("/moto-api/state-manager/set-transition", {"model_name": model_name, "transition": transition})


@contextmanager
def glue_like_aws() -> Iterator[None]:
    """moto's Glue crawler as AWS answers, for moto in this process (``mock_aws`` or the threaded server).

    * GetCrawler: AWS reports the crawler's ``Role`` as the role's name with its path
      (``service-role/x``), whatever ARN CreateCrawler was given; moto echoes the ARN.
    * DeleteCrawler: AWS refuses a RUNNING crawler (CrawlerRunningException); moto deletes it.
    * UpdateCrawler: moto has none (moto 5.2.5), so any call fails; the pipeline makes none.
    """
    from moto.glue.exceptions import CrawlerRunningException
    from moto.glue.models import FakeCrawler, GlueBackend

    as_dict, delete = FakeCrawler.as_dict, GlueBackend.delete_crawler

    def described(crawler: FakeCrawler) -> dict[str, Any]:
        data = as_dict(crawler)
        if isinstance(data.get("Role"), str) and data["Role"].startswith("arn:"):
            data["Role"] = data["Role"].split(":role/", 1)[1]
        return data

    def delete_unless_running(backend: GlueBackend, name: str) -> None:
        if name in backend.crawlers and backend.crawlers[name].status == "RUNNING":
            raise CrawlerRunningException(f"Crawler with name {name} is running")
        delete(backend, name)

    with mock.patch.object(FakeCrawler, "as_dict", described), \
            mock.patch.object(GlueBackend, "delete_crawler", delete_unless_running):  # fmt: skip
        yield


@contextmanager
def athena_like_aws() -> Iterator[None]:
    """Athena's GetTableMetadata, which moto (5.2.5) lacks: its 500 made botocore retry until the
    OpenLineage provider's time for the AthenaOperator's event ran out. AWS answers from the Glue
    Data Catalog: the table's columns, partition keys, type and parameters, among them its
    ``location``; a database or table the catalog does not have is a ``MetadataException``
    (HTTP 400) naming Glue's ``EntityNotFoundException``.
    """
    from moto.athena.responses import AthenaResponse
    from moto.core.exceptions import JsonRESTError
    from moto.glue.exceptions import EntityNotFoundException
    from moto.glue.models import glue_backends

    def get_table_metadata(self: AthenaResponse) -> str:
        glue = glue_backends[self.current_account][self.region]
        try:
            table = glue.get_table(self._get_param("DatabaseName"), self._get_param("TableName")).as_dict()
        except EntityNotFoundException:
            raise JsonRESTError(
                "MetadataException",
                "Entity Not Found (Service: AmazonDataCatalog; Status Code: 400; Error Code: EntityNotFoundException)",
            ) from None
        storage = table.get("StorageDescriptor", {})
        metadata = {
            "Name": table["Name"],
            "CreateTime": table["CreateTime"].timestamp(),
            "TableType": table.get("TableType", "EXTERNAL_TABLE"),
            "Columns": storage.get("Columns", []),
            "PartitionKeys": table.get("PartitionKeys", []),
            "Parameters": {**table.get("Parameters", {}), "location": storage.get("Location", "")},
        }
        return json.dumps({"TableMetadata": metadata})

    with mock.patch.object(AthenaResponse, "get_table_metadata", get_table_metadata, create=True):
        yield


@contextmanager
def sns_like_aws() -> Iterator[None]:
    """SNS Publish's Subject as AWS documents it (API reference, Publish: "UTF-8 text with no line
    breaks or control characters, and less than 100 characters long"): AWS answers anything else
    with InvalidParameter, "Invalid parameter: Subject". moto (5.2.5) refuses only 101 and more,
    after a report that AWS accepts exactly 100 (getmoto/moto#1503); the documented limit is the
    contract the alerts keep.
    """
    from moto.sns.models import SNSBackend

    publish = SNSBackend.publish

    def publish_checking_subject(self: SNSBackend, message: str, *args: Any, **kwargs: Any) -> str:
        subject = kwargs.get("subject")
        if subject is not None and (len(subject) >= 100 or any(ord(c) < 32 or ord(c) == 127 for c in subject)):
            raise ValueError("Invalid parameter: Subject")  # moto's Publish answers it as InvalidParameter
        return publish(self, message, *args, **kwargs)

    with mock.patch.object(SNSBackend, "publish", publish_checking_subject):
        yield


@contextmanager
def moto_server() -> Iterator[MotoAws]:
    """A ThreadedMotoServer on 127.0.0.1 and a free port, answering Glue, Athena and SNS as AWS does; stopped on exit."""
    with glue_like_aws(), athena_like_aws(), sns_like_aws(), _threaded_server() as server:
        yield server


@contextmanager
def _threaded_server() -> Iterator[MotoAws]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    # start() waits without a limit for a server that may never bind; bound it.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(timeout=30)
    if starter.is_alive():
        raise RuntimeError("moto server did not start within 30 s")
    host, port = server.get_host_and_port()
    try:
        yield MotoAws(f"http://{host}:{port}")
    finally:
        server.stop()
