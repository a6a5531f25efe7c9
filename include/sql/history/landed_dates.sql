-- The history views' common ground, included by playlist_changes.sql and playlist_song_spans.sql
-- (rendered into each view's text, so both engines see plain SQL):
-- landed: a playlist's landed dates, the dates whose tables hold it. playlists has a row even for
-- an empty playlist; playlist_items also covers dates published before the playlists table.
-- present: the songs on a playlist on a date, as a set (a duplicate counts once; an entry that
-- is no song, song_id null, not at all).
landed AS (
    SELECT dt, playlist_id FROM "{{ database }}"."{{ table_prefix }}playlists"
    UNION
    SELECT dt, playlist_id FROM "{{ database }}"."{{ table_prefix }}playlist_items"
),
present AS (
    SELECT DISTINCT dt, playlist_id, song_id FROM "{{ database }}"."{{ table_prefix }}playlist_items"
    WHERE song_id IS NOT NULL
)
