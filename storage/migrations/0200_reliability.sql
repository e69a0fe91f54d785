-- Reliability score (issue 21, feature 3). A volunteer who withdraws from a task close to its start
-- (bot/services/reliability.py LATE_BEFORE) leaves a row here: with the no-shows (0030) it lowers
-- their score, completed claims raise it. One row per task and volunteer, however often they
-- claim and withdraw again.
CREATE TABLE late_withdrawals (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    task_id      INTEGER NOT NULL REFERENCES tasks(id),
    member_id    INTEGER NOT NULL REFERENCES members(id),
    starts_at    TEXT NOT NULL,              -- the task's start when they withdrew
    created_at   TEXT NOT NULL,
    UNIQUE (task_id, member_id)
);
CREATE INDEX late_withdrawals_member ON late_withdrawals (member_id, created_at);
-- The score reads a volunteer's completed claims of the last two years from this index alone.
CREATE INDEX claims_member_completed ON claims (member_id, updated_at, state) WHERE state = 'completed';
-- The score (0 to 100) a volunteer needs to claim an event of the community; 0: no minimum.
ALTER TABLE communities ADD COLUMN min_reliability INTEGER NOT NULL DEFAULT 0;
