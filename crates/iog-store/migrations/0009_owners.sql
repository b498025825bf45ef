-- Authorization: every request about a job or a blob is checked against
-- its owner. A job belongs to the wallet that submitted it (jobs.submitter;
-- jobs stored before owners were checked have '' and belong to no one). A
-- blob may be read by the owner of a job that refers to it, by the worker
-- holding the current lease of a task whose input it is, and by the worker
-- that committed it. These indexes keep those checks off full scans.
CREATE INDEX jobs_by_submitter ON jobs (submitter, created_ms);
CREATE INDEX tasks_by_input ON tasks (input_blob);
CREATE INDEX commits_by_output ON commits (output_blob);
CREATE INDEX artifacts_by_blob ON artifacts (blob);
