-- When a volunteer was asked (once, at their first claim or before their first honour) whether
-- their honours may be announced in the group; NULL: not asked yet.
ALTER TABLE members ADD COLUMN announce_asked_at TEXT;
