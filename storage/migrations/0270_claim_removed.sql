-- A place staff took away (/volunteers → "✖ Remove", bot/services/roster.py): when, and by which staff
-- member (NULL: a super-admin with no member row). Such a claim is "withdrawn" like one the volunteer
-- gave back, but only a volunteer who withdrew may claim the event again or join its waiting list.
ALTER TABLE claims ADD COLUMN removed_at TEXT;
ALTER TABLE claims ADD COLUMN removed_by INTEGER;
