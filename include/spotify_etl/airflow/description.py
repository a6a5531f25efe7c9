"""The DAG's description, as the DAG file gives it to Airflow."""

from __future__ import annotations

import hashlib
from dataclasses import astuple

from spotify_etl.settings import Settings
from spotify_etl.targets import target


def dag_description(settings: Settings) -> str:
    """The DAG's description: where it writes, and a digest of every setting it was parsed with.

    A serialized DAG carries parse-time settings (target, asset URIs, retries); the digest
    lets ``make up`` wait for the version parsed with the current ones.
    """
    digest = hashlib.sha256(repr(astuple(settings)).encode()).hexdigest()[:12]
    # lake_url raises a clear error for a missing required setting (aws: the bucket).
    return f"Daily Spotify playlist ETL: {settings.target} target, lake {target(settings).lake_url} (settings {digest})"
