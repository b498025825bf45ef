-- Who uploaded each blob. A worker's reported task output is accepted only
-- when it uploaded those bytes itself (or sent them inline): otherwise a
-- worker that learned another user's blob id could name it as its output
-- and so make it readable to itself and to its job's owner.
CREATE TABLE blob_uploads (
    blob_id   BLOB NOT NULL,
    uploader  TEXT NOT NULL,
    PRIMARY KEY (blob_id, uploader)
) WITHOUT ROWID;
