-- Rewards and redemption: merchant verification attempts (for rate limiting) and venue slots.
CREATE TABLE voucher_verify_attempts (
    id          INTEGER PRIMARY KEY,
    actor_id    INTEGER NOT NULL REFERENCES members(id),
    ok          INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX voucher_verify_attempts_actor ON voucher_verify_attempts (actor_id, created_at);

-- A venue slot can be held by one live voucher only.
CREATE UNIQUE INDEX vouchers_venue_slot ON vouchers (reward_id, slot_start)
    WHERE slot_start IS NOT NULL AND state IN ('issued', 'used');

-- The confirm button's one-time token: a double tap on "Redeem" issues one voucher.
ALTER TABLE vouchers ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX vouchers_request_key ON vouchers (request_key) WHERE request_key IS NOT NULL;
