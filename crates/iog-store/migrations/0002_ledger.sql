-- The $IO ledger's journal: one row per recorded operation, in order, as the
-- ledger's canonical encoding. Written in the same transaction as the
-- coordinator changes of its batch; the ledger is rebuilt by replaying it.
CREATE TABLE ledger_journal (
    seq           INTEGER PRIMARY KEY,
    entry         BLOB    NOT NULL
);
