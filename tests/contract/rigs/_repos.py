"""Repository rigs: FLOW_SCRIPT committed to a real bare repository, served by each
backend's server. Each rig module serves the repository its own way and builds its rig with
:func:`repo_rig`, passing only what differs."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Storage
from tests.contract.rigs import FLOW_SCRIPT, Rig, RigContext, flow_loader, rebuilt

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


@dataclass
class ScriptRepo:
    """The bare repository a rig serves: a first commit, then FLOW_SCRIPT on ``main``."""

    bare: Any
    base: str

    def remove(self, storage: Storage, location: str) -> None:
        """The pinned commit force-pushed away and garbage-collected."""
        pinned = getattr(storage, "commit_sha", None)
        assert pinned and len(pinned) == 40, f"build() pinned {pinned!r}, not a commit SHA"
        self.bare.force_push(self.bare.default_branch, self.base)
        self.bare.purge_unreachable()
        assert not self.bare.has_object(pinned)


def script_repo(ctx: RigContext) -> ScriptRepo:
    repos = ctx.fixture("git_repos")
    bare = repos.create(REPO_NAME, {"README.md": "flows for the contract suite\n"})
    base = bare.head
    bare.commit({REPO_SCRIPT_PATH: FLOW_SCRIPT}, message="add the contract flows")
    return ScriptRepo(bare, base)


def api_repo(ctx: RigContext) -> tuple[ScriptRepo, Any]:
    """The script repository served by the GitHub/GitLab/Bitbucket API double, and it."""
    repo = script_repo(ctx)
    api = ctx.fixture("repo_api")
    api.add_repo(f"{REPO_OWNER}/{REPO_NAME}", repo.bare)
    api.add_repo(f"{REPO_PROJECT}/{REPO_NAME}", repo.bare)  # Bitbucket Server: project key
    return repo, api


@dataclass
class Credentials:
    """How a rig's storages authenticate: the kwargs of a good and of a refused credential,
    the environment holding their values, and the values that must never show."""

    good: dict[str, Any] = field(default_factory=dict)
    bad: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    sensitive: Collection[str] = ()


def token_secret(argument: str, token: str, **env: str) -> Credentials:
    """``argument`` names a secret holding ``token``; the refused one names a secret holding
    REPO_BAD_TOKEN. ``env`` adds environment (another secret the storage reads)."""
    return Credentials(
        good={argument: REPO_TOKEN_SECRET},
        bad={argument: REPO_BAD_TOKEN_SECRET},
        env={ENV_PREFIX + REPO_TOKEN_SECRET: token, **env},
        sensitive=(token,),
    )


def repo_rig(
    ctx: RigContext,
    repo: ScriptRepo,
    *,
    make: Callable[..., Storage],
    required_fields: Collection[str],
    credentials: Credentials | None = None,
    break_credentials: Callable[[Storage], Storage] | None = None,
) -> Rig:
    """A rig over ``repo`` whose storages ``make(**credentials.good, **kwargs)`` builds; see
    the comment above. Credentials are broken by ``break_credentials``, else by rebuilding
    with ``credentials.bad``."""
    credentials = credentials or Credentials()
    bad = credentials.bad
    if break_credentials is None and bad is not None:

        def break_credentials(storage: Storage) -> Storage:
            return rebuilt(make, storage, **bad)

    def make_storage(**kwargs: Any) -> Storage:
        return make(**credentials.good, **kwargs)

    return Rig(
        id=ctx.rig_id,
        required_fields=frozenset(required_fields),
        make_storage=make_storage,
        load_flow=flow_loader(ctx.write_flow_script()),
        script_mode=True,
        env={ENV_PREFIX + REPO_BAD_TOKEN_SECRET: REPO_BAD_TOKEN, **credentials.env},
        sensitive_values=(REPO_BAD_TOKEN, *credentials.sensitive),
        read_stored=lambda storage, location: repo.bare.show(storage.commit_sha, location),
        remove_stored=repo.remove,
        break_credentials=break_credentials,
    )
