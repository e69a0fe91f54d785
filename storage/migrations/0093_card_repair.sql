-- A press on a group message looks the message up as a task's card (bot/buttons.py).
CREATE INDEX IF NOT EXISTS tasks_group_message ON tasks (group_chat_id, group_message_id);
-- Cards that can still be claimed are drawn once more: before buttons were checked, a forged press
-- could overwrite a card (Claim gone) without the card job ever noticing.
UPDATE tasks SET card_hash = NULL, card_rendered = MIN(card_rendered, card_version - 1)
 WHERE group_message_id > 0 AND state IN ('open', 'full');
