-- runs(dt, run_id, run_seconds, transform_seconds, spotify_requests, playlists_unchanged, ..., rows_<table>...,
-- rejected_<reason>...): pipeline health from the run log pipeline_runs, the newest run of each of
-- the last 30 dates it has up to the report's date. run_seconds: the run's start to its publish.
-- The count columns come from spotify_etl.runlog (a new table or reject reason is a new column).
WITH
runs AS (
    SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.dt ORDER BY r.published_at DESC, r.run_id DESC) AS newest
    FROM "{{ database }}"."{{ table_prefix }}pipeline_runs" r
    WHERE r.dt <= '{{ dt }}'
),
recent AS (
    SELECT DISTINCT dt FROM runs ORDER BY dt DESC LIMIT 30
)
SELECT u.dt, u.run_id, date_diff('second', u.started_at, u.published_at) AS run_seconds,
    u.transform_seconds{% for column in counts %}, u.{{ column }}{% endfor %}
FROM runs u
JOIN recent d ON d.dt = u.dt
WHERE u.newest = 1
ORDER BY u.dt
