"""Bitbucket Server (token) and Cloud (user and app password) over our doubles."""

from __future__ import annotations

from functools import partial

from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Bitbucket
from tests.contract.rigs import Rig, RigContext, RigSpec
from tests.contract.rigs._repos import (
    REPO_NAME,
    REPO_OWNER,
    REPO_PROJECT,
    REPO_SCRIPT_PATH,
    REPO_USER_SECRET,
    api_repo,
    repo_rig,
    token_secret,
)


def bitbucket_server_rig(ctx: RigContext) -> Rig:
    """The token in ``access_token_secret``; a payload without ``host`` has no server."""
    repo, api = api_repo(ctx)
    return repo_rig(
        ctx,
        repo,
        make=partial(
            Bitbucket, REPO_PROJECT, REPO_NAME, host=api.bitbucket_url, path=REPO_SCRIPT_PATH
        ),
        required_fields={"project", "repo", "path", "host"},
        credentials=token_secret("access_token_secret", api.token),
    )


def bitbucket_cloud_rig(ctx: RigContext) -> Rig:
    """The user name in one secret, the app password (what is broken) in another."""
    repo, api = api_repo(ctx)
    return repo_rig(
        ctx,
        repo,
        make=partial(
            Bitbucket,
            REPO_PROJECT,
            REPO_NAME,
            workspace=REPO_OWNER,
            host=api.bitbucket_cloud_url,
            path=REPO_SCRIPT_PATH,
            cloud_username_secret=REPO_USER_SECRET,
        ),
        required_fields={"project", "repo", "path"},
        credentials=token_secret(
            "cloud_app_password_secret",
            api.password,
            **{ENV_PREFIX + REPO_USER_SECRET: api.username},
        ),
    )


RIGS = [
    RigSpec("bitbucket-server", bitbucket_server_rig),
    RigSpec("bitbucket-cloud", bitbucket_cloud_rig),
]
