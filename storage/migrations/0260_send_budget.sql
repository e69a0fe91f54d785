-- Telegram's flood limits shared by several instances (issue 18): how many messages each chat (and,
-- as chat 0, the whole bot) has been given in a window that starts at window_start (whole seconds
-- since the epoch, real time). Used only while more than one instance is live (bot/budget.py);
-- past windows are pruned by the sweeps.
CREATE TABLE send_budget (
    chat_id       INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (chat_id, window_start)
);
