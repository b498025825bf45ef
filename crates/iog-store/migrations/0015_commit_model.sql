-- The model of the devices a committed attempt ran on, kept for jobs whose
-- replicas keep to one model (`replicas_same_model`), so that placement
-- still knows it after a restart while the worker is away. NULL for other
-- jobs and for commits stored before it was recorded.
ALTER TABLE commits ADD COLUMN model TEXT;
