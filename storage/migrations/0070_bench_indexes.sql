-- Indexes found by bench/scale.py (see bench/RESULTS.md, "Scale"). Indexes only.
-- Leaderboard and daily-digest totals per community and period (people and organisations), read
-- from the index alone; chosen by SQLite's planner without ANALYZE statistics.
CREATE INDEX IF NOT EXISTS ledger_community_totals ON ledger (community_id, created_at, reason, delta, member_id, organisation_id);
-- /points: a member's total and this month's credits from the index alone.
CREATE INDEX IF NOT EXISTS ledger_member_totals ON ledger (member_id, created_at, delta);
-- Digest: tasks completed yesterday.
CREATE INDEX IF NOT EXISTS tasks_community_state_completed ON tasks (community_id, state, completed_at);
-- Reminder sweep: upcoming tasks by state and start time instead of a scan of every task.
CREATE INDEX IF NOT EXISTS tasks_state_starts ON tasks (state, starts_at);
