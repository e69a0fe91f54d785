-- Leases (issue 18): a named job that only one Linli process may do at a time (long polling:
-- "poll"). The holder renews it before expires_at; another process takes it over only once it
-- has expired (a compare-and-set in storage/leases.py). Times are real UTC, never a demo clock.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,              -- this process's own random token
    host        TEXT NOT NULL,              -- where it runs and its process id, for the operator
    pid         INTEGER NOT NULL,
    taken_at    TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
