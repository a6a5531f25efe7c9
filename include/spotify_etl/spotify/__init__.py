"""The Spotify Web API: the playlist source (``client``), the one-time ``spotify-etl auth``
command (``auth_command``) and the redaction of the connection's secrets (``redaction``).

Import them from their modules: this package imports nothing itself, so a task that only needs
the redaction (every task, for its log) does not pay for spotipy, which also imports redis
(half a second of CPU per task process, measured with ``python -X importtime``).
"""
