"""The trends report: one self-contained HTML page per run's date, from the catalog's views.

Every number on the page is a row of one of the report's queries (``include/sql/report/<query>.sql``,
one text for DuckDB and Athena, run by the target: :meth:`LocalTarget.report_data`,
:meth:`AwsTarget.report_data`). The page shows each query's rows as a chart (Vega-Altair, rendered
to inline SVG by vl-convert: no script, no network) and as a table, and embeds them as JSON
(``<script type="application/json" id="report-data">``) so a test compares the page with the queries.

Written to the lake at :meth:`Lake.report_path` (``reports/dt=<date>/index.html``, and
``reports/latest/index.html`` unless a newer date has a report), each object replaced atomically.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spotify_etl import quality, runlog, tables
from spotify_etl.dates import check_date
from spotify_etl.errors import PipelineError
from spotify_etl.transform import REASONS

if TYPE_CHECKING:
    from spotify_etl.lake import Lake

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
# A column's kind: how a value of any engine becomes the page's (Athena answers with strings).
KINDS: dict[str, Callable[[Any], Any]] = {"str": str, "int": int, "float": float}
RUN_COUNTS = (
    "spotify_requests",
    "playlists_landed",
    "playlists_unchanged",
    "playlists_failed",
    *(runlog.ROWS_PREFIX + t for t in tables.TABLE_NAMES),
    *(runlog.REJECTED_PREFIX + r for r in REASONS),
)


@dataclass(frozen=True)
class Query:
    """One report query: ``include/sql/report/<name>.sql`` and its result's columns (name, kind)."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def template(self) -> str:
        return f"report/{self.name}.sql"

    def sql(self, day: str, database: str, table_prefix: str = "") -> str:
        return quality.render_sql(self.template, database, table_prefix, dt=check_date(day), counts=RUN_COUNTS)

    def rows(self, names: Sequence[str], values: Iterable[Sequence[Any]]) -> Rows:
        """The result as dicts of typed values, its column names checked (a NULL stays None)."""
        wanted = [c for c, _ in self.columns]
        if list(names) != wanted:
            raise ReportError(f"query {self.template} returned columns {list(names)}, not {wanted}")
        kinds = [KINDS[k] for _, k in self.columns]
        return [
            {c: None if v is None else kind(v) for (c, _), kind, v in zip(self.columns, kinds, row, strict=True)}
            for row in values
        ]


_PLAYLIST_DAY = (("dt", "str"), ("playlist_id", "str"), ("playlist", "str"))
_RUN_TIMES = (("dt", "str"), ("run_id", "str"), ("run_seconds", "int"), ("transform_seconds", "float"))
QUERIES = (
    Query("changes", (*_PLAYLIST_DAY, ("added", "int"), ("removed", "int"))),
    Query("sizes", (*_PLAYLIST_DAY, ("songs", "int"))),
    Query("top_artists", (("artist_id", "str"), ("artist", "str"), ("songs", "int"))),
    Query("artist_trend", (("dt", "str"), ("artist_id", "str"), ("artist", "str"), ("songs", "int"))),
    Query("song_stays", (("dates_present", "int"), ("status", "str"), ("stays", "int"))),
    Query("runs", (*_RUN_TIMES, *((c, "int") for c in RUN_COUNTS))),
)


class ReportError(PipelineError, RuntimeError):
    """The report could not be made; the tables and their validation stand (a retry may make it)."""


def landed_dates(data: Mapping[str, Rows]) -> list[str]:
    return sorted({r["dt"] for r in data["sizes"]})


# ---- the charts ------------------------------------------------------------
def _svg(chart: Any) -> str:
    import vl_convert

    svg: str = vl_convert.vegalite_to_svg(chart.to_dict(), vl_version="6.4")
    return svg


