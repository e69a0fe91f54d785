-- Waiting list for full events (issue 21, feature 1). A volunteer who finds an event full joins its
-- waiting list; when a place frees the first one waiting (lowest id: first come, first served) is
-- given it at once and offered it until offer_until (the community's waitlist_hold_minutes): they
-- keep it, decline it, or let the time pass, and then the next one is offered it.
-- States: waiting, offered (holds an active claim), kept, declined, lapsed, left, skipped (could
-- not take the place when their turn came: below the reliability minimum, no longer a volunteer).
CREATE TABLE waitlist (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    task_id      INTEGER NOT NULL REFERENCES tasks(id),
    member_id    INTEGER NOT NULL REFERENCES members(id),
    state        TEXT NOT NULL DEFAULT 'waiting',
    joined_at    TEXT NOT NULL,
    offered_at   TEXT,
    offer_until  TEXT,
    updated_at   TEXT NOT NULL,
    UNIQUE (task_id, member_id)
);
-- The next one waiting on a task, and the waiting count on its card.
CREATE INDEX waitlist_queue ON waitlist (task_id, id) WHERE state = 'waiting';
-- The sweep reads only the offers still open (idle: one look-up, whatever the history).
CREATE INDEX waitlist_offers ON waitlist (offer_until) WHERE state = 'offered';
-- How long a volunteer given a place from the waiting list has to keep or decline it.
ALTER TABLE communities ADD COLUMN waitlist_hold_minutes INTEGER NOT NULL DEFAULT 120;
