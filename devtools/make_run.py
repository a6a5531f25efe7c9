"""``make run``: run the DAG once for today with ``airflow dags test`` and print a summary."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from spotify_etl import history, quality
from spotify_etl.airflow import DAG_ID
from spotify_etl.settings import Settings
from spotify_etl.targets import target
from spotify_etl.warehouse import local


def main() -> int:
    settings = Settings.from_env()
    if not target(settings).on_this_machine:
        print("make run uses the embedded default; unset SPOTIFY_ETL_TARGET (aws runs go through Airflow)")
        return 2
    day = dt.datetime.now(dt.UTC).date().isoformat()
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow"))
    log_file = home / "logs" / f"make-run-{day}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    airflow = shutil.which("airflow") or str(Path(sys.executable).parent / "airflow")
    print(f"Running {DAG_ID} for {day} (airflow dags test; full log: {log_file}) ...", flush=True)
    with log_file.open("w") as out:
        proc = subprocess.run(  # noqa: S603 - fixed argv: the venv's airflow and a computed date
            [airflow, "dags", "test", DAG_ID, day], stdout=out, stderr=subprocess.STDOUT, check=False
        )
    output = log_file.read_text(errors="replace")
    succeeded = proc.returncode == 0 and "state=success" in output
    if "USING EMBEDDED SAMPLE DATA" in output:
        print("Source: embedded sample data (include/sample_data), not the Spotify Web API")
    if not succeeded:
        failed = [line for line in output.splitlines() if "[error" in line or "Failed" in line or "failed" in line]
        print("\n".join(failed[-20:]) or output[-3000:])
        print(f"\nFAILED: the DAG run did not succeed (exit {proc.returncode}); see {log_file}")
        return 1
    print_summary(settings, day)
    return 0


def print_summary(settings: Settings, day: str) -> None:
    db, name, prefix = settings.duckdb_path, settings.database, settings.table_prefix
    counts = local.row_counts(db, day, name, prefix)
    results = local.run_validation(db, day, name, prefix)
    width = max(len(t) for t in counts)
    print(f"\nRun for dt={day} succeeded.\n\nRows per table (dt={day}):")
    for table, rows in counts.items():
        print(f"  {table:<{width}}  {rows:>8}")
    print("\nValidation checks:")
    for r in results:
        print(f"  {r.describe()}")
    quality.judge(results, day)
    print(f"\nLake:            {settings.lake_dir}")
    print(f"DuckDB catalog:  {db}  (schema {name!r})")
    print(f"History views:   {', '.join(f'{name}.{prefix}{view}' for view in history.VIEWS)}  (docs/tables.md)")
    page = target(settings).open_lake().report_path(day)
    print(f"Trends report:   {page}  (open it in a browser, offline; docs/report.md)")
    print("\nTry a query:")
    query = (  # printed for the user to copy, never executed here
        f'  .venv/bin/spotify-etl query "SELECT a.name AS artist, count(*) AS songs FROM {name}.{prefix}songs s '  # noqa: S608 - printed, never executed
        f"JOIN {name}.{prefix}artists a USING (artist_id, dt) WHERE s.dt = '{day}' "
        'GROUP BY 1 ORDER BY 2 DESC LIMIT 10"'
    )
    print(query)
    print("\nAnd one over the history, the longest-staying songs (each date run adds to it):")
    print(f'  .venv/bin/spotify-etl query "{history_query(name, prefix)}"')


def history_query(database: str, table_prefix: str) -> str:
    """The history query the summary prints: the songs that stayed longest, still there or not."""
    return (
        "SELECT p.name AS playlist, s.name AS song, h.valid_from, h.valid_to, h.dates_present "  # noqa: S608 - printed, never executed
        f"FROM {database}.{table_prefix}playlist_song_spans h "
        f"JOIN {database}.{table_prefix}songs s ON s.song_id = h.song_id AND s.dt = h.valid_from "
        f"LEFT JOIN {database}.{table_prefix}playlists p ON p.playlist_id = h.playlist_id AND p.dt = h.valid_from "
        "ORDER BY h.dates_present DESC, playlist, song LIMIT 10"
    )


if __name__ == "__main__":
    sys.exit(main())
