-- The batch's rows of playlists, one per document in playlist id order (transform.py), from the
-- document's head row. Documents landed before the extract kept ``metadata`` (raw_format.PLAYLIST)
-- read it as null: name and owner_id then come from the document's own keys, the rest is null.
-- Numbers as in batch.sql: integers only. publish_id: the transform's one-row table publish.
SELECT playlist_id,
    coalesce(doc.metadata.name, doc.name) AS name,
    doc.metadata.description AS description,
    nullif(coalesce(doc.metadata.owner.id, doc.owner_id), '') AS owner_id,
    nullif(doc.metadata.owner.display_name, '') AS owner_name,
    TRY_CAST(doc.metadata.public AS BOOLEAN) AS public,
    TRY_CAST(doc.metadata.collaborative AS BOOLEAN) AS collaborative,
    doc.snapshot_id AS snapshot_id,
    CASE WHEN regexp_full_match(doc.total, '[0-9]{1,9}') THEN CAST(doc.total AS INTEGER) END AS items_total,
    CASE WHEN regexp_full_match(doc.metadata.followers.total, '[0-9]{1,18}')
        THEN CAST(doc.metadata.followers.total AS BIGINT) END AS followers,
    TRY_CAST(doc.extracted_at AS TIMESTAMPTZ) AS extracted_at,
    p.publish_id
FROM batch, publish p WHERE head
ORDER BY file_no
