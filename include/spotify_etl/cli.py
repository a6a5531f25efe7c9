"""The ``spotify-etl`` command: the pipeline's stages without Airflow.

``extract`` and ``validate`` call :mod:`spotify_etl.pipeline` as the DAG's tasks do;
``transform`` takes any folder of raw documents, not only a lake's date partition.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from spotify_etl import quality
from spotify_etl.dates import check_date
from spotify_etl.lake import LocalLake, raw_playlist_id
from spotify_etl.settings import Settings
from spotify_etl.targets import LocalTarget

log = logging.getLogger("spotify_etl")


def _raw_files(raw: Path, day: str) -> list[str]:
    """``raw`` is a lake root (raw/playlists/dt=<day>/ below it) or a folder of raw documents."""
    lake = LocalLake(raw)
    if Path(lake.raw_dir(day)).is_dir():
        return lake.raw_files(day)
    return sorted(str(p) for p in raw.glob("playlist_id=*.json") if raw_playlist_id(p.name))


def cmd_extract(args: argparse.Namespace) -> int:
    from spotify_etl.extract import SampleSource, extract_playlist
    from spotify_etl.ids import parse_playlist_ids

    source = SampleSource()
    lake = LocalLake(args.lake)
    extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for playlist_id in parse_playlist_ids(args.playlist or source.available()):
        print(json.dumps(extract_playlist(source, lake, playlist_id, args.date, extracted_at).as_dict()))
    return 0


def cmd_transform(args: argparse.Namespace) -> int:
    from spotify_etl.transform import transform

    files = _raw_files(args.raw, args.date)
    settings = Settings.from_env()  # DuckDB's memory limit and threads, as in the DAG
    result = transform(files, LocalLake(args.out), args.date, memory_limit=settings.duckdb_memory_limit,
                       threads=settings.duckdb_threads)  # fmt: skip
    print(json.dumps(result.as_dict(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    db = args.db or args.lake / "catalog.duckdb"
    local = LocalTarget(
        Settings(target="local", lake_dir=args.lake, duckdb_path=db, database=args.database,
                 table_prefix=args.table_prefix)
    )  # fmt: skip
    local.catalog(local.open_lake())
    try:
        quality.report_and_judge(local.check_results(args.date), args.date, report=print)
    except quality.ValidationFailed as exc:
        print(f"validation failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    with duckdb.connect(str(args.db), read_only=True) as con:
        relation = con.sql(args.sql)
        if relation is not None:
            relation.show(max_rows=args.max_rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="spotify-etl", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="land raw documents from the embedded sample data")
    p.add_argument("--lake", type=Path, default=settings.lake_dir)
    p.add_argument("--date", type=check_date, required=True)
    p.add_argument("--playlist", action="append", help="id/URI/URL; repeatable (default: every sample playlist)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("transform", help="raw documents of a date -> Parquet tables")
    p.add_argument("--raw", type=Path, required=True, help="lake root or folder of playlist_id=*.json documents")
    p.add_argument("--out", type=Path, required=True, help="lake root to write processed/<table>/dt=<date>/ into")
    p.add_argument("--date", type=check_date, required=True)
    p.set_defaults(func=cmd_transform)

    p = sub.add_parser("validate", help="catalog the tables in DuckDB and run include/sql/validate.sql")
    p.add_argument("--lake", type=Path, default=settings.lake_dir)
    p.add_argument("--db", type=Path, default=None, help="DuckDB catalog (default: <lake>/catalog.duckdb)")
    p.add_argument("--date", type=check_date, required=True)
    p.add_argument("--database", default=settings.database)
    p.add_argument("--table-prefix", default=settings.table_prefix)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("query", help="run SQL against the DuckDB catalog and print the result")
    p.add_argument("sql")
    p.add_argument("--db", type=Path, default=settings.duckdb_path)
    p.add_argument("--max-rows", type=int, default=40)
    p.set_defaults(func=cmd_query)

    try:
        from spotify_etl.spotify.auth_command import add_auth_command
    except ImportError:  # the live Spotify client is optional for the offline commands
        pass
    else:
        add_auth_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except Exception as exc:
        if args.verbose:
            raise
        print(f"spotify-etl {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
