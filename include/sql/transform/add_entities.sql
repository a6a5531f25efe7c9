-- Adds the batch's new songs, albums, artists and song-artist pairs to the entity tables (transform.py).
--
-- The batch's songs not seen in an earlier batch, each at its first entry; then what they
-- bring that is new: albums and artists at their first song, and every song's artists.
-- arg_min over narrow rows picks each first row, cheaper than a window over the wide ones.
CREATE OR REPLACE TABLE new_songs AS
SELECT ord, song_id, name, duration_ms, popularity, explicit, url, album, artists
FROM batch WHERE rowid IN (
    SELECT arg_min(rowid, ord) FROM batch b
    WHERE idx IS NOT NULL AND reject_reason IS NULL AND NOT EXISTS (SELECT 1 FROM songs s WHERE s.song_id = b.song_id)
    GROUP BY song_id);

INSERT INTO songs
SELECT song_id, name, duration_ms, popularity, explicit, album.id, artists[1].id, url
FROM new_songs;

INSERT INTO albums
SELECT album.id, album.name,
    -- release_date at its precision (a year, a month or a day), else null
    CASE coalesce(album.release_date_precision,
                  CASE length(album.release_date) WHEN 4 THEN 'year' WHEN 7 THEN 'month' ELSE 'day' END)
        WHEN 'year' THEN TRY_CAST(try_strptime(album.release_date, '%Y') AS DATE)
        WHEN 'month' THEN TRY_CAST(try_strptime(album.release_date, '%Y-%m') AS DATE)
        ELSE TRY_CAST(try_strptime(album.release_date, '%Y-%m-%d') AS DATE)
    END,
    album.release_date_precision,
    -- integers only, as duration_ms and popularity in batch.sql (a cast would round 12.5, read 1e3)
    CASE WHEN regexp_full_match(album.total_tracks, '-?[0-9]{1,9}') THEN CAST(album.total_tracks AS INTEGER) END,
    album.external_urls.spotify
FROM new_songs WHERE rowid IN (
    SELECT arg_min(rowid, ord) FROM new_songs n
    WHERE NOT EXISTS (SELECT 1 FROM albums a WHERE a.album_id = n.album.id)
    GROUP BY album.id);

CREATE OR REPLACE TABLE new_song_artists AS
SELECT * FROM (
    SELECT ord, song_id, unnest(artists) AS artist, generate_subscripts(artists, 1) AS artist_no
    FROM new_songs)
WHERE regexp_full_match(artist.id, '[0-9A-Za-z]{22}');

INSERT INTO song_artists
SELECT song_id, artist.id, CAST(min(artist_no) - 1 AS INTEGER) FROM new_song_artists GROUP BY song_id, artist.id;

INSERT INTO artists
SELECT artist.id, artist.name, artist.external_urls.spotify
FROM new_song_artists WHERE rowid IN (
    SELECT arg_min(rowid, (ord, artist_no)) FROM new_song_artists n
    WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.artist_id = n.artist.id)
    GROUP BY artist.id);
