-- Check-in at the venue (issue 21, feature 2). Staff open check-in for an event: the event gets a
-- random token (the QR code's deep link, start=ci_<token>) and a short code to type (6 letters);
-- both name this one event only. One row per event: opening it again shows the same code.
CREATE TABLE checkin_codes (
    task_id    INTEGER PRIMARY KEY REFERENCES tasks(id),
    token      TEXT NOT NULL UNIQUE,
    short_code TEXT NOT NULL UNIQUE,
    opened_by  INTEGER REFERENCES members(id),
    opened_at  TEXT NOT NULL
);
-- Who checked in at an event, once each (checking in again changes nothing); via: 'qr' or 'code'.
CREATE TABLE checkins (
    task_id       INTEGER NOT NULL REFERENCES tasks(id),
    member_id     INTEGER NOT NULL REFERENCES members(id),
    via           TEXT NOT NULL,
    checked_in_at TEXT NOT NULL,
    PRIMARY KEY (task_id, member_id)
);
CREATE INDEX checkins_member ON checkins (member_id);
