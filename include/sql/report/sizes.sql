-- sizes(dt, playlist_id, playlist, songs): each charted playlist's (common.sql) distinct songs on
-- each of the last 30 landed dates it was landed on (an empty playlist: 0).
WITH
{% include 'report/common.sql' %}
SELECT l.dt, l.playlist_id, COALESCE(n.name, l.playlist_id) AS playlist, COUNT(p.song_id) AS songs
FROM landed l
JOIN recent r ON r.dt = l.dt
JOIN charted s ON s.playlist_id = l.playlist_id
LEFT JOIN names n ON n.playlist_id = l.playlist_id
LEFT JOIN present p ON p.playlist_id = l.playlist_id AND p.dt = l.dt
GROUP BY l.dt, l.playlist_id, COALESCE(n.name, l.playlist_id)
ORDER BY l.dt, l.playlist_id
