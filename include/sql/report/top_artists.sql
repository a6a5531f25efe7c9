-- top_artists(artist_id, artist, songs): the report date's 10 artists with the most distinct songs
-- on its playlists (every credited artist of a song counts it), most first.
WITH
{% include 'report/common.sql' %}
SELECT artist_id, artist, songs FROM top_ten ORDER BY songs DESC, artist, artist_id
