-- Checkpoints of the ledger journal signed by the coordinator's key: each
-- vouches for the journal's first n_entries entries (their last hash is
-- head_hash), so anyone holding the key's public half can audit the history.
CREATE TABLE ledger_checkpoints (
    n_entries     INTEGER PRIMARY KEY,
    head_hash     BLOB    NOT NULL,
    signer        BLOB    NOT NULL,   -- the coordinator's ed25519 public key
    signature     BLOB    NOT NULL,   -- over Checkpoint::signing_message
    signed_ms     INTEGER NOT NULL
);
