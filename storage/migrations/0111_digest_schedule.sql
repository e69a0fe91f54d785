-- When each daily digest is next due (UTC, storage.timeutil format), so the digest sweep reads only
-- the members and communities due now instead of every member every 30 s (0.7 / 3.1 / 13 s of CPU
-- per sweep at 2k / 10k / 50k members before). NULL: no digest (not registered, deleted, neither
-- staff nor a volunteer with the digest on, or the community is inactive). '' (sorts before any
-- time): work it out again at the next sweep. bot.services.digest.sweep_digests advances it after
-- each decision; the triggers below reset it to '' whenever what it depends on changes, whatever
-- code changed it.
ALTER TABLE members ADD COLUMN digest_next_at TEXT DEFAULT '';
ALTER TABLE communities ADD COLUMN digest_next_at TEXT DEFAULT '';
CREATE INDEX members_digest_due ON members (digest_next_at) WHERE digest_next_at IS NOT NULL;
CREATE INDEX communities_digest_due ON communities (digest_next_at) WHERE digest_next_at IS NOT NULL;

CREATE TRIGGER members_digest_reschedule
AFTER UPDATE OF community_id, is_staff, is_volunteer, digest_enabled, digest_hour, registered_at, deleted_at ON members
WHEN NEW.community_id IS NOT OLD.community_id OR NEW.is_staff IS NOT OLD.is_staff
  OR NEW.is_volunteer IS NOT OLD.is_volunteer OR NEW.digest_enabled IS NOT OLD.digest_enabled
  OR NEW.digest_hour IS NOT OLD.digest_hour OR NEW.registered_at IS NOT OLD.registered_at
  OR NEW.deleted_at IS NOT OLD.deleted_at
BEGIN
    UPDATE members SET digest_next_at = '' WHERE id = NEW.id;
END;

CREATE TRIGGER communities_digest_reschedule
AFTER UPDATE OF timezone, digest_time, active ON communities
WHEN NEW.timezone IS NOT OLD.timezone OR NEW.digest_time IS NOT OLD.digest_time OR NEW.active IS NOT OLD.active
BEGIN
    UPDATE communities SET digest_next_at = '' WHERE id = NEW.id;
    UPDATE members SET digest_next_at = '' WHERE community_id = NEW.id;
END;
