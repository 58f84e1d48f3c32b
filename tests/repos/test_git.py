"""``Git`` storage against real git servers on loopback: ``git daemon`` (git://), smart HTTP
with a token (``git http-backend`` behind Basic auth), HTTPS with a self-signed CA, and
OpenSSH's sshd.

SSH: the test sshd logs in only as ``root`` and serves repositories by absolute path. With
``use_ssh=True`` the storage clones ``git@<repo_host>:<repo>.git``, so the tests pass the
absolute path (without ``.git``) as ``repo`` and ``GIT_SSH_COMMAND`` = the server's
``ssh_command`` (its key and port) plus ``-l root`` (``-l`` wins over the ``git@`` user). The
other way, a ``git_clone_url_secret_name`` holding ``ssh://root@127.0.0.1:N/abs/path.git``,
is tested too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_storage.exceptions import (
    BackendAuthError,
    BackendError,
    FlowNotFoundError,
    SecretNotFoundError,
    StorageConfigError,
)
from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Git, Storage
from tests.repos.conftest import (
    FAST,
    SIBLING_FILES,
    TWO_FLOWS,
    answer_script,
    built,
    repo_path,
    result_of,
)
from tests.servers.git import GitDaemon, GitHTTPServer, GitRepoFactory, SSHGitServer

LocalFlow = Callable[[str, str], object]
Secret = Callable[[str, str], str]


def daemon_git(
    daemon: GitDaemon, bare: object, flow_path: str = "flow.py", **kwargs: object
) -> Git:
    return Git(
        flow_path, repo_path(bare), repo_host=f"127.0.0.1:{daemon.port}", protocol="git", **kwargs
    )


def http_git(
    server: GitHTTPServer, bare: object, flow_path: str = "flow.py", **kwargs: object
) -> Git:
    protocol = "https" if server.https else "http"
    return Git(
        flow_path,
        repo_path(bare),
        repo_host=f"127.0.0.1:{server.port}",
        protocol=protocol,
        **kwargs,
    )


def answer_repo(git_repos: GitRepoFactory, value: str = "v1", **kwargs: object) -> object:
    return git_repos.create("flows", {"flow.py": answer_script(value)}, **kwargs)


# -- transports ---------------------------------------------------------------------------------
def test_git_daemon_default_branch_is_pinned(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    # The default branch is whatever HEAD names on the server (here ``trunk``).
    bare = git_repos.create("flows", {"flow.py": answer_script("trunk")}, default_branch="trunk")
    storage = built(daemon_git(git_daemon, bare), local_flow(answer_script("x"), "answer-flow"))

    assert storage.commit_sha == bare.head
    payload = storage.serialize()
    assert payload["commit_sha"] == bare.head and payload["protocol"] == "git"
    fresh = Storage.deserialize(json.loads(json.dumps(payload)))
    assert result_of(fresh.get_flow("answer-flow"), "answer") == "trunk"


def test_http_token_with_the_default_user_name(
    git_repos: GitRepoFactory, git_http: GitHTTPServer, secret: Secret, local_flow: LocalFlow
) -> None:
    bare = answer_repo(git_repos)
    name = secret("GIT_TOKEN", git_http.token)
    storage = built(
        http_git(git_http, bare, git_token_secret_name=name),
        local_flow(answer_script("x"), "answer-flow"),
    )

    assert result_of(storage.get_flow("answer-flow"), "answer") == "v1"
    assert git_http.requests and all(r.authorized for r in git_http.requests)
    # ``git_token_username`` defaults to the repository's owner (its first path segment).
    assert {r.user for r in git_http.requests} == {repo_path(bare).split("/")[0]}
    assert not git_http.token_seen_in_urls()


def test_http_git_token_username(
    git_repos: GitRepoFactory, git_http: GitHTTPServer, secret: Secret, local_flow: LocalFlow
) -> None:
    bare = answer_repo(git_repos)
    git_http.username = "deploy-bot"  # e.g. a GitLab deploy token's user
    name = secret("GIT_TOKEN", git_http.token)
    flow = local_flow(answer_script("x"), "answer-flow")

    storage = built(
        http_git(git_http, bare, git_token_secret_name=name, git_token_username="deploy-bot"), flow
    )
    assert result_of(storage.get_flow("answer-flow"), "answer") == "v1"
    assert {r.user for r in git_http.requests} == {"deploy-bot"}

    wrong_user = http_git(git_http, bare, git_token_secret_name=name)
    wrong_user.retry_policy = FAST
    wrong_user.add_flow(flow)
    with pytest.raises(BackendAuthError):
        wrong_user.build()


def test_http_format_access_token_false_sends_the_secret_as_is(
    git_repos: GitRepoFactory, git_http: GitHTTPServer, secret: Secret, local_flow: LocalFlow
) -> None:
    bare = answer_repo(git_repos)
    git_http.username = "deploy-bot"
    # Unformatted: the secret already is ``user:token``.
    name = secret("GIT_USER_AND_TOKEN", f"deploy-bot:{git_http.token}")
    flow = local_flow(answer_script("x"), "answer-flow")

    storage = built(
        http_git(git_http, bare, git_token_secret_name=name, format_access_token=False), flow
    )
    assert result_of(storage.get_flow("answer-flow"), "answer") == "v1"
    assert {r.user for r in git_http.requests} == {"deploy-bot"}

    # Formatted, the same value would become ``<owner>:deploy-bot:<token>``: refused.
    formatted = http_git(
        git_http, bare, git_token_secret_name=name, git_token_username="deploy-bot"
    )
    formatted.retry_policy = FAST
    formatted.add_flow(flow)
    with pytest.raises(BackendAuthError):
        formatted.build()


def test_https_with_git_ssl_cainfo(
    git_repos: GitRepoFactory,
    git_https: GitHTTPServer,
    secret: Secret,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bare = answer_repo(git_repos)
    name = secret("GIT_TOKEN", git_https.token)
    flow = local_flow(answer_script("x"), "answer-flow")

    untrusted = http_git(git_https, bare, git_token_secret_name=name)
    untrusted.retry_policy = FAST
    untrusted.add_flow(flow)
    monkeypatch.delenv("GIT_SSL_CAINFO", raising=False)
    with pytest.raises(BackendError, match=r"(?i)certificate"):
        untrusted.build()

    monkeypatch.setenv("GIT_SSL_CAINFO", str(git_https.ca_file))
    storage = built(http_git(git_https, bare, git_token_secret_name=name), flow)
    assert storage.commit_sha == bare.head
    assert result_of(storage.get_flow("answer-flow"), "answer") == "v1"


def test_ssh_with_use_ssh_and_repo_host(
    git_repos: GitRepoFactory,
    git_ssh: SSHGitServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bare = answer_repo(git_repos)
    bare.branch("dev")
    bare.commit({"flow.py": answer_script("dev")}, branch="dev")
    monkeypatch.setenv("GIT_SSH_COMMAND", f"{git_ssh.ssh_command} -l {git_ssh.user}")
    absolute = str(git_ssh._path(bare)).removesuffix(".git")

    storage = built(
        Git("flow.py", absolute, repo_host="127.0.0.1", use_ssh=True, branch_name="dev"),
        local_flow(answer_script("x"), "answer-flow"),
    )

    assert storage.commit_sha == bare.rev_parse("dev")
    assert result_of(storage.get_flow("answer-flow"), "answer") == "dev"


def test_ssh_with_a_clone_url_secret(
    git_repos: GitRepoFactory,
    git_ssh: SSHGitServer,
    secret: Secret,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bare = answer_repo(git_repos)
    monkeypatch.setenv("GIT_SSH_COMMAND", git_ssh.ssh_command)
    name = secret("CLONE_URL", git_ssh.url(bare))

    storage = built(
        Git("flow.py", git_clone_url_secret_name=name),
        local_flow(answer_script("x"), "answer-flow"),
    )
    assert storage.commit_sha == bare.head
    assert "CLONE_URL" in json.dumps(storage.serialize())
    assert git_ssh.url(bare) not in json.dumps(storage.serialize()) + repr(storage)
    assert result_of(storage.get_flow("answer-flow"), "answer") == "v1"


def test_clone_url_secret_with_a_token_in_its_userinfo(
    git_repos: GitRepoFactory,
    git_http: GitHTTPServer,
    secret: Secret,
    local_flow: LocalFlow,
    checkouts: Path,
) -> None:
    bare = answer_repo(git_repos)
    url = git_http.url(bare).replace("http://", f"http://clone-user:{git_http.token}@")
    name = secret("CLONE_URL", url)

    storage = built(
        Git("flow.py", git_clone_url_secret_name=name),
        local_flow(answer_script("x"), "answer-flow"),
    )
    assert result_of(storage.get_flow("answer-flow"), "answer") == "v1"

    # The userinfo was stripped from the URL and sent as a header.
    assert git_http.requests and all(r.authorized for r in git_http.requests)
    assert {r.user for r in git_http.requests} == {"clone-user"}
    assert not git_http.token_seen_in_urls()
    configs = list(checkouts.rglob(".git/config"))
    assert configs
    for path in checkouts.rglob("*"):
        if path.is_file():
            assert git_http.token.encode() not in path.read_bytes(), path
    for config in configs:
        assert "clone-user" not in config.read_text()


# -- refs ---------------------------------------------------------------------------------------
def test_branch_name(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    bare = answer_repo(git_repos, "main")
    bare.branch("feature/x")
    dev = bare.commit({"flow.py": answer_script("feature")}, branch="feature/x")
    bare.commit({"flow.py": answer_script("main later")})

    storage = built(
        daemon_git(git_daemon, bare, branch_name="feature/x"),
        local_flow(answer_script("x"), "answer-flow"),
    )
    assert storage.commit_sha == dev
    assert result_of(storage.get_flow("answer-flow"), "answer") == "feature"


@pytest.mark.parametrize("annotated", [False, True], ids=["lightweight", "annotated"])
def test_tag(
    git_repos: GitRepoFactory,
    git_http: GitHTTPServer,
    secret: Secret,
    local_flow: LocalFlow,
    annotated: bool,
) -> None:
    bare = answer_repo(git_repos, "tagged")
    tagged = bare.head
    tag_object = bare.tag("v1.0", annotated=annotated)
    bare.commit({"flow.py": answer_script("after the tag")})
    name = secret("GIT_TOKEN", git_http.token)

    storage = built(
        http_git(git_http, bare, tag="v1.0", git_token_secret_name=name),
        local_flow(answer_script("x"), "answer-flow"),
    )
    # An annotated tag pins the commit it peels to, never the tag object.
    assert storage.commit_sha == tagged
    assert (tag_object != tagged) is annotated
    assert result_of(storage.get_flow("answer-flow"), "answer") == "tagged"


@pytest.mark.parametrize("clone_depth", [1, None], ids=["shallow", "full"])
def test_commit_that_is_not_a_tip(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow, clone_depth: int | None
) -> None:
    bare = answer_repo(git_repos, "old")
    old = bare.head
    bare.commit({"flow.py": answer_script("middle")})
    bare.commit({"flow.py": answer_script("tip")})

    storage = built(
        daemon_git(git_daemon, bare, commit=old.upper(), clone_depth=clone_depth),
        local_flow(answer_script("x"), "answer-flow"),
    )
    assert storage.commit == old and storage.commit_sha == old
    assert result_of(storage.get_flow("answer-flow"), "answer") == "old"
    fresh = Storage.deserialize(storage.serialize())
    assert result_of(fresh.get_flow("answer-flow"), "answer") == "old"


def test_the_requested_flow_name_picks_the_flow(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    bare = git_repos.create("flows", {"flows/two.py": TWO_FLOWS})
    # ``flow_name`` is kept and serialized; the name asked for at load time decides.
    storage = daemon_git(git_daemon, bare, "flows/two.py", flow_name="first")
    for name in ("first", "second"):
        storage.add_flow(local_flow(TWO_FLOWS, name))
    storage.build()

    assert storage.serialize()["flow_name"] == "first"
    fresh = Storage.deserialize(storage.serialize())
    for name in ("second", "first"):
        flow = fresh.get_flow(name)
        assert flow.name == name
        assert result_of(flow, "which") == name


def test_files_beside_the_flow_are_readable_while_it_runs(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    bare = git_repos.create(
        "flows", {"pipelines/flow.py": SIBLING_FILES, "pipelines/data.txt": "from the repo\n"}
    )
    storage = built(
        daemon_git(git_daemon, bare, "pipelines/flow.py"), local_flow(SIBLING_FILES, "files-flow")
    )

    flow = Storage.deserialize(storage.serialize()).get_flow("files-flow")
    # get_flow has returned; the tasks read the checkout only now, while the flow runs.
    assert result_of(flow, "read_data") == "from the repo"


def test_no_stale_files_from_another_branch(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    bare = git_repos.create(
        "flows", {"flow.py": SIBLING_FILES, "data.txt": "main\n", "stale.txt": "old\n"}
    )
    bare.branch("clean")
    bare.commit({"stale.txt": None, "data.txt": "clean\n"}, branch="clean")

    storage = built(
        daemon_git(git_daemon, bare, branch_name="clean"), local_flow(SIBLING_FILES, "files-flow")
    )
    flow = storage.get_flow("files-flow")
    assert result_of(flow, "read_data") == "clean"
    assert result_of(flow, "listing") == ["data.txt", "flow.py"]


def test_a_commit_deleting_the_script_does_not_touch_the_pinned_commit(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    bare = answer_repo(git_repos, "pinned")
    storage = built(daemon_git(git_daemon, bare), local_flow(answer_script("x"), "answer-flow"))
    bare.delete("flow.py")

    assert result_of(storage.get_flow("answer-flow"), "answer") == "pinned"
    # A new registration pins the new tip, where the script is gone.
    again = daemon_git(git_daemon, bare)
    again.add_flow(local_flow(answer_script("x"), "answer-flow"))
    with pytest.raises(FlowNotFoundError, match=r"flow\.py"):
        again.build()


# -- errors -------------------------------------------------------------------------------------
def _build_error(storage: Git, flow: object) -> BaseException:
    storage.retry_policy = FAST
    storage.add_flow(flow)  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        storage.build()
    return caught.value


def test_repository_not_found_on_every_transport(
    git_repos: GitRepoFactory,
    git_daemon: GitDaemon,
    git_http: GitHTTPServer,
    git_ssh: SSHGitServer,
    secret: Secret,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer_repo(git_repos)
    flow = local_flow(answer_script("x"), "answer-flow")
    missing = f"{git_repos.namespace}/no-such-repo"
    monkeypatch.setenv("GIT_SSH_COMMAND", f"{git_ssh.ssh_command} -l root")
    storages = [
        Git("flow.py", missing, repo_host=f"127.0.0.1:{git_daemon.port}", protocol="git"),
        Git(
            "flow.py",
            missing,
            repo_host=f"127.0.0.1:{git_http.port}",
            protocol="http",
            git_token_secret_name=secret("GIT_TOKEN", git_http.token),
        ),
        Git("flow.py", str(git_repos.root / missing), repo_host="127.0.0.1", use_ssh=True),
    ]
    unclear = {}
    for storage in storages:
        error = _build_error(storage, flow)
        assert isinstance(error, FlowNotFoundError), repr(error)
        if "no-such-repo" not in str(error):  # the message must say which repository
            unclear[storage.transport.repository] = str(error)
    assert unclear == {}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"branch_name": "no-such-branch"}, "no-such-branch"),
        ({"tag": "no-such-tag"}, "no-such-tag"),
        ({"commit": "0123456789abcdef0123456789abcdef01234567"}, "0123456789abcdef"),
    ],
    ids=["branch", "tag", "commit"],
)
def test_ref_not_found(
    git_repos: GitRepoFactory,
    git_http: GitHTTPServer,
    secret: Secret,
    local_flow: LocalFlow,
    ref: dict[str, str],
    expected: str,
) -> None:
    bare = answer_repo(git_repos)
    storage = http_git(git_http, bare, git_token_secret_name=secret("T", git_http.token), **ref)
    error = _build_error(storage, local_flow(answer_script("x"), "answer-flow"))
    assert isinstance(error, FlowNotFoundError), repr(error)
    assert expected in str(error)


def test_file_not_found(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    bare = answer_repo(git_repos)
    storage = daemon_git(git_daemon, bare, "flows/missing.py")
    error = _build_error(storage, local_flow(answer_script("x"), "answer-flow"))
    assert isinstance(error, FlowNotFoundError), repr(error)
    assert "flows/missing.py" in str(error) and str(bare.head) in str(error)


def test_bad_token_and_missing_token(
    git_repos: GitRepoFactory, git_http: GitHTTPServer, secret: Secret, local_flow: LocalFlow
) -> None:
    bare = answer_repo(git_repos)
    flow = local_flow(answer_script("x"), "answer-flow")
    bad = http_git(git_http, bare, git_token_secret_name=secret("BAD", "not-the-token"))
    error = _build_error(bad, flow)
    assert isinstance(error, BackendAuthError) and isinstance(error, PermissionError), repr(error)
    assert "not-the-token" not in str(error)

    no_token = http_git(git_http, bare)  # the server demands one: git must not prompt
    assert isinstance(_build_error(no_token, flow), BackendAuthError)

    unset = http_git(git_http, bare, git_token_secret_name="NO_SUCH_SECRET")
    error = _build_error(unset, flow)
    assert isinstance(error, SecretNotFoundError) and "NO_SUCH_SECRET" in str(error)


def test_constructor_errors() -> None:
    with pytest.raises(StorageConfigError, match="only one of"):
        Git("flow.py", "o/r", branch_name="main", tag="v1")
    with pytest.raises(StorageConfigError, match="only one of"):
        Git("flow.py", "o/r", tag="v1", commit="0" * 40)
    with pytest.raises(StorageConfigError, match="only one of"):
        Git("flow.py", "o/r", branch_name="main", commit="0" * 40)
    with pytest.raises(StorageConfigError, match="git_clone_url_secret_name"):
        Git("flow.py")
    with pytest.raises(StorageConfigError, match="40-character"):
        Git("flow.py", "o/r", commit="abc123")


@pytest.mark.parametrize(
    "ref",
    [
        {"branch_name": "--upload-pack=touch /tmp/pwned"},
        {"branch_name": "-main"},
        {"tag": "--output=/tmp/pwned"},
        {"tag": "-v1"},
        {"commit": "-" + "0" * 39},
    ],
    ids=["branch-option", "branch-dash", "tag-option", "tag-dash", "commit-dash"],
)
def test_refs_starting_with_a_dash_are_refused(ref: dict[str, str]) -> None:
    with pytest.raises(StorageConfigError):
        Git("flow.py", "o/r", **ref)


def test_a_clone_url_cannot_be_read_as_a_git_option(
    tmp_path: Path, secret: Secret, local_flow: LocalFlow
) -> None:
    planted = tmp_path / "pwned"
    name = secret("CLONE_URL", f"--upload-pack=touch {planted};")
    storage = Git("flow.py", git_clone_url_secret_name=name)
    error = _build_error(storage, local_flow(answer_script("x"), "answer-flow"))
    assert isinstance(error, (BackendError, FlowNotFoundError)), repr(error)
    assert not planted.exists()


def test_ssh_key_the_server_refuses(
    git_repos: GitRepoFactory,
    git_ssh: SSHGitServer,
    local_flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    bare = answer_repo(git_repos)
    other_key = tmp_path / "not-authorized"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)],
        check=True,
        capture_output=True,
    )
    assert git_ssh.client_key is not None
    command = git_ssh.ssh_command.replace(str(git_ssh.client_key), str(other_key))
    monkeypatch.setenv("GIT_SSH_COMMAND", command)
    name = "CLONE_URL"
    monkeypatch.setenv(ENV_PREFIX + name, git_ssh.url(bare))

    error = _build_error(
        Git("flow.py", git_clone_url_secret_name=name),
        local_flow(answer_script("x"), "answer-flow"),
    )
    assert isinstance(error, BackendAuthError), repr(error)
