"""Lineage of the TaskFlow tasks, reported to Airflow's hook lineage collector.

The OpenLineage provider cannot infer what a Python task reads or writes. Each task here
reports the objects it really read and wrote, as URIs (``file:///<path>`` locally,
``s3://<bucket>/<key>`` on AWS), to the collector hooks report to; the provider reads the
collector when the task ends and turns each URI into an OpenLineage dataset following its
naming conventions (namespace ``file`` or ``s3://<bucket>``, name the path or key), through
the converters of the common.io and Amazon providers.

Without OpenLineage (no transport configured, or ``[openlineage] disabled``) no plugin reads
hook lineage, and nothing is reported: Airflow's collector would be a no-op whose set-up alone
imports every provider's asset handlers, boto3 among them (about a second of CPU per task,
profiled with py-spy in bench-day's runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spotify_etl.lake import Lake
from spotify_etl.tables import TABLE_NAMES


def report(context: Any, inputs: Iterable[str] = (), outputs: Iterable[str] = ()) -> None:
    """Add ``inputs`` and ``outputs`` (URIs) to the collector; ``context`` is what read or wrote
    them (the collector keeps one entry per URI and context)."""
    from airflow.sdk import plugins_manager
    from airflow.sdk.lineage import get_hook_lineage_collector

    if not plugins_manager.get_hook_lineage_readers_plugins():  # Airflow's own test for a no-op collector
        return
    collector = get_hook_lineage_collector()
    for uri in inputs:
        collector.add_input_asset(context=context, uri=uri)
    for uri in outputs:
        collector.add_output_asset(context=context, uri=uri)


def partitions(lake: Lake, day: str) -> list[str]:
    """The date's partition of each of the six tables, as URIs."""
    return [lake.url(lake.partition_dir(table, day)) for table in TABLE_NAMES]


def raw_documents(lake: Lake, day: str, playlists: Iterable[str]) -> list[str]:
    """The raw documents of ``playlists`` for ``day``, as URIs."""
    return [lake.url(lake.raw_path(day, playlist)) for playlist in playlists]
