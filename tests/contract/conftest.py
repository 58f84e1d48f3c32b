"""The ``rig`` fixture: every contract test runs once per entry of ``rigs.RIGS``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.rigs import RIGS, Rig, RigContext, RigSpec


@pytest.fixture(params=[pytest.param(spec, id=spec.id, marks=spec.marks) for spec in RIGS])
def rig(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    spec: RigSpec = request.param
    folder = tmp_path / "rig"
    saved_path = list(sys.path)
    ctx = RigContext(spec.id, folder, monkeypatch, request.getfixturevalue)
    built = spec.factory(ctx)
    for name, value in built.env.items():
        monkeypatch.setenv(name, value)
    yield built
    # Loading scripts puts their folder on sys.path, and Module rigs import from the rig's
    # folder: leave neither behind for the next test.
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).is_relative_to(folder):
            del sys.modules[name]
