"""Bitbucket Server (token) and Cloud (user and app password) over our doubles."""

from __future__ import annotations

from functools import partial

from tests.contract.rigs import RigSpec
from tests.contract.rigs._repos import repo_rig

RIGS = [
    RigSpec("bitbucket-server", partial(repo_rig, kind="bitbucket-server")),
    RigSpec("bitbucket-cloud", partial(repo_rig, kind="bitbucket-cloud")),
]
