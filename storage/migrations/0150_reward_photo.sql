-- A reward's photo (a Telegram file id of the picture staff sent), shown in the points supermarket.
-- NULL: no photo.
ALTER TABLE rewards ADD COLUMN photo_file_id TEXT;
-- The reward dialog's one-time key for a new reward (a random token, nothing personal): the same
-- answer handled twice (a press redelivered after a crash) adds one reward.
ALTER TABLE rewards ADD COLUMN add_key TEXT;
CREATE UNIQUE INDEX rewards_add_key ON rewards (add_key) WHERE add_key IS NOT NULL;
