"""The registry's tables, in SQLAlchemy Core: the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

flows = Table(
    "flows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("project", String(255)),
    Column("storage", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("run_config", JSON, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("sha256", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version", name="uq_flow_name_version"),
)

flow_runs = Table(
    "flow_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("flow_id", String(36), ForeignKey("flows.id"), nullable=False, index=True),
    Column("parameters", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("message", Text),
    Column("agent", String(255)),
    Column("task_states", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("claimed_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

flow_run_logs = Table(
    "flow_run_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", String(36), ForeignKey("flow_runs.id"), nullable=False, index=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("level", String(16), nullable=False),
    Column("logger", String(255), nullable=False),
    Column("message", Text, nullable=False),
)
