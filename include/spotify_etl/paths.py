"""Where the project's own files are: the SQL, the sample data and the user's playlist list.

Plain constants, no environment reads: the transform, extract and quality find their files
here without importing the settings. On MWAA ``include/`` is the DAGs folder (the package's
parent), so every path is relative to this file.
"""

from __future__ import annotations

from pathlib import Path

INCLUDE_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = INCLUDE_DIR.parent
SQL_DIR = INCLUDE_DIR / "sql"
SAMPLE_DATA_DIR = INCLUDE_DIR / "sample_data"
PLAYLISTS_CONFIG = INCLUDE_DIR / "config" / "playlists.toml"
