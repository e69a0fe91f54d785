-- Find the messages of one kind sent to one member (e.g. the details of a task they withdrew
-- from, to remove the resident's contact from them) without scanning the whole outbox.
CREATE INDEX outbox_member_kind ON outbox (member_id, kind);
