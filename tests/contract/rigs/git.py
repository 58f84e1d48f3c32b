"""Git over git daemon and over smart HTTP with a token."""

from __future__ import annotations

from functools import partial

from prefect_storage.storage import Git
from tests.contract.rigs import Rig, RigContext, RigSpec
from tests.contract.rigs._repos import REPO_SCRIPT_PATH, repo_rig, script_repo, token_secret

REQUIRED_FIELDS = {"flow_path", "repo"}


def git_daemon_rig(ctx: RigContext) -> Rig:
    """Anonymous ``git://``: no credentials to break."""
    repo = script_repo(ctx)
    server = ctx.fixture("git_daemon")
    name = repo.bare.name.removesuffix(".git")
    host = f"127.0.0.1:{server.port}"
    make = partial(Git, REPO_SCRIPT_PATH, name, repo_host=host, protocol="git")
    return repo_rig(ctx, repo, make=make, required_fields=REQUIRED_FIELDS)


def git_http_rig(ctx: RigContext) -> Rig:
    """Smart HTTP behind Basic auth: the token in ``git_token_secret_name``."""
    repo = script_repo(ctx)
    server = ctx.fixture("git_http")
    name = repo.bare.name.removesuffix(".git")
    host = f"127.0.0.1:{server.port}"
    return repo_rig(
        ctx,
        repo,
        make=partial(Git, REPO_SCRIPT_PATH, name, repo_host=host, protocol="http"),
        required_fields=REQUIRED_FIELDS,
        credentials=token_secret("git_token_secret_name", server.token),
    )


RIGS = [
    RigSpec("git-daemon", git_daemon_rig),
    RigSpec("git-http", git_http_rig),
]
