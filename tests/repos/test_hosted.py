"""``GitHub``, ``GitLab``, ``Bitbucket`` (Server and Cloud) and ``CodeCommit`` storages, each
through its official client library, against the local API fakes serving real bare
repositories (``repo_api``, ``codecommit_server``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from prefect_storage import context
from prefect_storage.engine.flow import Flow
from prefect_storage.exceptions import (
    BackendAuthError,
    FlowNotFoundError,
    FlowStorageError,
    StorageConfigError,
)
from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Bitbucket, CodeCommit, GitHub, GitLab, Storage
from tests.repos.conftest import FAST, answer_script, built, result_of
from tests.servers.codecommit import CodeCommitServer
from tests.servers.git import BareRepo, GitRepoFactory
from tests.servers.repo_api import RepoAPIServer
from tests.servers.s3 import AWS_ACCESS_KEY_ID, AWS_REGION

LocalFlow = Callable[[str, str], Flow]
KINDS = ("github", "gitlab", "bitbucket-server", "bitbucket-cloud", "codecommit")
OWNER, PROJECT, NAME = "acme", "ACME", "flows"
TOKEN_SECRET, BAD_SECRET, USER_SECRET = "REPO_TOKEN", "REPO_BAD_TOKEN", "REPO_USER"


@dataclass
class Hosted:
    """One hosted backend: serves bare repositories and makes storages the user's way."""

    kind: str
    api: Any
    monkeypatch: pytest.MonkeyPatch
    made: list[Storage] = field(default_factory=list)

    def serve(self, bare: BareRepo, name: str = NAME) -> None:
        if self.kind == "codecommit":
            self.api.add_repo(name, bare)
            return
        self.api.add_repo(f"{OWNER}/{name}", bare)
        self.api.add_repo(f"{PROJECT}/{name}", bare)
        self.secret(TOKEN_SECRET, self.password if self.kind == "bitbucket-cloud" else self.token)
        self.secret(BAD_SECRET, "not-the-token")
        if self.kind == "bitbucket-cloud":
            self.secret(USER_SECRET, self.api.username)

    @property
    def token(self) -> str:
        return str(self.api.token)

    @property
    def password(self) -> str:
        return str(self.api.password)

    def secret(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(ENV_PREFIX + name, value)

    def storage(
        self,
        path: str | None = "flow.py",
        ref: str | None = None,
        name: str = NAME,
        bad_token: bool = False,
        **kwargs: Any,
    ) -> Storage:
        token = BAD_SECRET if bad_token else TOKEN_SECRET
        storage: Storage
        if self.kind == "github":
            kwargs.setdefault("base_url", self.api.github_url)
            storage = GitHub(f"{OWNER}/{name}", path, ref=ref, access_token_secret=token, **kwargs)
        elif self.kind == "gitlab":
            storage = GitLab(
                f"{OWNER}/{name}", self.api.gitlab_url, path, ref, access_token_secret=token
            )
        elif self.kind == "bitbucket-server":
            storage = Bitbucket(
                PROJECT, name, host=self.api.bitbucket_url, path=path, ref=ref,
                access_token_secret=token,
            )  # fmt: skip
        elif self.kind == "bitbucket-cloud":
            storage = Bitbucket(
                PROJECT, name, workspace=OWNER, host=self.api.bitbucket_cloud_url, path=path,
                ref=ref, cloud_username_secret=USER_SECRET, cloud_app_password_secret=token,
            )  # fmt: skip
        else:
            if bad_token:
                self.monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTTHERIGHTKEY00")
            options = {"endpoint_url": self.api.endpoint_url, "region_name": AWS_REGION}
            storage = CodeCommit(name, path, commit=ref, client_options=options)
        storage.retry_policy = FAST
        self.made.append(storage)
        return storage


@pytest.fixture(params=KINDS)
def hosted(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Hosted:
    kind = request.param
    api = request.getfixturevalue("codecommit_server" if kind == "codecommit" else "repo_api")
    return Hosted(kind, api, monkeypatch)


def refs_repo(git_repos: GitRepoFactory) -> tuple[BareRepo, dict[str, tuple[str | None, str, str]]]:
    """A repository whose default branch is ``trunk``, with a branch ``dev``, an annotated tag
    ``v1`` on the first commit; case -> (ref, the commit it pins, what the flow returns)."""
    bare = git_repos.create("flows", {"flow.py": answer_script("first")}, default_branch="trunk")
    first = bare.head
    assert first is not None
    bare.tag("v1", annotated=True)
    bare.branch("dev")
    dev = bare.commit({"flow.py": answer_script("dev")}, branch="dev")
    tip = bare.commit({"flow.py": answer_script("trunk")})
    return bare, {
        "default": (None, tip, "trunk"),
        "branch": ("dev", dev, "dev"),
        "tag": ("v1", first, "first"),
        "sha": (first, first, "first"),
    }


# -- refs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["default", "branch", "tag", "sha"])
def test_ref_is_read_and_pinned_to_its_commit(
    hosted: Hosted, git_repos: GitRepoFactory, local_flow: LocalFlow, case: str
) -> None:
    bare, cases = refs_repo(git_repos)
    ref, sha, value = cases[case]
    hosted.serve(bare)
    storage = built(hosted.storage(ref=ref), local_flow(answer_script("x"), "answer-flow"))

    assert result_of(storage.get_flow("answer-flow"), "answer") == value
    # build() resolved the ref to the commit SHA, and that is what is serialized.
    assert storage.commit_sha == sha
    assert storage.serialize()["commit_sha"] == sha

    # The ref moves on: the storage (and its deserialized copy) still read the pinned commit.
    moved = "dev" if case == "branch" else "trunk"
    bare.commit({"flow.py": answer_script("moved")}, branch=moved)
    if case == "tag":
        bare.delete_ref("refs/tags/v1")
        bare.tag("v1", annotated=True)
    fresh = Storage.deserialize(json.loads(json.dumps(storage.serialize())))
    assert result_of(fresh.get_flow("answer-flow"), "answer") == value


def test_upper_case_sha_ref(
    hosted: Hosted, git_repos: GitRepoFactory, local_flow: LocalFlow
) -> None:
    bare, cases = refs_repo(git_repos)
    _, first, value = cases["sha"]
    hosted.serve(bare)
    storage = built(
        hosted.storage(ref=first.upper()), local_flow(answer_script("x"), "answer-flow")
    )
    assert result_of(storage.get_flow("answer-flow"), "answer") == value
    assert str(storage.commit_sha).lower() == first


# -- errors -----------------------------------------------------------------------------------
def _build_error(storage: Storage, flow: Flow) -> BaseException:
    storage.add_flow(flow)
    with pytest.raises(FlowStorageError) as caught:
        storage.build()
    return caught.value


@pytest.mark.parametrize(
    ("case", "expected_type", "named"),
    [
        ("repo", FlowNotFoundError, "no-such-repo"),
        ("ref", FlowNotFoundError, "no-such-ref"),
        ("file", FlowNotFoundError, "missing.py"),
        ("token", BackendAuthError, None),
    ],
)
def test_errors_are_typed(
    hosted: Hosted,
    git_repos: GitRepoFactory,
    local_flow: LocalFlow,
    case: str,
    expected_type: type[Exception],
    named: str | None,
) -> None:
    bare, _ = refs_repo(git_repos)
    hosted.serve(bare)
    storage = {
        "repo": lambda: hosted.storage(name="no-such-repo"),
        "ref": lambda: hosted.storage(ref="no-such-ref"),
        "file": lambda: hosted.storage(path="missing.py"),
        "token": lambda: hosted.storage(bad_token=True),
    }[case]()
    error = _build_error(storage, local_flow(answer_script("x"), "answer-flow"))

    assert isinstance(error, expected_type), repr(error)
    if named:
        assert named in str(error)
    assert "not-the-token" not in str(error)
    if case == "token":
        assert isinstance(error, PermissionError)


def test_path_less_storages_fail_at_construction(repo_api: RepoAPIServer) -> None:
    with pytest.raises(StorageConfigError, match="path"):
        GitLab("acme/flows", host=repo_api.gitlab_url)
    with pytest.raises(StorageConfigError, match="path"):
        Bitbucket("ACME", "flows", host=repo_api.bitbucket_url)
    with pytest.raises(StorageConfigError, match="path"):
        Bitbucket("ACME", "flows", workspace="acme")
    with pytest.raises(StorageConfigError, match="path"):
        CodeCommit("flows")
    with pytest.raises(StorageConfigError, match="path"):
        GitHub("acme/flows", None)  # type: ignore[arg-type]


def test_bitbucket_constructor_errors() -> None:
    with pytest.raises(StorageConfigError, match="host"):
        Bitbucket("ACME", "flows", path="flow.py")
    with pytest.raises(StorageConfigError, match="access_token_secret"):
        Bitbucket("ACME", "flows", workspace="acme", path="flow.py", access_token_secret="T")


# -- GitHub -----------------------------------------------------------------------------------
@pytest.fixture
def served(git_repos: GitRepoFactory, repo_api: RepoAPIServer) -> BareRepo:
    """A private ``acme/flows`` (Bitbucket Server: ``ACME/flows``) on every API of repo_api."""
    bare = git_repos.create("flows", {"flow.py": answer_script("v1")})
    repo_api.add_repo("acme/flows", bare)
    repo_api.add_repo("ACME/flows", bare)
    return bare


@pytest.mark.parametrize("where", ["secret", "context", "env"])
def test_github_token_lookup(
    served: BareRepo,
    repo_api: RepoAPIServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    kwargs: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    if where == "secret":
        monkeypatch.setenv(ENV_PREFIX + "MY_GITHUB", repo_api.token)
        kwargs["access_token_secret"] = "MY_GITHUB"
    elif where == "context":
        secrets["GITHUB_ACCESS_TOKEN"] = repo_api.token
    else:
        monkeypatch.setenv("GITHUB_ACCESS_TOKEN", repo_api.token)
    flow = local_flow(answer_script("x"), "answer-flow")
    with context(secrets=secrets):
        storage = built(
            GitHub("acme/flows", "flow.py", base_url=repo_api.github_url, **kwargs), flow
        )
        loaded = Storage.deserialize(storage.serialize()).get_flow("answer-flow")
    assert result_of(loaded, "answer") == "v1"
    sent = [r.headers.get("Authorization") for r in repo_api.requests_for("github")]
    assert sent and set(sent) == {f"token {repo_api.token}"}


def test_github_anonymous_reads_public_repositories_only(
    git_repos: GitRepoFactory, repo_api: RepoAPIServer, local_flow: LocalFlow
) -> None:
    bare = git_repos.create("flows", {"flow.py": answer_script("public")})
    repo_api.add_repo("acme/public", bare, public=True)
    repo_api.add_repo("acme/private", bare)
    flow = local_flow(answer_script("x"), "answer-flow")

    storage = built(GitHub("acme/public", "flow.py", base_url=repo_api.github_url), flow)
    assert result_of(storage.get_flow("answer-flow"), "answer") == "public"
    private = GitHub("acme/private", "flow.py", base_url=repo_api.github_url)
    assert isinstance(_build_error(private, flow), FlowNotFoundError)


@pytest.mark.parametrize("suffix", ["", "/api/v3"], ids=["root", "enterprise-api-v3"])
def test_github_base_url(
    served: BareRepo, repo_api: RepoAPIServer, local_flow: LocalFlow, suffix: str
) -> None:
    storage = GitHub("acme/flows", "flow.py", base_url=repo_api.github_url + suffix)
    with context(secrets={"GITHUB_ACCESS_TOKEN": repo_api.token}):
        built(storage, local_flow(answer_script("x"), "answer-flow"))
        flow = Storage.deserialize(storage.serialize()).get_flow("answer-flow")
    assert result_of(flow, "answer") == "v1"
    assert storage.serialize()["base_url"] == repo_api.github_url + suffix
    paths = [r.path for r in repo_api.requests_for("github")]
    assert paths and all(p.startswith(f"{suffix}/repos/acme/flows") for p in paths)


def test_github_file_over_the_contents_api_limit(
    served: BareRepo, repo_api: RepoAPIServer, local_flow: LocalFlow
) -> None:
    repo_api.github_max_content = 64  # larger files come without content: read as a blob
    with context(secrets={"GITHUB_ACCESS_TOKEN": repo_api.token}):
        storage = built(
            GitHub("acme/flows", "flow.py", base_url=repo_api.github_url),
            local_flow(answer_script("x"), "answer-flow"),
        )
        assert result_of(storage.get_flow("answer-flow"), "answer") == "v1"
    assert any("/git/blobs/" in r.path for r in repo_api.requests_for("github"))


# -- GitLab -----------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["secret", "context", "env"])
def test_gitlab_token_lookup(
    served: BareRepo,
    repo_api: RepoAPIServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    kwargs: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    if where == "secret":
        monkeypatch.setenv(ENV_PREFIX + "MY_GITLAB", repo_api.token)
        kwargs["access_token_secret"] = "MY_GITLAB"
    elif where == "context":
        secrets["GITLAB_ACCESS_TOKEN"] = repo_api.token
    else:
        monkeypatch.setenv("GITLAB_ACCESS_TOKEN", repo_api.token)
    with context(secrets=secrets):
        storage = built(
            GitLab("acme/flows", host=repo_api.gitlab_url, path="flow.py", **kwargs),
            local_flow(answer_script("x"), "answer-flow"),
        )
        loaded = Storage.deserialize(storage.serialize()).get_flow("answer-flow")
    assert result_of(loaded, "answer") == "v1"
    sent = [r.headers.get("PRIVATE-TOKEN") for r in repo_api.requests_for("gitlab")]
    assert sent and set(sent) == {repo_api.token}
    assert not repo_api.token_seen_in_urls()


@pytest.mark.parametrize("how", ["numeric-id", "nested-path"])
def test_gitlab_repo_by_id_or_nested_path(
    git_repos: GitRepoFactory, repo_api: RepoAPIServer, local_flow: LocalFlow, how: str
) -> None:
    bare = git_repos.create("flows", {"deep/flow.py": answer_script("gitlab")})
    hosted = repo_api.add_repo("group/sub/flows", bare)
    repo = str(hosted.id) if how == "numeric-id" else "group/sub/flows"
    with context(secrets={"GITLAB_ACCESS_TOKEN": repo_api.token}):
        storage = built(
            GitLab(repo, host=repo_api.gitlab_url, path="deep/flow.py"),
            local_flow(answer_script("x"), "answer-flow"),
        )
        loaded = Storage.deserialize(storage.serialize()).get_flow("answer-flow")
    assert storage.commit_sha == bare.head
    assert result_of(loaded, "answer") == "gitlab"


# -- Bitbucket ----------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["secret", "context", "env"])
def test_bitbucket_server_token_lookup(
    served: BareRepo,
    repo_api: RepoAPIServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    kwargs: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    if where == "secret":
        monkeypatch.setenv(ENV_PREFIX + "MY_BITBUCKET", repo_api.token)
        kwargs["access_token_secret"] = "MY_BITBUCKET"
    elif where == "context":
        secrets["BITBUCKET_ACCESS_TOKEN"] = repo_api.token
    else:
        monkeypatch.setenv("BITBUCKET_ACCESS_TOKEN", repo_api.token)
    with context(secrets=secrets):
        storage = built(
            Bitbucket("ACME", "flows", host=repo_api.bitbucket_url, path="flow.py", **kwargs),
            local_flow(answer_script("x"), "answer-flow"),
        )
        loaded = Storage.deserialize(storage.serialize()).get_flow("answer-flow")
    assert result_of(loaded, "answer") == "v1"
    sent = [r.headers.get("Authorization") for r in repo_api.requests_for("bitbucket")]
    assert sent and set(sent) == {f"Bearer {repo_api.token}"}


@pytest.mark.parametrize("where", ["secrets", "env"])
def test_bitbucket_cloud_username_and_app_password(
    served: BareRepo,
    repo_api: RepoAPIServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    kwargs: dict[str, Any] = {}
    if where == "secrets":
        monkeypatch.setenv(ENV_PREFIX + "BB_USER", repo_api.username)
        monkeypatch.setenv(ENV_PREFIX + "BB_APP_PASSWORD", repo_api.password)
        kwargs = {
            "cloud_username_secret": "BB_USER",
            "cloud_app_password_secret": "BB_APP_PASSWORD",
        }
    else:
        monkeypatch.setenv("BITBUCKET_CLOUD_USERNAME", repo_api.username)
        monkeypatch.setenv("BITBUCKET_CLOUD_APP_PASSWORD", repo_api.password)
    storage = built(
        Bitbucket(
            "ACME", "flows", workspace="acme", host=repo_api.bitbucket_cloud_url, path="flow.py",
            **kwargs,
        ),
        local_flow(answer_script("x"), "answer-flow"),
    )  # fmt: skip
    loaded = Storage.deserialize(storage.serialize()).get_flow("answer-flow")
    assert result_of(loaded, "answer") == "v1"
    assert storage.commit_sha == served.head
    requests = repo_api.requests_for("bitbucket-cloud")
    assert requests and all(r.status == 200 for r in requests)
    assert not repo_api.token_seen_in_urls()


@pytest.mark.parametrize("kind", ["branch", "tag"])
def test_bitbucket_cloud_ref_on_page_three(
    git_repos: GitRepoFactory,
    repo_api: RepoAPIServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    bare = git_repos.create("flows", {"flow.py": answer_script("main")})
    wanted = bare.commit({"flow.py": answer_script("far away")}, branch="zzz-far-away")
    bare.delete_ref("refs/heads/zzz-far-away")
    # The client asks for 100 refs a page, so 250 other branches push the ref to page 3.
    lines = "".join(f"create refs/heads/aaa-{i:03d} {bare.head}\n" for i in range(250))
    bare.git("update-ref", "--stdin", input=lines.encode())
    if kind == "branch":
        bare.branch("zzz-far-away", wanted)
    else:
        bare.tag("zzz-far-away", wanted, annotated=True)
    repo_api.add_repo("acme/flows", bare)
    monkeypatch.setenv("BITBUCKET_CLOUD_USERNAME", repo_api.username)
    monkeypatch.setenv("BITBUCKET_CLOUD_APP_PASSWORD", repo_api.password)

    storage = built(
        Bitbucket(
            "ACME", "flows", workspace="acme", host=repo_api.bitbucket_cloud_url,
            path="flow.py", ref="zzz-far-away",
        ),
        local_flow(answer_script("x"), "answer-flow"),
    )  # fmt: skip
    assert storage.commit_sha == wanted
    assert result_of(storage.get_flow("answer-flow"), "answer") == "far away"
    pages = [r.path for r in repo_api.requests_for("bitbucket-cloud") if "/refs/branches" in r.path]
    assert any("page=3" in path for path in pages), pages


# -- CodeCommit -------------------------------------------------------------------------------
def test_codecommit_without_commit_reads_the_default_branch_head(
    git_repos: GitRepoFactory, codecommit_server: CodeCommitServer, local_flow: LocalFlow
) -> None:
    bare = git_repos.create("flows", {"flow.py": answer_script("v1")}, default_branch="trunk")
    bare.branch("other")
    bare.commit({"flow.py": answer_script("other")}, branch="other")
    head = bare.commit({"flow.py": answer_script("trunk head")})
    codecommit_server.add_repo("flows", bare)
    options = {"endpoint_url": codecommit_server.endpoint_url}

    storage = built(
        CodeCommit("flows", "flow.py", client_options=options),
        local_flow(answer_script("x"), "answer-flow"),
    )
    assert storage.commit is None and storage.commit_sha == head
    assert result_of(storage.get_flow("answer-flow"), "answer") == "trunk head"
    bodies = [r.body for r in codecommit_server.requests if r.operation == "GetFile"]
    assert bodies[0].get("commitSpecifier") is None
    assert all(b.get("commitSpecifier") == head for b in bodies[1:])


def test_codecommit_client_options_and_aws_credentials_secret(
    git_repos: GitRepoFactory,
    codecommit_server: CodeCommitServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bare = git_repos.create("flows", {"flow.py": answer_script("v1")})
    codecommit_server.add_repo("flows", bare)
    # Only what the storage is given: no region or keys in the environment.
    for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    options = {"endpoint_url": codecommit_server.endpoint_url, "region_name": "eu-west-3"}
    credentials = {"ACCESS_KEY": AWS_ACCESS_KEY_ID, "SECRET_ACCESS_KEY": "secret-from-context"}

    with context(secrets={"AWS_CREDENTIALS": credentials}):
        storage = built(
            CodeCommit("flows", "flow.py", client_options=options),
            local_flow(answer_script("x"), "answer-flow"),
        )
        fresh = Storage.deserialize(storage.serialize())
        assert result_of(fresh.get_flow("answer-flow"), "answer") == "v1"
    assert storage.serialize()["client_options"] == options
    scopes = {r.headers.get("Authorization", "").split("/")[2] for r in codecommit_server.requests}
    assert scopes == {"eu-west-3"}

    with pytest.raises(StorageConfigError, match="aws_secret_access_key"):
        CodeCommit("flows", "flow.py", client_options={"aws_secret_access_key": "x"})
