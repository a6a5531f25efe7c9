"""Catalog and query engines: ``local`` (DuckDB) and ``aws`` (Glue + Athena)."""
