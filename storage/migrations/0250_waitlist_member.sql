-- /mytasks lists a member's open entries on waiting lists (issue 21): read from this partial index,
-- whatever the history of the lists.
CREATE INDEX waitlist_member ON waitlist (member_id, id) WHERE state IN ('waiting', 'offered');
