-- Running totals of points earned, per community, period and person or organisation, so the
-- leaderboard reads ten index rows instead of summing the ledger (bench/RESULTS.md, "Scale":
-- 411 ms p99 at 1,000,000 ledger rows before this). Kept by a trigger on the append-only ledger,
-- like members.balance. "Earned" is what the leaderboard has always counted: credits for tasks,
-- events and resolved cases, minus revokes; spending does not count.
-- period: 'all', 'M2026-11' (local month) or 'W2026-11-23' (local week, by its Monday), in the
-- community's time zone, named by linli_month/linli_week (storage/periods.py).
CREATE TABLE earning_totals (
    community_id INTEGER NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('m', 'o')),  -- m: member, o: organisation
    subject_id   INTEGER NOT NULL,
    period       TEXT NOT NULL,
    pts          INTEGER NOT NULL,
    PRIMARY KEY (community_id, scope, period, subject_id)
) WITHOUT ROWID;
CREATE INDEX earning_totals_rank ON earning_totals (community_id, scope, period, pts DESC, subject_id);

CREATE TRIGGER ledger_earning_totals AFTER INSERT ON ledger
WHEN NEW.community_id IS NOT NULL
     AND NEW.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke')
BEGIN
    INSERT INTO earning_totals (community_id, scope, subject_id, period, pts)
    SELECT NEW.community_id, s.scope, s.subject_id, p.period, NEW.delta
    FROM (SELECT 'm' AS scope, NEW.member_id AS subject_id
          UNION ALL SELECT 'o', NEW.organisation_id WHERE NEW.organisation_id IS NOT NULL) AS s,
         (SELECT 'all' AS period
          UNION ALL SELECT linli_month(NEW.created_at, tz) FROM (SELECT timezone AS tz FROM communities WHERE id = NEW.community_id)
          UNION ALL SELECT linli_week(NEW.created_at, tz) FROM (SELECT timezone AS tz FROM communities WHERE id = NEW.community_id)) AS p
    WHERE true
    ON CONFLICT (community_id, scope, period, subject_id) DO UPDATE SET pts = pts + excluded.pts;
END;

-- What was earned before this migration.
INSERT INTO earning_totals (community_id, scope, subject_id, period, pts)
SELECT community_id, scope, subject_id, period, SUM(delta) FROM (
    SELECT l.community_id AS community_id, 'm' AS scope, l.member_id AS subject_id, 'all' AS period, l.delta AS delta
    FROM ledger l JOIN communities c ON c.id = l.community_id
    WHERE l.community_id IS NOT NULL AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke')
    UNION ALL
    SELECT l.community_id AS community_id, 'm' AS scope, l.member_id AS subject_id, linli_month(l.created_at, c.timezone) AS period, l.delta AS delta
    FROM ledger l JOIN communities c ON c.id = l.community_id
    WHERE l.community_id IS NOT NULL AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke')
    UNION ALL
    SELECT l.community_id AS community_id, 'm' AS scope, l.member_id AS subject_id, linli_week(l.created_at, c.timezone) AS period, l.delta AS delta
    FROM ledger l JOIN communities c ON c.id = l.community_id
    WHERE l.community_id IS NOT NULL AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke')
    UNION ALL
    SELECT l.community_id AS community_id, 'o' AS scope, l.organisation_id AS subject_id, 'all' AS period, l.delta AS delta
    FROM ledger l JOIN communities c ON c.id = l.community_id
    WHERE l.community_id IS NOT NULL AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke') AND l.organisation_id IS NOT NULL
    UNION ALL
    SELECT l.community_id AS community_id, 'o' AS scope, l.organisation_id AS subject_id, linli_month(l.created_at, c.timezone) AS period, l.delta AS delta
    FROM ledger l JOIN communities c ON c.id = l.community_id
    WHERE l.community_id IS NOT NULL AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke') AND l.organisation_id IS NOT NULL
    UNION ALL
    SELECT l.community_id AS community_id, 'o' AS scope, l.organisation_id AS subject_id, linli_week(l.created_at, c.timezone) AS period, l.delta AS delta
    FROM ledger l JOIN communities c ON c.id = l.community_id
    WHERE l.community_id IS NOT NULL AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke') AND l.organisation_id IS NOT NULL
) GROUP BY community_id, scope, subject_id, period;
