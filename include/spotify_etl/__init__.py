"""Spotify playlist ETL: the library behind the Airflow DAG and the ``spotify-etl`` command.

Nothing in this package imports Airflow at module level except ``airflow_glue``; every
stage runs and is tested without a scheduler.
"""

__version__ = "0.1.0"
