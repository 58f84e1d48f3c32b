"""Flows in importable modules: Module storage (no transport: it imports the module)."""

from .storage import Module

__all__ = ["Module"]
