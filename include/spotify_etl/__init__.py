"""Spotify playlist ETL: the library behind the Airflow DAG and the ``spotify-etl`` command.

The core library never imports Airflow; every stage runs and is tested without a
scheduler. The Airflow layer, :mod:`spotify_etl.airflow`, holds the DAG's task bodies and
each target's task group.
"""

__version__ = "0.1.0"
