from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
DAG_FILE = PROJECT / "dags" / "spotify_playlist_etl.py"
# Python code that makes every network call fail, then imports the DAG file as ``mod``; a test
# appends what it prints about ``mod`` and runs it in a fresh interpreter.
PARSE_OFFLINE = f"""
import socket, sys
import airflow.sdk
def refuse(*a, **k):
    raise AssertionError("network I/O at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import importlib.util
spec = importlib.util.spec_from_file_location("dagfile", {str(DAG_FILE)!r})
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
"""
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
