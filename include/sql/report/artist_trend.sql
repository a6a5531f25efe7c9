-- artist_trend(dt, artist_id, artist, songs): those top artists' distinct songs on the playlists
-- on each of the last 30 landed dates (a date without any of their songs has no row).
WITH
{% include 'report/common.sql' %}
SELECT a.dt, t.artist_id, t.artist, COUNT(*) AS songs
FROM artist_songs a
JOIN top_ten t ON t.artist_id = a.artist_id
JOIN recent r ON r.dt = a.dt
GROUP BY a.dt, t.artist_id, t.artist
ORDER BY a.dt, t.artist_id
