-- The batch's rows of playlist_items, every entry in (playlist, position) order (transform.py).
SELECT playlist_id, position, CASE WHEN reject_reason IS NULL THEN song_id END AS song_id, added_at, added_by, is_local
FROM batch WHERE idx IS NOT NULL
ORDER BY ord
