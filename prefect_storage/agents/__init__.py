"""Agents: claim scheduled flow runs from the registry and execute them."""

from __future__ import annotations

from .base import Agent
from .docker import DockerAgent
from .execution import execute_flow_run
from .local import LocalAgent

__all__ = ["Agent", "DockerAgent", "LocalAgent", "execute_flow_run"]
