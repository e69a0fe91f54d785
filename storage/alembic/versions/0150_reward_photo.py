"""A reward's photo and the reward dialog's one-time key (twin of storage/migrations/0150_reward_photo.sql)."""
from alembic import op

revision = "0150"
down_revision = "0140"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rewards ADD COLUMN photo_file_id TEXT")
    op.execute("ALTER TABLE rewards ADD COLUMN add_key TEXT")
    op.execute("CREATE UNIQUE INDEX rewards_add_key ON rewards (add_key) WHERE add_key IS NOT NULL")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
