from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
# The aws target's settings, dummies: nothing may call AWS while the DAG is parsed.
AWS_SETTINGS = {
    "SPOTIFY_ETL_TARGET": "aws",
    "SPOTIFY_ETL_S3_BUCKET": "spotify-lake-parse-test",
    "SPOTIFY_ETL_S3_PREFIX": "data/spotify",
    "SPOTIFY_ETL_DATABASE": "spotify_parse",
    "SPOTIFY_ETL_TABLE_PREFIX": "sp_",
    "SPOTIFY_ETL_CRAWLER_ROLE": "arn:aws:iam::123456789012:role/spotify-etl-crawler",
}


def _dagbag(tmp_path_factory: pytest.TempPathFactory, **env: str):  # type: ignore[no-untyped-def]
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("SPOTIFY_ETL_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return DagBag(dag_folder=str(PROJECT / "dags"))


@pytest.fixture(scope="session")
def dagbag(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One DagBag for every integrity test, parsed from the project's dags folder (the default, local target)."""
    return _dagbag(tmp_path_factory)


@pytest.fixture(scope="session")
def aws_dagbag(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The same DAG file parsed for the aws target (the shape that runs in production)."""
    return _dagbag(tmp_path_factory, **AWS_SETTINGS)
