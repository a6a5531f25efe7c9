-- Data-quality checks for one date. One row per check: check_name, violations, checked_rows.
-- A check passes when violations = 0; checked_rows counts the rows it could judge, so 0 there
-- means it had nothing to check (reported as SKIP). Written in the SQL that both Athena (Trino) and DuckDB
-- run; tests parse it with sqlglot's Trino dialect and execute it in DuckDB.
-- COUNT_IF is wrapped in COALESCE: DuckDB's returns NULL over no rows, Athena's 0.
-- A Jinja template (rendered by spotify_etl.quality.render_validation_sql for DuckDB and by Airflow for Athena, same text):
--   {{ database }}  catalog database / schema      {{ table_prefix }}  table name prefix
--   {{ dt }}        the run's date, YYYY-MM-DD
WITH
albums AS (SELECT * FROM "{{ database }}"."{{ table_prefix }}albums" WHERE dt = '{{ dt }}'),
artists AS (SELECT * FROM "{{ database }}"."{{ table_prefix }}artists" WHERE dt = '{{ dt }}'),
songs AS (SELECT * FROM "{{ database }}"."{{ table_prefix }}songs" WHERE dt = '{{ dt }}'),
song_artists AS (SELECT * FROM "{{ database }}"."{{ table_prefix }}song_artists" WHERE dt = '{{ dt }}'),
playlist_items AS (SELECT * FROM "{{ database }}"."{{ table_prefix }}playlist_items" WHERE dt = '{{ dt }}'),
playlists AS (SELECT * FROM "{{ database }}"."{{ table_prefix }}playlists" WHERE dt = '{{ dt }}')
SELECT check_name, violations, checked_rows FROM (
    SELECT 'albums_not_empty' AS check_name, CASE WHEN COUNT(*) = 0 THEN 1 ELSE 0 END AS violations, COUNT(*) AS checked_rows FROM albums
    UNION ALL SELECT 'artists_not_empty', CASE WHEN COUNT(*) = 0 THEN 1 ELSE 0 END, COUNT(*) FROM artists
    UNION ALL SELECT 'songs_not_empty', CASE WHEN COUNT(*) = 0 THEN 1 ELSE 0 END, COUNT(*) FROM songs
    UNION ALL SELECT 'song_artists_not_empty', CASE WHEN COUNT(*) = 0 THEN 1 ELSE 0 END, COUNT(*) FROM song_artists
    UNION ALL SELECT 'playlist_items_not_empty', CASE WHEN COUNT(*) = 0 THEN 1 ELSE 0 END, COUNT(*) FROM playlist_items
    UNION ALL SELECT 'albums_pk_unique_not_null', COUNT(*) - COUNT(DISTINCT album_id), COUNT(*) FROM albums
    UNION ALL SELECT 'artists_pk_unique_not_null', COUNT(*) - COUNT(DISTINCT artist_id), COUNT(*) FROM artists
    UNION ALL SELECT 'songs_pk_unique_not_null', COUNT(*) - COUNT(DISTINCT song_id), COUNT(*) FROM songs
    UNION ALL SELECT 'song_artists_pk_unique_not_null',
        COUNT(*) - COUNT(DISTINCT CASE WHEN song_id IS NOT NULL AND artist_id IS NOT NULL THEN song_id || '/' || artist_id END),
        COUNT(*) FROM song_artists
    UNION ALL SELECT 'playlist_items_pk_unique_not_null',
        COUNT(*) - COUNT(DISTINCT CASE WHEN playlist_id IS NOT NULL AND position IS NOT NULL
                                   THEN playlist_id || '/' || CAST(position AS VARCHAR) END),
        COUNT(*) FROM playlist_items
    UNION ALL SELECT 'playlists_pk_unique_not_null', COUNT(*) - COUNT(DISTINCT playlist_id), COUNT(*) FROM playlists
    -- Every playlist with items on the date has its playlists row (the history views' landed dates).
    UNION ALL SELECT 'playlist_items_playlist_present',
        COALESCE(COUNT_IF(p.playlist_id IS NULL), 0), COUNT(*)
        FROM (SELECT DISTINCT playlist_id FROM playlist_items) i
        LEFT JOIN (SELECT DISTINCT playlist_id FROM playlists) p ON p.playlist_id = i.playlist_id
    UNION ALL SELECT 'songs_album_present',
        COALESCE(COUNT_IF(a.album_id IS NULL), 0), COUNT(*)
        FROM songs s LEFT JOIN (SELECT DISTINCT album_id FROM albums) a ON a.album_id = s.album_id
    UNION ALL SELECT 'songs_artist_present',
        COALESCE(COUNT_IF(a.artist_id IS NULL), 0), COUNT(*)
        FROM songs s LEFT JOIN (SELECT DISTINCT artist_id FROM artists) a ON a.artist_id = s.artist_id
    -- Only songs with a popularity count: Spotify sends none to development-mode apps (2026).
    UNION ALL SELECT 'songs_popularity_in_range',
        COALESCE(COUNT_IF(popularity < 0 OR popularity > 100), 0), COUNT(popularity) FROM songs
    UNION ALL SELECT 'songs_duration_positive', COALESCE(COUNT_IF(duration_ms IS NULL OR duration_ms <= 0), 0), COUNT(*) FROM songs
    -- The six tables come from one publish (spotify_etl.publish): violations = publishes beyond the
    -- first; a file written before the column existed (publish_id NULL) counts as one more.
    UNION ALL SELECT 'tables_one_publish',
        COUNT(DISTINCT COALESCE(publish_id, '')) - CASE WHEN COUNT(*) = 0 THEN 0 ELSE 1 END, COUNT(*)
        FROM (SELECT publish_id FROM albums UNION ALL SELECT publish_id FROM artists UNION ALL SELECT publish_id FROM songs
              UNION ALL SELECT publish_id FROM song_artists UNION ALL SELECT publish_id FROM playlist_items
              UNION ALL SELECT publish_id FROM playlists) AS published
) AS checks
ORDER BY check_name
