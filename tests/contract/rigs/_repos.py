"""Repository rigs: FLOW_SCRIPT committed to a real bare repository, served by each
backend's server."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Storage
from tests.contract.rigs import (
    FLOW_SCRIPT,
    Rig,
    RigContext,
    flow_loader,
    rebuilt,
)

# Repository storages are read-only: the rig commits FLOW_SCRIPT into a real bare repository
# (``git_repos``) on top of a first commit, and ``build()`` pins the branch's tip. So:
# - ``read_stored`` reads the script at the pinned commit (``storage.commit_sha``);
# - ``write_stored`` is None: a commit changing the file is a *new* commit, which a pinned
#   storage must not pick up (tests/repos checks that), so no stored bytes can change behind
#   the storage's back and the tampering tests do not apply;
# - ``remove_stored`` force-pushes the branch back to the first commit and purges what became
#   unreachable: the pinned commit is really gone (a commit that deletes the file would not
#   remove it: the pinned commit still has it, as tests/repos checks);
# - ``break_credentials`` names a secret holding a token the server refuses (git daemon is
#   anonymous: nothing to break); nothing is ever uploaded, so no ``fail_next_upload``.
# Servers are reached the user's way: ``repo_host``/``protocol`` for Git, ``base_url``/``host``
# for the APIs, ``client_options={"endpoint_url": ...}`` for CodeCommit.
REPO_SCRIPT_PATH = "flows/contract_flows.py"
REPO_OWNER = "acme"
REPO_PROJECT = "ACME"
REPO_NAME = "flows"
REPO_TOKEN_SECRET = "CONTRACT_REPO_TOKEN"
REPO_BAD_TOKEN_SECRET = "CONTRACT_REPO_BAD_TOKEN"
REPO_USER_SECRET = "CONTRACT_REPO_USER"
REPO_BAD_TOKEN = "not-the-repo-token"
REPO_BAD_ACCESS_KEY = "AKIANOTTHEACCESSKEY0"


def _repo_with_script(ctx: RigContext) -> Any:
    """A bare repository: a first commit, then FLOW_SCRIPT at REPO_SCRIPT_PATH on ``main``."""
    repos = ctx.fixture("git_repos")
    bare = repos.create(REPO_NAME, {"README.md": "flows for the contract suite\n"})
    base = bare.head
    bare.commit({REPO_SCRIPT_PATH: FLOW_SCRIPT}, message="add the contract flows")

    def remove(storage: Storage, location: str) -> None:
        pinned = getattr(storage, "commit_sha", None)
        assert pinned and len(pinned) == 40, f"build() pinned {pinned!r}, not a commit SHA"
        bare.force_push(bare.default_branch, base)
        bare.purge_unreachable()
        assert not bare.has_object(pinned)

    return bare, remove


REQUIRED_FIELDS = {
    "git-daemon": {"flow_path", "repo"},
    "git-http": {"flow_path", "repo"},
    "github": {"repo", "path"},
    "gitlab": {"repo", "path"},
    "bitbucket-server": {"project", "repo", "path"},
    "bitbucket-cloud": {"project", "repo", "path"},
    "codecommit": {"repo", "path"},
}


def repo_rig(ctx: RigContext, *, kind: str) -> Rig:
    """One repository backend (``kind``) over its local server; see the comment above."""
    from prefect_storage.storage import Bitbucket, CodeCommit, Git, GitHub, GitLab

    bare, remove = _repo_with_script(ctx)
    script = ctx.write_flow_script()
    env: dict[str, str] = {ENV_PREFIX + REPO_BAD_TOKEN_SECRET: REPO_BAD_TOKEN}
    sensitive: list[str] = [REPO_BAD_TOKEN]
    make: Callable[..., Storage]
    good: dict[str, Any] = {}
    bad: dict[str, Any] | None = None
    if kind in ("git-daemon", "git-http"):
        repo = bare.name.removesuffix(".git")
        if kind == "git-daemon":
            server = ctx.fixture("git_daemon")
            make = partial(Git, REPO_SCRIPT_PATH, repo, repo_host=f"127.0.0.1:{server.port}")
            good = {"protocol": "git"}
        else:
            server = ctx.fixture("git_http")
            make = partial(
                Git, REPO_SCRIPT_PATH, repo, repo_host=f"127.0.0.1:{server.port}", protocol="http"
            )
            good = {"git_token_secret_name": REPO_TOKEN_SECRET}
            bad = {"git_token_secret_name": REPO_BAD_TOKEN_SECRET}
            env[ENV_PREFIX + REPO_TOKEN_SECRET] = server.token
            sensitive.append(server.token)
    elif kind == "codecommit":
        server = ctx.fixture("codecommit_server")
        server.add_repo(REPO_NAME, bare)
        options = {"endpoint_url": server.endpoint_url, "region_name": "us-east-1"}
        make = partial(CodeCommit, REPO_NAME, REPO_SCRIPT_PATH, client_options=options)
        sensitive.append(os.environ["AWS_SECRET_ACCESS_KEY"])
    else:
        api = ctx.fixture("repo_api")
        api.add_repo(f"{REPO_OWNER}/{REPO_NAME}", bare)
        api.add_repo(f"{REPO_PROJECT}/{REPO_NAME}", bare)  # Bitbucket Server: project key
        env[ENV_PREFIX + REPO_TOKEN_SECRET] = api.token
        sensitive.append(api.token)
        good = {"access_token_secret": REPO_TOKEN_SECRET}
        bad = {"access_token_secret": REPO_BAD_TOKEN_SECRET}
        if kind == "github":
            make = partial(GitHub, f"{REPO_OWNER}/{REPO_NAME}", REPO_SCRIPT_PATH)
            good["base_url"] = bad["base_url"] = api.github_url
        elif kind == "gitlab":
            make = partial(GitLab, f"{REPO_OWNER}/{REPO_NAME}", api.gitlab_url, REPO_SCRIPT_PATH)
        elif kind == "bitbucket-server":
            make = partial(
                Bitbucket, REPO_PROJECT, REPO_NAME, host=api.bitbucket_url, path=REPO_SCRIPT_PATH
            )
        else:  # bitbucket-cloud: user name and app password
            make = partial(
                Bitbucket,
                REPO_PROJECT,
                REPO_NAME,
                workspace=REPO_OWNER,
                host=api.bitbucket_cloud_url,
                path=REPO_SCRIPT_PATH,
                cloud_username_secret=REPO_USER_SECRET,
            )
            env[ENV_PREFIX + REPO_USER_SECRET] = api.username
            env[ENV_PREFIX + REPO_TOKEN_SECRET] = api.password
            sensitive = [REPO_BAD_TOKEN, api.password]
            good = {"cloud_app_password_secret": REPO_TOKEN_SECRET}
            bad = {"cloud_app_password_secret": REPO_BAD_TOKEN_SECRET}

    def make_storage(**kwargs: Any) -> Storage:
        return make(**good, **kwargs)

    def break_credentials(storage: Storage) -> Storage:
        if kind == "codecommit":
            ctx.monkeypatch.setenv("AWS_ACCESS_KEY_ID", REPO_BAD_ACCESS_KEY)
            return rebuilt(make, storage)
        assert bad is not None
        return rebuilt(make, storage, **bad)

    return Rig(
        id=ctx.rig_id,
        required_fields=frozenset(REQUIRED_FIELDS[kind]),
        make_storage=make_storage,
        load_flow=flow_loader(script),
        script_mode=True,
        env=env,
        sensitive_values=tuple(sensitive),
        read_stored=lambda storage, location: bare.show(storage.commit_sha, location),
        remove_stored=remove,
        break_credentials=break_credentials if (bad or kind == "codecommit") else None,
    )
