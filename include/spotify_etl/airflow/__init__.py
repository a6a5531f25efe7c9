"""The Airflow layer: the DAG's task bodies and each target's catalog/validate task group.

The only part of ``spotify_etl`` that imports Airflow; the core library never imports it.
Modules here use absolute imports (``from airflow.sdk import ...``), so this subpackage
never stands in for the real ``airflow``.

* :mod:`.tasks`: what the DAG's TaskFlow tasks run (connections, context, task outcomes).
* :mod:`.targets`: ``{target: catalog_and_validate}``, one builder per target:
  :mod:`.local_target` (DuckDB) and :mod:`.aws_target` (Glue + Athena).
"""

DAG_ID = "spotify_playlist_etl"  # the DAG file's dag_id; devtools and tests name the DAG by it
