-- changes(dt, playlist_id, playlist, added, removed): per charted playlist (common.sql) and each of
-- the last 30 landed dates it was landed on, the songs added and removed since its previous landed
-- date (the view playlist_changes; a playlist's first landed date has none to compare with: 0 and 0).
WITH
{% include 'report/common.sql' %}
SELECT l.dt, l.playlist_id, COALESCE(n.name, l.playlist_id) AS playlist,
    COUNT(CASE WHEN c.change = 'added' THEN 1 END) AS added,
    COUNT(CASE WHEN c.change = 'removed' THEN 1 END) AS removed
FROM landed l
JOIN recent r ON r.dt = l.dt
JOIN charted s ON s.playlist_id = l.playlist_id
LEFT JOIN names n ON n.playlist_id = l.playlist_id
LEFT JOIN "{{ database }}"."{{ table_prefix }}playlist_changes" c ON c.playlist_id = l.playlist_id AND c.dt = l.dt
GROUP BY l.dt, l.playlist_id, COALESCE(n.name, l.playlist_id)
ORDER BY l.dt, l.playlist_id
