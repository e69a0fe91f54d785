-- Notifications: one row per reminder, escalation or digest decided, so a sweep never fires twice.

CREATE TABLE sent_notifications (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,   -- e.g. remind:1h:<task>:<member>, digest:group:<community>:<local date>
    created_at TEXT NOT NULL
);
