"""A place staff took away: when and by whom (twin of storage/migrations/0270_claim_removed.sql)."""
from alembic import op

revision = "0270"
down_revision = "0260"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE claims ADD COLUMN removed_at TEXT")
    op.execute("ALTER TABLE claims ADD COLUMN removed_by BIGINT")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
