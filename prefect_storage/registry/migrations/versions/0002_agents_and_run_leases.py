"""Agents and flow-run leases: the ``agents`` table and ``flow_runs.lease_expires_at``.

An agent records itself and its heartbeats in ``agents``; a claimed run's lease says until
when its agent vouches for it, so a run whose agent died can be found and failed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite alters a table in place only for some changes (it copies otherwise).
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
        batch.create_index("ix_flow_runs_lease_expires_at", ["lease_expires_at"])
    op.create_table(
        "agents",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agents")
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_index("ix_flow_runs_lease_expires_at")
        batch.drop_column("lease_expires_at")
