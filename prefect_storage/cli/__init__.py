"""The ``prefect-storage`` command: :func:`main` (in :mod:`.app`) and one module per command
group, each imported here for the commands it adds."""

from __future__ import annotations

from . import agent, demo, flows, register, registry, secret
from .app import echo_json, main, parse_parameters

__all__ = [
    "agent",
    "demo",
    "echo_json",
    "flows",
    "main",
    "parse_parameters",
    "register",
    "registry",
    "secret",
]
