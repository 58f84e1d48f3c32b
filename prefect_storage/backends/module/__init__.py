"""Flows in importable modules: Module storage."""

from ...storage.module import Module

__all__ = [
    "Module",
]