def _long(rows: Rows, keys: Sequence[str], columns: Sequence[str], name: str, value: str) -> Rows:
    """``rows`` with each of ``columns`` as its own row (``name``: the column, ``value``: its value)."""
    return [{**{k: r[k] for k in keys}, name: c, value: r[c]} for r in rows for c in columns]


def charts(data: Mapping[str, Rows]) -> dict[str, str]:
    """Panel -> its chart as SVG, for the panels with rows."""
    import altair as alt

    def chart(rows: Rows) -> Any:
        return alt.Chart(alt.Data(values=rows))

    date = alt.X("dt:O", title="date")

    def songs_over_dates(rows: Rows, line: str) -> Any:  # one line of songs per ``line`` value
        return (
            chart(rows)
            .mark_line(point=True)
            .encode(date, alt.Y("songs:Q"), alt.Color(f"{line}:N"))
            .properties(width=520, height=240)
        )

    def grouped_bars(rows: Rows, x: Any, y: str, group: str, height: int) -> Any:  # a bar per ``group`` at each x
        return (
            chart(rows)
            .mark_bar()
            .encode(x, alt.Y(f"{y}:Q"), alt.Color(f"{group}:N"), alt.XOffset(f"{group}:N"))
            .properties(width=520, height=height)
        )

    out: dict[str, Any] = {}
    if data["changes"]:
        changes = _long(data["changes"], ("dt", "playlist"), ("added", "removed"), "change", "songs")
        out["changes"] = grouped_bars(changes, date, "songs", "change", 120).facet(
            row=alt.Row("playlist:N", title=None)
        )
    if data["sizes"]:
        out["sizes"] = songs_over_dates(data["sizes"], "playlist")
    if data["top_artists"]:
        out["top_artists"] = (
            chart(data["top_artists"])
            .mark_bar()
            .encode(alt.X("songs:Q"), alt.Y("artist:N", sort="-x", title=None))
            .properties(width=420)
        )
    if data["artist_trend"]:
        out["artist_trend"] = songs_over_dates(data["artist_trend"], "artist")
    if data["song_stays"]:
        stays = alt.X("dates_present:O", title="landed dates in the playlist")
        out["song_stays"] = grouped_bars(data["song_stays"], stays, "stays", "status", 200)
    if data["runs"]:
        out["runs"] = _health(data["runs"])
    return {name: _svg(c) for name, c in out.items()}


def _health(runs: Rows) -> Any:
    """The pipeline-health panel: four small charts of the run log's columns over the dates."""
    import altair as alt

    groups = {
        "rows per table": [c for c in RUN_COUNTS if c.startswith(runlog.ROWS_PREFIX)],
        "rejected entries per reason": [c for c in RUN_COUNTS if c.startswith(runlog.REJECTED_PREFIX)],
        "Spotify requests and playlists": ["spotify_requests", "playlists_landed", "playlists_unchanged",
                                           "playlists_failed"],
        "seconds": ["run_seconds", "transform_seconds"],
    }  # fmt: skip
    panels = [
        alt.Chart(alt.Data(values=_long(runs, ("dt",), columns, "measure", "value")))
        .mark_line(point=True)
        .encode(alt.X("dt:O", title="date"), alt.Y("value:Q", title=title), alt.Color("measure:N"))
        .properties(width=260, height=160, title=title)
        for title, columns in groups.items()
    ]
    return alt.vconcat(alt.hconcat(*panels[:2]), alt.hconcat(*panels[2:]))


# ---- the page --------------------------------------------------------------
# Which playlists the per-playlist panels show (include/sql/report/common.sql, "charted").
CHARTED = "the 10 playlists with the most songs added and removed over these dates"
PANELS = {  # query -> (title, what it shows)
    "changes": ("Songs added and removed", f"per playlist and landed date, the last 30 landed dates; {CHARTED}"),
    "sizes": ("Playlist sizes", f"distinct songs per playlist and landed date; {CHARTED}"),
    "top_artists": ("Top artists of the date", "distinct songs on the date's playlists"),
    "artist_trend": ("Top artists' trend", "their distinct songs on the playlists per landed date"),
    "song_stays": ("How long songs stay", "stays by landed dates in the playlist (playlist_song_spans)"),
    "runs": ("Pipeline health", "the newest run of each date (pipeline_runs)"),
}
FIRST_DATE_NOTE = (
    "This is the first landed date: there is nothing to compare it with yet. From the second landed "
    "date on, this page shows the songs added and removed per playlist, the sizes and the artists over "
    "time, and how long songs stay."
)


