-- Placement: what each job's tasks need and who submitted it (for fair
-- share after a restart), and the price of each lease and commit, since a
-- task now pays its worker's asking price rather than one price per job.
ALTER TABLE jobs ADD COLUMN requirements_json TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN submitter TEXT NOT NULL DEFAULT '';
-- Base units of IO per hour for all the devices of the current lease.
ALTER TABLE tasks ADD COLUMN lease_price INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commits ADD COLUMN price INTEGER NOT NULL DEFAULT 0;
-- What each worker last offered (region, price, device groups, hours).
ALTER TABLE workers ADD COLUMN offer_json TEXT NOT NULL DEFAULT '';
