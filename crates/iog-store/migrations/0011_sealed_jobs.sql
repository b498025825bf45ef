-- Jobs whose inputs and results are sealed end to end: the store holds
-- only their ciphertext, and the coordinator assembles nothing for them
-- (the submitter's client opens and assembles the results).
ALTER TABLE jobs ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
