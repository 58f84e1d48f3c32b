"""Git over git daemon and over smart HTTP with a token."""

from __future__ import annotations

from functools import partial

from tests.contract.rigs import RigSpec
from tests.contract.rigs._repos import repo_rig

RIGS = [
    RigSpec("git-daemon", partial(repo_rig, kind="git-daemon")),
    RigSpec("git-http", partial(repo_rig, kind="git-http")),
]
