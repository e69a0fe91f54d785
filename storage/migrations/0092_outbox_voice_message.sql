-- A message sent with a voice note is two Telegram messages (the text, then the voice): the
-- voice's id too, so it can be deleted with the text's details (e.g. after a volunteer withdraws).
ALTER TABLE outbox ADD COLUMN voice_message_id INTEGER;
