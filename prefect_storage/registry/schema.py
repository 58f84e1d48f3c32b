"""The registry's tables, in SQLAlchemy Core: the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

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
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


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
    Column("created_at", UTCDateTime(), nullable=False),
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
    Column("created_at", UTCDateTime(), nullable=False),
    Column("claimed_at", UTCDateTime()),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("lease_expires_at", UTCDateTime(), index=True),
)

flow_run_logs = Table(
    "flow_run_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", String(36), ForeignKey("flow_runs.id"), nullable=False, index=True),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("level", String(16), nullable=False),
    Column("logger", String(255), nullable=False),
    Column("message", Text, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
)
