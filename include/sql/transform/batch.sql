-- The transform's read of one batch of raw documents into the table `batch` (transform.py).
-- Bound: $files (the batch's documents), $columns (raw_format.RAW_COLUMNS), $format, $max_object.
-- '[0-9A-Za-z]{22}' is a Spotify id (ids.py).
--
-- One row per entry. The padded unnests ([true] is zipped beside the lists) give every
-- document and every page at least one row, so documents without entries still reach
-- the checks without a second read: the row with ``head`` is the document's (it alone
-- carries ``doc``, what the extract recorded of the playlist: playlists.sql), and rows
-- with a null ``idx`` are padding, not entries. ``position`` counts the entries of the
-- earlier pages (so no window sorts the rows) and ``ord``, the file's place in the batch
-- and the position in one BIGINT, orders "first" cheaply.
CREATE OR REPLACE TABLE batch AS
WITH pages AS (
    SELECT filename, playlist_id, pages IS NULL AS no_pages, list_position($files, filename) AS file_no,
        list_transform(pages, lambda p: len(p.items)) AS page_sizes,
        unnest(pages) AS page, generate_subscripts(pages, 1) AS page_no, unnest([true]) AS head,
        unnest([{'name': name, 'owner_id': owner_id, 'snapshot_id': snapshot_id, 'total': total,
                 'extracted_at': extracted_at, 'metadata': metadata}]) AS doc
    FROM read_json($files, columns = $columns, format = $format, filename = true,
                   maximum_object_size = $max_object)
), flat AS (
    SELECT filename, playlist_id, no_pages, file_no, coalesce(list_sum(page_sizes[:page_no - 1]), 0) AS page_start,
        unnest(page.items) AS entry, generate_subscripts(page.items, 1) AS idx, unnest([head]) AS head,
        unnest([doc]) AS doc
    FROM pages
), typed AS (
    SELECT filename, file_no, playlist_id, no_pages, head, doc, idx, CAST(page_start + idx - 1 AS INTEGER) AS position,
        CAST(file_no AS BIGINT) << 32 | (page_start + idx - 1) AS ord,
        TRY_CAST(entry.added_at AS TIMESTAMPTZ) AS added_at,
        nullif(entry.added_by.id, '') AS added_by,
        TRY_CAST(entry.is_local AS BOOLEAN) AS entry_is_local,
        coalesce(entry.item, entry.track) AS t
    FROM flat
)
SELECT CASE WHEN head THEN filename END AS filename, CASE WHEN head THEN file_no END AS file_no, playlist_id, head AND no_pages AS no_pages,
    coalesce(head, false) AS head, doc, idx, position, ord, added_at, added_by,
    coalesce(entry_is_local, TRY_CAST(t.is_local AS BOOLEAN), false) AS is_local,
    t.id AS song_id, t.name AS name, TRY_CAST(t.explicit AS BOOLEAN) AS explicit, t.external_urls.spotify AS url,
    -- Integers only: DuckDB's cast would also turn '215000.5', '1e3' or '0x10' into numbers.
    CASE WHEN regexp_full_match(t.duration_ms, '-?[0-9]{1,18}') THEN CAST(t.duration_ms AS BIGINT) END AS duration_ms,
    CASE WHEN regexp_full_match(t.popularity, '-?[0-9]{1,9}') THEN CAST(t.popularity AS INTEGER) END AS popularity,
    CASE
        WHEN t IS NULL THEN 'null_entry'
        WHEN is_local THEN 'local_file'
        WHEN coalesce(t.type, 'track') <> 'track' THEN 'not_a_track'
        WHEN NOT coalesce(regexp_full_match(t.id, '[0-9A-Za-z]{22}'), false) THEN 'invalid_track_id'
        WHEN coalesce(duration_ms, 0) <= 0 THEN 'invalid_duration_ms'
        WHEN t.popularity IS NOT NULL AND NOT coalesce(popularity BETWEEN 0 AND 100, false) THEN 'invalid_popularity'
        WHEN NOT coalesce(regexp_full_match(t.album.id, '[0-9A-Za-z]{22}'), false) THEN 'invalid_album_id'
        WHEN NOT coalesce(regexp_full_match(t.artists[1].id, '[0-9A-Za-z]{22}'), false) THEN 'invalid_artist_id'
    END AS reject_reason,
    t.album AS album, t.artists AS artists
FROM typed
