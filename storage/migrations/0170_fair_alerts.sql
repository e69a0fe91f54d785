-- Fair urgent alerts: when each on-duty volunteer was last pinged about an urgent request, and how
-- many pings they had on their community's local day ``urgent_day`` (YYYY-MM-DD). The selection
-- (least recently pinged first, a daily cap) is in bot/services/alerts.py.
ALTER TABLE members ADD COLUMN urgent_last_at TEXT;
ALTER TABLE members ADD COLUMN urgent_day TEXT;
ALTER TABLE members ADD COLUMN urgent_today INTEGER NOT NULL DEFAULT 0;
