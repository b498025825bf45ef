-- The device a committed attempt ran on, as its worker names it ('cpu0',
-- 'gpu0'), for people to read. Commits stored before it was recorded keep
-- NULL: unknown.
ALTER TABLE commits ADD COLUMN device TEXT;
