-- Completion and points: problem cases, no-shows, honours.

CREATE TABLE cases (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    task_id      INTEGER NOT NULL REFERENCES tasks(id),
    opened_by    INTEGER NOT NULL REFERENCES members(id),
    reason       TEXT,
    state        TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    resolution   TEXT CHECK (resolution IN ('credit', 'no_credit', 'partial')),
    points       INTEGER,                    -- points per volunteer granted by the resolution
    resolved_by  INTEGER REFERENCES members(id),
    note         TEXT,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT
);
CREATE INDEX cases_community_state ON cases (community_id, state);
CREATE UNIQUE INDEX cases_one_open_per_task ON cases (task_id) WHERE state = 'open';

CREATE TABLE no_shows (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    task_id      INTEGER NOT NULL REFERENCES tasks(id),
    member_id    INTEGER NOT NULL REFERENCES members(id),
    recorded_by  INTEGER REFERENCES members(id),
    created_at   TEXT NOT NULL,
    UNIQUE (task_id, member_id)
);
CREATE INDEX no_shows_member ON no_shows (member_id);

CREATE TABLE honours (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER REFERENCES communities(id),
    member_id    INTEGER NOT NULL REFERENCES members(id),
    code         TEXT NOT NULL,              -- first_task, tasks_10, tasks_50, tasks_100, top_month:YYYY-MM
    created_at   TEXT NOT NULL,
    UNIQUE (member_id, code)
);
