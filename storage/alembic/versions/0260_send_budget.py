"""Telegram's limits shared by several instances (twin of storage/migrations/0260_send_budget.sql)."""
from alembic import op

revision = "0260"
down_revision = "0250"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE send_budget (
    chat_id       BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (chat_id, window_start)
)""")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