def _table(rows: Rows) -> str:
    if not rows:
        return "<p class=empty>No rows.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _embedded_json(data: Mapping[str, Rows]) -> str:
    # "<" escaped, so no playlist or artist name can close the script element.
    return json.dumps(data, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")


def render(day: str, data: Mapping[str, Rows], database: str) -> str:
    """The report page for ``day`` from the queries' rows (``data``: query name -> rows)."""
    check_date(day)
    missing = [q.name for q in QUERIES if q.name not in data]
    if missing:
        raise ReportError(f"the report has no rows for {', '.join(missing)}")
    svgs = charts(data)
    first = len(landed_dates(data)) < 2
    sections = []
    for name, (title, what) in PANELS.items():
        chart = svgs.get(name, "<p class=empty>Nothing to show for this date yet.</p>")
        sections.append(
            f'<section id="{name}"><h2>{html.escape(title)}</h2><p class=what>{html.escape(what)}; '
            f"query <code>include/sql/report/{name}.sql</code></p><div class=chart>{chart}</div>"
            f"<details><summary>Data</summary>{_table(data[name])}</details></section>"
        )
    note = f'<p class="note" id="first-date">{html.escape(FIRST_DATE_NOTE)}</p>' if first else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Spotify playlist trends, {day}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px 24px; color: #222; }}
section {{ margin: 24px 0; }} h2 {{ margin-bottom: 4px; }} .what {{ color: #555; margin-top: 0; }}
.note {{ background: #fff6d5; padding: 8px 12px; border-left: 4px solid #e0b400; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #ddd; padding: 2px 6px; }}
.chart svg {{ max-width: 100%; height: auto; }}
</style></head>
<body><h1>Spotify playlist trends, dt={day}</h1>
<p>From the catalog <code>{html.escape(database)}</code>: the tables, the history views and the run log.</p>
{note}
{"".join(sections)}
<script type="application/json" id="report-data">{_embedded_json(data)}</script>
</body></html>
"""


def page_data(page: str) -> dict[str, Rows]:
    """The rows a report page embeds (what tests compare with the queries)."""
    start = page.index('<script type="application/json" id="report-data">')
    text = page[page.index(">", start) + 1 : page.index("</script>", start)]
    data: dict[str, Rows] = json.loads(text)
    return data


def publish(lake: Lake, day: str, page: str) -> str:
    """Write ``page`` as ``day``'s report, and as the latest unless a newer date has one; return its URL."""
    data = page.encode()
    path = lake.report_path(day)
    lake.write_bytes(path, data)
    if all(other <= day for other in lake.report_dates()):
        lake.write_bytes(lake.report_path(None), data)
    return lake.url(path)


def make_report(lake: Lake, day: str, query: Callable[[], Mapping[str, Rows]], database: str) -> str:
    """Run the report's queries (``query``: the target's :meth:`~spotify_etl.targets.Target.report_data`),
    render ``day``'s page and write it to the lake; return its URL. Any failure is a
    :class:`ReportError` naming the report: it writes only under ``reports/``, so the date's tables
    and their validation stand whatever happens here."""
    try:
        url = publish(lake, day, render(day, query(), database))
    except Exception as exc:
        raise ReportError(f"the trends report for dt={day} failed: {type(exc).__name__}: {exc}") from exc
    log.info("dt=%s: trends report written: %s (open it in a browser; the Trends view shows it)", day, url)
    return url
