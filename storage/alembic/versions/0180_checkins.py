"""Check-in at the venue: an event's check-in code and who checked in (twin of
storage/migrations/0180_checkins.sql)."""
from alembic import op

revision = "0180"
down_revision = "0170"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE checkin_codes (
    task_id    BIGINT PRIMARY KEY REFERENCES tasks(id),
    token      TEXT NOT NULL UNIQUE,
    short_code TEXT NOT NULL UNIQUE,
    opened_by  BIGINT REFERENCES members(id),
    opened_at  TEXT NOT NULL
)""")
    op.execute("""CREATE TABLE checkins (
    task_id       BIGINT NOT NULL REFERENCES tasks(id),
    member_id     BIGINT NOT NULL REFERENCES members(id),
    via           TEXT NOT NULL,
    checked_in_at TEXT NOT NULL,
    PRIMARY KEY (task_id, member_id)
)""")
    op.execute("CREATE INDEX checkins_member ON checkins (member_id)")


def downgrade() -> None:
    raise NotImplementedError("Linli's schema only moves forward (restore a backup instead)")
