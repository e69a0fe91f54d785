"""Fair urgent alerts: each member's last urgent ping and the day's count (twin of storage/migrations/0170_fair_alerts.sql)."""
from alembic import op

revision = "0170"
down_revision = "0150"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE members ADD COLUMN urgent_last_at TEXT")
    op.execute("ALTER TABLE members ADD COLUMN urgent_day TEXT")
    op.execute("ALTER TABLE members ADD COLUMN urgent_today INTEGER NOT NULL DEFAULT 0")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
