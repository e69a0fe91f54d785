"""Leases: a job only one process may do at a time (twin of storage/migrations/0210_leases.sql)."""
from alembic import op

revision = "0210"
down_revision = "0200"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    taken_at    TEXT NOT NULL,
    expires_at  TEXT NOT NULL
)""")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
