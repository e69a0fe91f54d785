-- Recurring events (issue 21, feature 6): staff publish a series (every Saturday 9:00-11:00 for 8
-- weeks, every weekday...); each occurrence becomes its own event (a task of kind 'event'), posted
-- a set number of days ahead by the series job (bot/jobs/series.py).

-- How many days before an occurrence starts it is posted in the group (a community setting).
ALTER TABLE communities ADD COLUMN series_days_ahead INTEGER NOT NULL DEFAULT 7;

-- The series: what every occurrence will be (as staff last edited it) and when they fall, in the
-- community's local time. weekdays: bit 0 Monday ... bit 6 Sunday. next_day / next_post_at: the
-- next occurrence not yet posted and when it is due (NULL: none left), so the job's idle run reads
-- only the index event_series_due, however many series and occurrences there were.
CREATE TABLE event_series (
    id INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    created_by INTEGER NOT NULL REFERENCES members(id),
    category TEXT NOT NULL,
    title TEXT,
    description TEXT,
    voice_file_id TEXT,
    slots INTEGER NOT NULL,
    points INTEGER,
    organisation_id INTEGER REFERENCES organisations(id),
    weekdays INTEGER NOT NULL,
    start_time TEXT NOT NULL,
    minutes INTEGER NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    stop_day TEXT,
    next_day TEXT,
    next_post_at TEXT,
    submit_key TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX event_series_due ON event_series (next_post_at) WHERE next_post_at IS NOT NULL;
CREATE INDEX event_series_community ON event_series (community_id, id);
CREATE UNIQUE INDEX event_series_submit_key ON event_series (submit_key) WHERE submit_key IS NOT NULL;

-- One row per occurrence posted (or passed over: task_id NULL): the unique key series + local
-- date means a restart or two runs of the job never post an occurrence twice.
CREATE TABLE series_occurrences (
    series_id INTEGER NOT NULL REFERENCES event_series(id),
    day TEXT NOT NULL,
    task_id INTEGER REFERENCES tasks(id),
    posted_at TEXT NOT NULL,
    PRIMARY KEY (series_id, day)
);
