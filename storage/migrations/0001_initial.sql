-- Linli schema, version 1. Times are UTC text from storage.timeutil.to_db (fixed width, sortable).
-- Later issues add numbered files; they may ALTER these tables but never edit this file.

CREATE TABLE communities (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    group_chat_id      INTEGER UNIQUE,            -- the volunteer group chat (NULL when the bot left)
    join_code          TEXT NOT NULL UNIQUE,      -- t.me/<bot>?start=join_<code>
    timezone           TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    language           TEXT NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    digest_time        TEXT NOT NULL DEFAULT '08:00',
    review_required    INTEGER NOT NULL DEFAULT 0,
    settings           TEXT NOT NULL DEFAULT '{}', -- JSON: points rules, reminder timings, ...
    welcome_message_id INTEGER,
    created_by         INTEGER,                    -- Telegram user id of whoever ran /setup
    active             INTEGER NOT NULL DEFAULT 1,
    created_at         TEXT NOT NULL
);

CREATE TABLE areas (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    name         TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    UNIQUE (community_id, name)
);

CREATE TABLE organisations (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    name         TEXT NOT NULL,
    invite_code  TEXT NOT NULL UNIQUE,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    UNIQUE (community_id, name)
);

CREATE TABLE categories (
    id             INTEGER PRIMARY KEY,
    community_id   INTEGER NOT NULL REFERENCES communities(id),
    code           TEXT NOT NULL,                  -- shopping, escort, repair, company, tech, other, ...
    name_zh        TEXT NOT NULL,
    name_en        TEXT NOT NULL,
    default_points INTEGER NOT NULL DEFAULT 1 CHECK (default_points >= 0),
    sort           INTEGER NOT NULL DEFAULT 0,
    active         INTEGER NOT NULL DEFAULT 1,
    UNIQUE (community_id, code)
);

CREATE TABLE members (
    id                  INTEGER PRIMARY KEY,
    tg_user_id          INTEGER UNIQUE,             -- NULL after /deleteme
    community_id        INTEGER REFERENCES communities(id),
    language            TEXT CHECK (language IN ('zh', 'en')),
    display_name        TEXT,
    phone               TEXT,
    area_id             INTEGER REFERENCES areas(id),
    address             TEXT,
    is_resident         INTEGER NOT NULL DEFAULT 0,
    is_volunteer        INTEGER NOT NULL DEFAULT 0,
    is_staff            INTEGER NOT NULL DEFAULT 0,
    organisation_id     INTEGER REFERENCES organisations(id),
    skills              TEXT NOT NULL DEFAULT '[]', -- JSON list of category codes
    availability        TEXT,
    on_duty             INTEGER NOT NULL DEFAULT 0,
    quiet_start         TEXT NOT NULL DEFAULT '22:00',
    quiet_end           TEXT NOT NULL DEFAULT '07:00',
    digest_enabled      INTEGER NOT NULL DEFAULT 1,
    digest_hour         INTEGER,                    -- NULL: the community's digest time
    leaderboard_opt_out INTEGER NOT NULL DEFAULT 0,
    announce_consent    INTEGER NOT NULL DEFAULT 1, -- honours may be announced in the group
    consent_at          TEXT,
    registered_at       TEXT,                       -- NULL while registration is unfinished
    started_bot         INTEGER NOT NULL DEFAULT 0, -- has a private chat with the bot
    reachable           INTEGER NOT NULL DEFAULT 1, -- 0 after a 403 (blocked the bot)
    balance             INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0), -- kept by a ledger trigger
    deleted_at          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX members_community ON members (community_id);

CREATE TABLE merchants (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    name         TEXT NOT NULL,
    member_id    INTEGER UNIQUE REFERENCES members(id), -- the merchant's own account, once invited
    invite_code  TEXT NOT NULL UNIQUE,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL
);

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    community_id     INTEGER NOT NULL REFERENCES communities(id),
    requester_id     INTEGER REFERENCES members(id), -- the resident helped (NULL for proxy/event)
    created_by       INTEGER NOT NULL REFERENCES members(id),
    is_proxy         INTEGER NOT NULL DEFAULT 0,     -- staff published for a resident without Telegram
    proxy_name       TEXT,
    proxy_phone      TEXT,
    proxy_address    TEXT,
    kind             TEXT NOT NULL DEFAULT 'request' CHECK (kind IN ('request', 'event')),
    category         TEXT NOT NULL,
    title            TEXT,
    description      TEXT,
    voice_file_id    TEXT,
    area_id          INTEGER REFERENCES areas(id),
    address          TEXT,                           -- exact address: private, never in a group
    when_kind        TEXT NOT NULL DEFAULT 'asap' CHECK (when_kind IN ('asap', 'today', 'tomorrow', 'at')),
    starts_at        TEXT,
    ends_at          TEXT,
    slots            INTEGER NOT NULL DEFAULT 1 CHECK (slots BETWEEN 1 AND 1000),
    points           INTEGER NOT NULL DEFAULT 1 CHECK (points BETWEEN 0 AND 1000),
    organisation_id  INTEGER REFERENCES organisations(id), -- open only to this organisation
    urgent           INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL CHECK (state IN ('draft', 'pending_review', 'open', 'full', 'in_progress',
                         'awaiting_confirmation', 'completed', 'cancelled', 'expired')),
    group_chat_id    INTEGER,                        -- where the card was posted
    group_message_id INTEGER,
    card_version     INTEGER NOT NULL DEFAULT 0,     -- bumped on every change the card shows
    card_rendered    INTEGER NOT NULL DEFAULT 0,     -- the version the group card shows
    reviewed_by      INTEGER REFERENCES members(id),
    confirmed_by     INTEGER REFERENCES members(id),
    created_at       TEXT NOT NULL,
    published_at     TEXT,
    first_claim_at   TEXT,
    done_at          TEXT,
    completed_at     TEXT,
    cancelled_at     TEXT,
    updated_at       TEXT NOT NULL
);
CREATE INDEX tasks_community_state ON tasks (community_id, state);
CREATE INDEX tasks_requester ON tasks (requester_id);

