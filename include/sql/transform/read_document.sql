-- One raw document read alone, to name the file a batch read failed on (transform.py, error path).
-- Bound: $f (one file), $c (raw_format.RAW_COLUMNS), $max_object.
SELECT playlist_id, pages IS NULL FROM read_json($f, columns = $c, format = 'auto', maximum_object_size = $max_object)
