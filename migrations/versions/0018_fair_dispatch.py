"""Fair sharing: a queued task is either handed out to the workers (`dispatched_at` set) or
waits its turn in the database (`dispatched_at` null); partial indexes find the waiting ones
by queue and account, and count the handed-out ones, at each submission and each start.

On PostgreSQL a submission weighs its queue's state across every account, which the API's
role cannot see row by row (row-level security): `pixelfleet_queue_state(queue)` answers the
two numbers it needs, and nothing else, as the tables' owner.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = "status = 'queued' AND dispatched_at IS NULL"
HANDED_OUT = "status = 'queued' AND dispatched_at IS NOT NULL"


ROLE = "pixelfleet_api"
QUEUE_STATE = """
CREATE FUNCTION pixelfleet_queue_state(q text, OUT handed_out bigint, OUT held boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT
    (SELECT count(*) FROM tasks
      WHERE status = 'queued' AND dispatched_at IS NOT NULL
        AND ((q IS NULL AND queue IS NULL) OR queue = q)),
    EXISTS (SELECT 1 FROM tasks
      WHERE status = 'queued' AND dispatched_at IS NULL
        AND ((q IS NULL AND queue IS NULL) OR queue = q))
$$
"""


def upgrade() -> None:
    op.create_index(
        "ix_tasks_held",
        "tasks",
        ["queue", "user_id", "priority", "created_at"],
        unique=False,
        sqlite_where=sa.text(HELD),
        postgresql_where=sa.text(HELD),
    )
    op.create_index(
        "ix_tasks_handed_out",
        "tasks",
        ["dispatched_at"],
        unique=False,
        sqlite_where=sa.text(HANDED_OUT),
        postgresql_where=sa.text(HANDED_OUT),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(QUEUE_STATE)
        op.execute("REVOKE ALL ON FUNCTION pixelfleet_queue_state(text) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION pixelfleet_queue_state(text) TO {ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION pixelfleet_queue_state(text)")
    op.drop_index("ix_tasks_handed_out", table_name="tasks")
    op.drop_index("ix_tasks_held", table_name="tasks")
