"""The Trends view on the ``aws`` target: a real ``airflow api-server`` reads the reports from S3.

The api-server alone (no scheduler: nothing runs) on a copy of the migrated metadata DB, with
the pipeline's aws settings and the AWS connection pointing at a moto server; the reports are
put into the lake's bucket here, as the report task will. What the plugin's app does with the
lake is then what it does on MWAA: the settings' bucket and prefix, S3 through the Amazon
provider's filesystem for ``aws_default``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.airflow_run import VENV_BIN, airflow_env
from tests.support.moto_server import MotoAws, free_port, moto_server

pytestmark = pytest.mark.timeout(600)

BUCKET, PREFIX = "trends-lake", "spotify-etl"
DAY = "2026-12-01"
START_TIMEOUT = 240  # seconds for the api-server to answer, on a busy 2-core machine


@dataclass
class ApiServer:
    url: str
    password: str
    aws: MotoAws


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow api-server exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/api/v2/version", timeout=5).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"airflow api-server did not answer within {START_TIMEOUT}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, airflow_template_db: Path) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("trends-api-server")
    shutil.copyfile(airflow_template_db, home / "airflow.db")
    password, port = secrets.token_urlsafe(12), free_port()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    passwords.chmod(0o600)
    url = f"http://127.0.0.1:{port}"
    with moto_server() as aws:
        aws.client("s3").create_bucket(Bucket=BUCKET)
        env = airflow_env(
            home,
            **aws.airflow_env(),
            SPOTIFY_ETL_TARGET="aws",
            SPOTIFY_ETL_S3_BUCKET=BUCKET,
            SPOTIFY_ETL_S3_PREFIX=PREFIX,
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            AIRFLOW__API__BASE_URL=url,
            AIRFLOW__API__WORKERS="1",
        )
        log = home / "api-server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(VENV_BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home, start_new_session=True,
            )  # fmt: skip
        try:
            wait_until_up(url, proc, log)
            yield ApiServer(url, password, aws)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # the session this test started: the server and its worker
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def login(server: ApiServer) -> dict[str, str]:
    response = httpx.post(
        f"{server.url}/auth/token", json={"username": "admin", "password": server.password}, timeout=60
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def put_report(aws: MotoAws, folder: str, body: bytes) -> None:
    aws.client("s3").put_object(Bucket=BUCKET, Key=f"{PREFIX}/reports/{folder}/index.html", Body=body)


def test_a_logged_in_user_reads_the_reports_from_s3(api_server: ApiServer) -> None:
    latest, dated = b"<html><body>latest from S3</body></html>", f"<html><body>{DAY} from S3</body></html>".encode()
    put_report(api_server.aws, "latest", latest)
    put_report(api_server.aws, f"dt={DAY}", dated)
    base, auth = f"{api_server.url}/spotify-trends", login(api_server)

    assert httpx.get(f"{base}/latest/", timeout=60).status_code == 401
    assert httpx.get(f"{base}/dates", headers=auth, timeout=60).json()["dates"] == [DAY]
    page = httpx.get(f"{base}/latest/", headers=auth, timeout=60)
    assert page.status_code == 200 and page.content == latest
    page = httpx.get(f"{base}/dt/{DAY}/", headers=auth, timeout=60)
    assert page.status_code == 200 and page.content == dated

    missing = httpx.get(f"{base}/dt/2026-11-30/", headers=auth, timeout=60)
    assert missing.status_code == 404
    assert f"s3://{BUCKET}/{PREFIX}/reports/dt=2026-11-30/index.html" in missing.json()["detail"]
