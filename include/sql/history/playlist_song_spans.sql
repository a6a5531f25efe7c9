-- playlist_song_spans(playlist_id, song_id, valid_from, valid_to, dates_present): a playlist's
-- membership as a type-2 history. One row per continuous stay of a song in a playlist over the
-- playlist's landed dates (a date the playlist was not landed on neither ends nor breaks a stay);
-- valid_to is the stay's last date, null while the song is there on the playlist's latest landed
-- date; a song that leaves and comes back has two rows. dates_present: landed dates in the stay.
-- A view over every dt partition, never a copy: a rerun, backfill or reprocessed date shows at once.
--
-- One text for DuckDB and Athena (Trino), rendered like playlist_changes.sql (see there for dt as
-- a string; the landed dates and the songs present: landed_dates.sql). Stays are gaps and
-- islands: a song's landed-date numbers minus its own row numbers are constant within a stay.
-- The windows are ROW_NUMBER and a whole-partition COUNT (no ORDER BY, so no frame clause, whose
-- defaults the engines word differently).
CREATE OR REPLACE VIEW "{{ database }}"."{{ table_prefix }}playlist_song_spans" AS
WITH
{% include 'history/landed_dates.sql' %},
numbered AS (
    SELECT dt, playlist_id, ROW_NUMBER() OVER (PARTITION BY playlist_id ORDER BY dt) AS date_no,
        COUNT(*) OVER (PARTITION BY playlist_id) AS last_date_no
    FROM landed
),
stays AS (
    SELECT p.playlist_id, p.song_id, p.dt, n.date_no, n.last_date_no,
        n.date_no - ROW_NUMBER() OVER (PARTITION BY p.playlist_id, p.song_id ORDER BY n.date_no) AS stay
    FROM present p JOIN numbered n ON n.playlist_id = p.playlist_id AND n.dt = p.dt
)
SELECT playlist_id, song_id, MIN(dt) AS valid_from,
    CASE WHEN MAX(date_no) = MAX(last_date_no) THEN NULL ELSE MAX(dt) END AS valid_to,
    COUNT(*) AS dates_present
FROM stays
GROUP BY playlist_id, song_id, stay
