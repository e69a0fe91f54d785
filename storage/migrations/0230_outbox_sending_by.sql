-- Several instances (issue 18): which instance marked an outbox row 'sending' (its BOT_INSTANCE_NAME,
-- or host:pid). A starting instance, and one taking over the outbox lease, puts back to 'pending' only
-- the rows marked by itself (a restart) or by an instance whose outbox lease has run out, never those
-- a live sender has on their way (storage/outbox.py reset_in_flight).
ALTER TABLE outbox ADD COLUMN sending_by TEXT;
-- The rows on their way, by sender: the reset reads only these (a handful), whatever the history.
CREATE INDEX outbox_sending ON outbox (sending_by) WHERE state = 'sending';
