"""The schema of the first registries (before schema versions): flows, flow runs, their logs.

Frozen: registries made before ``alembic_version`` existed have exactly these tables and are
stamped 0001 without running this. Types are spelled out here rather than imported from
``schema.py``, which follows the head revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("project", sa.String(255)),
        sa.Column("storage", sa.JSON, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("run_config", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_flow_name_version"),
    )
    op.create_index("ix_flows_name", "flows", ["name"])
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("flow_id", sa.String(36), sa.ForeignKey("flows.id"), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("agent", sa.String(255)),
        sa.Column("task_states", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_flow_runs_flow_id", "flow_runs", ["flow_id"])
    op.create_index("ix_flow_runs_state", "flow_runs", ["state"])
    op.create_table(
        "flow_run_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow_run_id", sa.String(36), sa.ForeignKey("flow_runs.id"), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("logger", sa.String(255), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_flow_run_logs_flow_run_id", "flow_run_logs", ["flow_run_id"])


def downgrade() -> None:
    op.drop_table("flow_run_logs")
    op.drop_table("flow_runs")
    op.drop_table("flows")
