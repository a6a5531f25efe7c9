-- The report queries' common ground, included by each of them after WITH (one text for DuckDB and
-- Athena, rendered like the history views: include/sql/history/playlist_changes.sql says why dt
-- stays a string). landed and present: history/landed_dates.sql. recent: the last 30 landed dates
-- up to the report's date {{ dt }}. names: each playlist's name on its latest landed date up to it
-- (none for dates published before the playlists table: the report shows the id).
-- charted: the 10 playlists the per-playlist panels show, those with the most songs added and removed
-- over the recent dates (then by id): a day of a thousand playlists would draw a thousand charts.
-- artist_songs: the songs on any playlist on a date, per credited artist (song_artists); top_ten: the
-- date's 10 artists with the most such songs.
{% include 'history/landed_dates.sql' %},
recent AS (
    SELECT DISTINCT dt FROM landed WHERE dt <= '{{ dt }}' ORDER BY dt DESC LIMIT 30
),
latest_names AS (
    SELECT playlist_id, MAX(dt) AS dt FROM "{{ database }}"."{{ table_prefix }}playlists"
    WHERE dt <= '{{ dt }}' GROUP BY playlist_id
),
names AS (
    SELECT p.playlist_id, p.name FROM "{{ database }}"."{{ table_prefix }}playlists" p
    JOIN latest_names l ON l.playlist_id = p.playlist_id AND l.dt = p.dt
),
charted AS (
    SELECT l.playlist_id
    FROM landed l
    JOIN recent r ON r.dt = l.dt
    LEFT JOIN "{{ database }}"."{{ table_prefix }}playlist_changes" c ON c.playlist_id = l.playlist_id AND c.dt = l.dt
    GROUP BY l.playlist_id
    ORDER BY COUNT(c.change) DESC, l.playlist_id
    LIMIT 10
),
artist_songs AS (
    SELECT DISTINCT p.dt, sa.artist_id, p.song_id
    FROM present p JOIN "{{ database }}"."{{ table_prefix }}song_artists" sa ON sa.song_id = p.song_id AND sa.dt = p.dt
),
top_ten AS (
    SELECT a.artist_id, COALESCE(MAX(ar.name), a.artist_id) AS artist, COUNT(*) AS songs
    FROM artist_songs a
    LEFT JOIN "{{ database }}"."{{ table_prefix }}artists" ar ON ar.artist_id = a.artist_id AND ar.dt = a.dt
    WHERE a.dt = '{{ dt }}'
    GROUP BY a.artist_id
    ORDER BY songs DESC, artist, a.artist_id
    LIMIT 10
)
