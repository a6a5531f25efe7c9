-- playlist_changes(dt, playlist_id, song_id, change, previous_dt): for each playlist and each date it
-- was landed on after its first, the songs present on dt and not on previous_dt ('added') and
-- present on previous_dt and not on dt ('removed'); previous_dt is the playlist's latest earlier
-- landed date. Songs count as a set (the landed dates and the songs present: landed_dates.sql).
-- A view over every dt partition, never a copy: a rerun, backfill or reprocessed date shows at once.
--
-- One text for DuckDB (local catalog) and Athena (Trino), as validate.sql: a Jinja template over
-- {{ database }} and {{ table_prefix }}, rendered by spotify_etl.history for DuckDB and by Airflow
-- for Athena. Portable on purpose:
--   * dt stays the partition's string (Glue crawls dt= folders as string; the local views read it as
--     VARCHAR): ISO dates order as strings, and a DATE here would make Trino refuse dt = '2026-...'.
--   * anti-joins as LEFT JOIN ... IS NULL, the form both engines plan well (no correlated subquery).
--   * change is CAST to VARCHAR: Trino types the literals varchar(5) and varchar(7).
CREATE OR REPLACE VIEW "{{ database }}"."{{ table_prefix }}playlist_changes" AS
WITH
{% include 'history/landed_dates.sql' %},
steps AS (
    SELECT dt, playlist_id, LAG(dt) OVER (PARTITION BY playlist_id ORDER BY dt) AS previous_dt FROM landed
)
SELECT s.dt, s.playlist_id, cur.song_id, CAST('added' AS VARCHAR) AS change, s.previous_dt
FROM steps s
JOIN present cur ON cur.playlist_id = s.playlist_id AND cur.dt = s.dt
LEFT JOIN present prev ON prev.playlist_id = s.playlist_id AND prev.dt = s.previous_dt
    AND prev.song_id = cur.song_id
WHERE s.previous_dt IS NOT NULL AND prev.song_id IS NULL
UNION ALL
SELECT s.dt, s.playlist_id, prev.song_id, CAST('removed' AS VARCHAR) AS change, s.previous_dt
FROM steps s
JOIN present prev ON prev.playlist_id = s.playlist_id AND prev.dt = s.previous_dt
LEFT JOIN present cur ON cur.playlist_id = s.playlist_id AND cur.dt = s.dt AND cur.song_id = prev.song_id
WHERE cur.song_id IS NULL
