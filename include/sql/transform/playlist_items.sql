-- The batch's rows of playlist_items, every entry in (playlist, position) order (transform.py).
-- publish_id: the transform's one-row table publish (the same id in all six tables).
SELECT playlist_id, position, CASE WHEN reject_reason IS NULL THEN song_id END AS song_id, added_at, added_by, is_local,
    p.publish_id
FROM batch, publish p WHERE idx IS NOT NULL
ORDER BY ord
