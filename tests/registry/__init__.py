"""Tests of the flow registry, the local agent and the CLI, on SQLite and PostgreSQL."""
