-- Dispatch: one task per submitted draft (pressing Submit twice creates one task).
CREATE TABLE task_submissions (
    submit_key  TEXT PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks(id),
    created_at  TEXT NOT NULL
);
