"""GitHub over our GitHub REST double."""

from __future__ import annotations

from functools import partial

from tests.contract.rigs import RigSpec
from tests.contract.rigs._repos import repo_rig

RIGS = [
    RigSpec("github", partial(repo_rig, kind="github")),
]
