"""A member's open waiting-list entries, for /mytasks (twin of storage/migrations/0250_waitlist_member.sql)."""
from alembic import op

revision = "0250"
down_revision = "0230"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX waitlist_member ON waitlist (member_id, id) WHERE state IN ('waiting', 'offered')")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
