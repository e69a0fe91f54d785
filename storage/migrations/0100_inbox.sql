-- The durable inbox (issue 15): every update Telegram delivers is committed here before Telegram
-- is told it arrived (the next getUpdates offset, or the webhook's HTTP 200), then handled from
-- here: in order per lane (a person's buttons, a person's messages), marked handled once its
-- effects are committed. A redelivered update is recognised by its update_id (and the digest of
-- what it carries, in case Telegram starts numbering again). Replaces processed_updates.
--   status: waiting -> working (claimed by `owner` until `lease_until`) -> handled | set_aside
--   payload (the update's JSON) is emptied once handled; attempts counts failed tries, `error` keeps
--   the last failure; `not_before` is set on rows taken back after a stop (maybe handled already).
CREATE TABLE inbox (
    update_id    INTEGER PRIMARY KEY,
    user_id      INTEGER,
    lane         TEXT NOT NULL,
    digest       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'waiting'
                 CHECK (status IN ('waiting', 'working', 'handled', 'set_aside')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    owner        TEXT,
    lease_until  TEXT,
    not_before   TEXT,
    received_at  TEXT NOT NULL,
    handled_at   TEXT
);
-- Unfinished rows (what a worker claims, and what blocks a lane) are few: partial indexes keep them cheap.
CREATE INDEX inbox_open ON inbox (update_id) WHERE status IN ('waiting', 'working');
CREATE INDEX inbox_open_lane ON inbox (lane, update_id) WHERE status IN ('waiting', 'working');
CREATE INDEX inbox_handled ON inbox (handled_at) WHERE status = 'handled';
CREATE INDEX inbox_user ON inbox (user_id);
