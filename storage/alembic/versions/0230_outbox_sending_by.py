"""Which instance marked an outbox row sending (twin of storage/migrations/0230_outbox_sending_by.sql)."""
from alembic import op

revision = "0230"
down_revision = "0220"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox ADD COLUMN sending_by TEXT")
    op.execute("CREATE INDEX outbox_sending ON outbox (sending_by) WHERE state = 'sending'")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