CREATE TABLE claims (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    state       TEXT NOT NULL CHECK (state IN ('active', 'withdrawn', 'done', 'completed', 'no_show')),
    claimed_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    done_at     TEXT,
    done_note   TEXT,
    done_photo_file_id TEXT,
    UNIQUE (task_id, member_id)
);
CREATE INDEX claims_member ON claims (member_id, state);

-- Points: append-only. A balance is the sum of its rows; members.balance is kept by the trigger,
-- and its CHECK (balance >= 0) makes an overdraft fail inside the same transaction.
CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY,
    community_id    INTEGER REFERENCES communities(id),
    member_id       INTEGER NOT NULL REFERENCES members(id),
    delta           INTEGER NOT NULL CHECK (delta <> 0),
    reason          TEXT NOT NULL,   -- task_completed, task_auto_confirmed, event_attended, revoke, redeem, refund, ...
    note            TEXT,
    task_id         INTEGER REFERENCES tasks(id),
    voucher_id      INTEGER,
    organisation_id INTEGER REFERENCES organisations(id), -- the member's organisation at the time
    idempotency_key TEXT NOT NULL UNIQUE,
    actor_id        INTEGER REFERENCES members(id),
    created_at      TEXT NOT NULL
);
CREATE INDEX ledger_member ON ledger (member_id, created_at);
CREATE INDEX ledger_community_time ON ledger (community_id, created_at);

CREATE TRIGGER ledger_balance AFTER INSERT ON ledger
BEGIN
    UPDATE members SET balance = balance + NEW.delta WHERE id = NEW.member_id;
END;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are append-only');
END;

CREATE TABLE rewards (
    id               INTEGER PRIMARY KEY,
    community_id     INTEGER NOT NULL REFERENCES communities(id),
    name_zh          TEXT NOT NULL,
    name_en          TEXT NOT NULL,
    description_zh   TEXT NOT NULL DEFAULT '',
    description_en   TEXT NOT NULL DEFAULT '',
    kind             TEXT NOT NULL CHECK (kind IN ('goods', 'service', 'honour', 'venue', 'discount')),
    cost             INTEGER NOT NULL CHECK (cost > 0),
    stock            INTEGER CHECK (stock IS NULL OR stock >= 0), -- NULL: unlimited
    monthly_limit    INTEGER,
    valid_days       INTEGER NOT NULL DEFAULT 30,
    merchant_id      INTEGER REFERENCES merchants(id),
    refund_on_expiry INTEGER NOT NULL DEFAULT 1,
    active           INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL
);

CREATE TABLE vouchers (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES communities(id),
    reward_id    INTEGER NOT NULL REFERENCES rewards(id),
    member_id    INTEGER NOT NULL REFERENCES members(id),
    code         TEXT NOT NULL UNIQUE,
    cost         INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('issued', 'used', 'cancelled', 'expired')),
    slot_start   TEXT,
    slot_end     TEXT,
    issued_at    TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    used_by      INTEGER REFERENCES members(id),
    closed_at    TEXT
);
CREATE INDEX vouchers_member ON vouchers (member_id, state);

-- Every message a state change causes, written in the same transaction; drained by a job.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    dedupe_key  TEXT UNIQUE,
    chat_id     INTEGER NOT NULL,
    member_id   INTEGER REFERENCES members(id),  -- recipient, for language and quiet hours
    kind        TEXT NOT NULL,                   -- the renderer (bot.outbox registry)
    payload     TEXT NOT NULL DEFAULT '{}',      -- JSON parameters for the renderer
    priority    INTEGER NOT NULL DEFAULT 0,      -- higher first
    not_before  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    message_id  INTEGER,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);
CREATE INDEX outbox_due ON outbox (state, not_before);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    community_id INTEGER,
    actor_id     INTEGER,       -- members.id, NULL for the system
    action       TEXT NOT NULL,
    object_type  TEXT,
    object_id    INTEGER,
    details      TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL
);
CREATE INDEX audit_object ON audit_log (object_type, object_id);

-- A conversation in a private chat: which flow, which step, what was typed so far.
CREATE TABLE dialogs (
    tg_user_id INTEGER PRIMARY KEY,
    flow       TEXT NOT NULL,
    step       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
);

-- Updates already handled (id plus a hash of the content), so a redelivered update is ignored.
CREATE TABLE processed_updates (
    update_key   TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL
);

CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
