-- song_stays(dates_present, status, stays): how long songs stay, from the view playlist_song_spans:
-- the stays begun by the report's date, by their landed dates in the playlist and whether the song
-- is still there on that date or has left ('left': its stay ended before it). dates_present is the
-- view's, counted over the history as it is when the report is made (later dates included).
SELECT s.dates_present,
    CASE WHEN s.valid_to IS NULL OR s.valid_to >= '{{ dt }}' THEN CAST('still there' AS VARCHAR)
        ELSE CAST('left' AS VARCHAR) END AS status,
    COUNT(*) AS stays
FROM "{{ database }}"."{{ table_prefix }}playlist_song_spans" s
WHERE s.valid_from <= '{{ dt }}'
GROUP BY 1, 2
ORDER BY 1, 2
