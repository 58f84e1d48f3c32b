"""GitLab over our GitLab REST double."""

from __future__ import annotations

from functools import partial

from prefect_storage.storage import GitLab
from tests.contract.rigs import Rig, RigContext, RigSpec
from tests.contract.rigs._repos import (
    REPO_NAME,
    REPO_OWNER,
    REPO_SCRIPT_PATH,
    api_repo,
    repo_rig,
    token_secret,
)


def gitlab_rig(ctx: RigContext) -> Rig:
    repo, api = api_repo(ctx)
    return repo_rig(
        ctx,
        repo,
        make=partial(GitLab, f"{REPO_OWNER}/{REPO_NAME}", api.gitlab_url, REPO_SCRIPT_PATH),
        required_fields={"repo", "path"},
        credentials=token_secret("access_token_secret", api.token),
    )


RIGS = [
    RigSpec("gitlab", gitlab_rig),
]
