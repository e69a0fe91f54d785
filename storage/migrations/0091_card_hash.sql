-- What the group card last showed (a hash of its text and buttons), so the card job skips an edit
-- that would change nothing (Telegram answers "message is not modified") and re-sends one that
-- failed while the bot was out of the group.
ALTER TABLE tasks ADD COLUMN card_hash TEXT;
