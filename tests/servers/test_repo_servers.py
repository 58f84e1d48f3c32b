"""Smoke tests for the git servers and the repository-API fakes, driven by the real clients:
git itself (git://, smart HTTP(S), SSH), PyGithub, python-gitlab, atlassian-python-api
(Bitbucket Server and Cloud) and boto3's codecommit client."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.servers.codecommit import CodeCommitServer
from tests.servers.git import (
    BareRepo,
    GitDaemon,
    GitHTTPServer,
    GitRepoFactory,
    SSHGitServer,
    git_environment,
    run_git,
)
from tests.servers.repo_api import RepoAPIServer

FLOW_V1 = "from prefect import Flow\nflow = Flow('v1')\n"
FLOW_V2 = "from prefect import Flow\nflow = Flow('v2')\n"


@pytest.fixture
def flows_repo(git_repos: GitRepoFactory) -> tuple[BareRepo, dict[str, str]]:
    """A repository with history: v1 (lightweight tag), v2 (annotated tag), branch dev."""
    repo = git_repos.create("flows", {"flows/flow.py": FLOW_V1, "README.md": "flows\n"})
    shas = {"c1": repo.head}
    repo.tag("v1")
    shas["c2"] = repo.commit({"flows/flow.py": FLOW_V2}, message="v2")
    shas["v2_tag"] = repo.tag("v2", annotated=True, message="release 2")
    repo.branch("dev", shas["c1"])
    shas["dev"] = repo.commit({"flows/dev.py": "dev = 1\n"}, branch="dev")
    return repo, shas


def _fetch(url: str, sha: str, env: dict[str, str], tmp: Path, *config: str) -> tuple[int, str]:
    """``git fetch --depth 1 URL SHA`` into a new repository: (exit code, stderr)."""
    work = tmp / f"work-{len(list(tmp.iterdir()))}"
    run_git("init", "--quiet", work)
    cfg = [arg for item in config for arg in ("-c", item)]
    process = run_git("-C", work, *cfg, "fetch", "--depth", "1", url, sha, env=env, check=False)
    if process.returncode == 0:
        fetched = run_git("-C", work, "rev-parse", "FETCH_HEAD").stdout.decode().strip()
        assert fetched == sha
    return process.returncode, process.stderr.decode(errors="replace")


# --- repositories --------------------------------------------------------------------------
def test_bare_repo_history_tags_and_purge(git_repos: GitRepoFactory) -> None:
    repo = git_repos.create("history", {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    assert repo.name.endswith("/history.git") and repo.default_branch == "main"
    assert run_git("-C", repo.path, "config", "uploadpack.allowAnySHA1InWant").stdout.strip() == (
        b"true"
    )
    c1 = repo.head
    light = repo.tag("light")
    annotated = repo.tag("annotated", annotated=True)
    assert light == c1 and annotated != c1
    assert repo.rev_parse("annotated") == c1
    assert repo.git("cat-file", "-t", annotated) == "tag"
    c2 = repo.delete("b.py")
    assert repo.show(c2, "a.py") == b"a = 1\n"
    assert run_git("-C", repo.path, "cat-file", "-e", f"{c2}:b.py", check=False).returncode != 0
    c3 = repo.commit({"a.py": "a = 3\n"})
    assert repo.force_push("main", c2) == c3
    assert repo.head == c2 and repo.has_object(c3)
    repo.purge_unreachable()
    assert not repo.has_object(c3)
    assert repo.has_object(c1) and repo.has_object(annotated)


# --- git transports ------------------------------------------------------------------------
def test_git_daemon_clone_and_fetch_any_commit(
    git_daemon: GitDaemon, flows_repo: tuple[BareRepo, dict[str, str]], tmp_path: Path
) -> None:
    repo, shas = flows_repo
    url = git_daemon.url(repo)
    assert url.startswith("git://127.0.0.1:") and url.endswith("/flows.git")
    clone = tmp_path / "clone"
    run_git("clone", "--quiet", "--branch", "v2", url, clone)
    assert (clone / "flows/flow.py").read_text() == FLOW_V2
    for sha in (shas["c1"], shas["c2"], shas["dev"]):
        assert _fetch(url, sha, git_environment(), tmp_path)[0] == 0
    # protocol v0 needs uploadpack.allowReachableSHA1InWant, which the factory sets
    env = git_environment()
    assert _fetch(url, shas["c1"], env, tmp_path, "protocol.version=0")[0] == 0


def test_force_pushed_commit_is_gone_on_every_transport(
    git_daemon: GitDaemon,
    git_http: GitHTTPServer,
    git_ssh: SSHGitServer,
    git_repos: GitRepoFactory,
    tmp_path: Path,
) -> None:
    repo = git_repos.create("rewritten", {"flow.py": "x = 1\n"})
    base = repo.head
    orphan = repo.commit({"flow.py": "x = 2\n"})
    repo.force_push("main", base)
    repo.purge_unreachable()
    header = "http.extraHeader=" + git_http.basic_header()
    attempts = [
        (git_daemon.url(repo), git_environment(), ()),
        (git_http.url(repo), git_environment(), (header,)),
        (git_ssh.url(repo), git_ssh.git_environment(), ()),
    ]
    for url, env, config in attempts:
        code, stderr = _fetch(url, orphan, env, tmp_path, *config)
        assert code != 0, url
        assert "not our ref" in stderr or "upload-pack" in stderr, stderr
        assert _fetch(url, base, env, tmp_path, *config)[0] == 0


def test_git_http_token_in_a_header(
    git_http: GitHTTPServer, flows_repo: tuple[BareRepo, dict[str, str]], tmp_path: Path
) -> None:
    repo, shas = flows_repo
    url = git_http.url(repo)
    assert git_http.token not in url
    code, stderr = _fetch(
        url, shas["c2"], git_environment(), tmp_path, "http.extraHeader=" + git_http.basic_header()
    )
    assert code == 0, stderr
    assert git_http.requests and all(r.authorized for r in git_http.requests)
    first = git_http.requests[0]
    assert first.path == f"/{repo.name}/info/refs?service=git-upload-pack"
    assert first.headers["Authorization"].startswith("Basic ")
    assert first.headers.get("Git-Protocol") == "version=2"
    assert not git_http.token_seen_in_urls()
    assert any(
        r.method == "POST" and r.path.endswith("/git-upload-pack") for r in git_http.requests
    )


def test_git_http_token_through_askpass(
    git_http: GitHTTPServer, flows_repo: tuple[BareRepo, dict[str, str]], tmp_path: Path
) -> None:
    repo, shas = flows_repo
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(
        '#!/bin/sh\ncase "$1" in Username*) echo x-token;; *) echo "$TOKEN";; esac\n'
    )
    askpass.chmod(askpass.stat().st_mode | stat.S_IXUSR)
    env = git_environment(GIT_ASKPASS=str(askpass), TOKEN=git_http.token)
    code, stderr = _fetch(git_http.url(repo), shas["c1"], env, tmp_path)
    assert code == 0, stderr
    statuses = [r.status for r in git_http.requests]
    assert statuses[0] == 401 and 200 in statuses  # git asks only after a 401
    assert {r.user for r in git_http.requests if r.authorized} == {"x-token"}
    assert not git_http.token_seen_in_urls()


def test_git_http_refuses_wrong_or_missing_token(
    git_http: GitHTTPServer, flows_repo: tuple[BareRepo, dict[str, str]], tmp_path: Path
) -> None:
    repo, shas = flows_repo
    env = git_environment(GIT_TERMINAL_PROMPT="0")
    bad = "http.extraHeader=" + git_http.basic_header("not-the-token")
    code, stderr = _fetch(git_http.url(repo), shas["c1"], env, tmp_path, bad)
    assert code != 0
    code, stderr = _fetch(git_http.url(repo), shas["c1"], env, tmp_path)
    assert code != 0 and "terminal prompts disabled" in stderr
    assert [r.status for r in git_http.requests] == [401, 401]
    bearer = f"http.extraHeader=Authorization: Bearer {git_http.token}"
    assert _fetch(git_http.url(repo), shas["c1"], env, tmp_path, bearer)[0] == 0


def test_git_https_with_self_signed_certificate(
    git_https: GitHTTPServer, flows_repo: tuple[BareRepo, dict[str, str]], tmp_path: Path
) -> None:
    repo, shas = flows_repo
    assert git_https.url(repo).startswith("https://") and git_https.ca_file is not None
    header = "http.extraHeader=" + git_https.basic_header()
    code, stderr = _fetch(
        git_https.url(repo), shas["c2"], git_https.git_environment(), tmp_path, header
    )
    assert code == 0, stderr
    code, stderr = _fetch(git_https.url(repo), shas["c2"], git_environment(), tmp_path, header)
    assert code != 0 and "certificate" in stderr.lower()


def test_git_ssh_fetch_and_clone(
    git_ssh: SSHGitServer, flows_repo: tuple[BareRepo, dict[str, str]], tmp_path: Path
) -> None:
    repo, shas = flows_repo
    env = git_ssh.git_environment()
    assert git_ssh.url(repo).startswith(f"ssh://root@127.0.0.1:{git_ssh.port}/")
    for url in (git_ssh.url(repo), git_ssh.scp_url(repo)):
        code, stderr = _fetch(url, shas["c1"], env, tmp_path)
        assert code == 0, stderr
    clone = tmp_path / "ssh-clone"
    run_git("clone", "--quiet", "--branch", "dev", git_ssh.url(repo), clone, env=env)
    assert (clone / "flows/dev.py").exists()
    # a key sshd does not know is refused
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    other = git_environment(
        GIT_SSH_COMMAND=git_ssh.ssh_command.replace(str(git_ssh.client_key), str(stranger))
    )
    code, stderr = _fetch(git_ssh.url(repo), shas["c1"], other, tmp_path)
    assert code != 0 and "Permission denied" in stderr


# --- GitHub ----------------------------------------------------------------------------------
def test_github_with_pygithub(
    repo_api: RepoAPIServer, flows_repo: tuple[BareRepo, dict[str, str]]
) -> None:
    from github import (
        Auth,
        BadCredentialsException,
        Github,
        GithubException,
        UnknownObjectException,
    )

    repo, shas = flows_repo
    repo_api.add_repo("acme/flows", repo)
    gh = Github(
        base_url=repo_api.github_url, auth=Auth.Token(repo_api.token), seconds_between_requests=0
    )
    remote = gh.get_repo("acme/flows")
    assert remote.default_branch == "main" and remote.full_name == "acme/flows"
    assert remote.get_commit("v2").sha == shas["c2"]  # annotated tag, peeled
    assert remote.get_commit("dev").sha == shas["dev"]
    assert remote.get_commit(shas["c1"]).sha == shas["c1"]
    content = remote.get_contents("flows/flow.py", ref="v1")
    assert content.decoded_content.decode() == FLOW_V1
    assert content.sha == repo.git("rev-parse", "v1:flows/flow.py")
    assert content.path == "flows/flow.py" and content.name == "flow.py"
    assert remote.get_contents("flows/flow.py").decoded_content.decode() == FLOW_V2
    with pytest.raises(UnknownObjectException):
        remote.get_contents("flows/missing.py", ref="main")
    with pytest.raises(UnknownObjectException):
        gh.get_repo("acme/missing")
    # GitHub's own answers for an unknown ref: 404 "No commit found for the ref X" on
    # contents and 422 on commits -- neither is an UnknownObjectException in PyGithub
    with pytest.raises(GithubException) as missing_ref:
        remote.get_contents("flows/flow.py", ref="no-such-branch")
    assert missing_ref.value.status == 404
    with pytest.raises(GithubException) as missing_commit:
        remote.get_commit("no-such-branch")
    assert missing_commit.value.status == 422
    with pytest.raises(BadCredentialsException):
        Github(
            base_url=repo_api.github_url, auth=Auth.Token("wrong"), seconds_between_requests=0
        ).get_repo("acme/flows")
    anonymous = Github(base_url=repo_api.github_url, seconds_between_requests=0)
    with pytest.raises(UnknownObjectException):
        anonymous.get_repo("acme/flows")  # private repositories hide from anonymous users
    authorized = [r for r in repo_api.requests_for("github") if r.status < 400]
    assert authorized
    assert all(r.headers["Authorization"] == f"token {repo_api.token}" for r in authorized)
    assert not repo_api.token_seen_in_urls()


def test_github_public_repo_and_large_file(
    repo_api: RepoAPIServer, git_repos: GitRepoFactory
) -> None:
    from github import Github

    repo = git_repos.create("big", {"small.txt": "s", "big.bin": b"\0" * 2048})
    repo_api.add_repo("acme/big", repo, public=True)
    repo_api.github_max_content = 1024
    anonymous = Github(base_url=repo_api.github_url + "/api/v3", seconds_between_requests=0)
    remote = anonymous.get_repo("acme/big")
    assert remote.url == f"{repo_api.url}/api/v3/repos/acme/big"
    big = remote.get_contents("big.bin")
    assert big.encoding == "none" and big.content == ""  # too large for the contents API
    blob = remote.get_git_blob(big.sha)
    assert base64.b64decode(blob.content) == b"\0" * 2048


# --- GitLab ----------------------------------------------------------------------------------
def test_gitlab_with_python_gitlab(
    repo_api: RepoAPIServer, flows_repo: tuple[BareRepo, dict[str, str]]
) -> None:
    import gitlab

    repo, shas = flows_repo
    hosted = repo_api.add_repo("team/sub/flows", repo)
    gl = gitlab.Gitlab(repo_api.gitlab_url, private_token=repo_api.token)
    project = gl.projects.get("team/sub/flows")
    assert project.id == hosted.id and project.default_branch == "main"
    assert gl.projects.get(hosted.id).path_with_namespace == "team/sub/flows"
    file = project.files.get("flows/flow.py", ref="v2")
    assert file.decode().decode() == FLOW_V2 and file.commit_id == shas["c2"]
    assert file.blob_id == repo.git("rev-parse", "v2:flows/flow.py")
    assert project.files.get("flows/flow.py", ref=shas["c1"]).decode().decode() == FLOW_V1
    assert project.files.raw("flows/dev.py", ref="dev") == b"dev = 1\n"
    assert project.commits.get("v1").id == shas["c1"]
    assert project.branches.get("dev").commit["id"] == shas["dev"]
    with pytest.raises(gitlab.GitlabGetError) as missing_file:
        project.files.get("flows/missing.py", ref="main")
    assert missing_file.value.response_code == 404
    assert missing_file.value.error_message == "404 File Not Found"
    with pytest.raises(gitlab.GitlabGetError) as missing_ref:
        project.files.get("flows/flow.py", ref="no-such-branch")
    assert missing_ref.value.error_message == "404 Commit Not Found"
    with pytest.raises(gitlab.GitlabGetError) as missing_project:
        gl.projects.get("team/missing")
    assert missing_project.value.error_message == "404 Project Not Found"
    with pytest.raises(gitlab.GitlabAuthenticationError):
        gitlab.Gitlab(repo_api.gitlab_url, private_token="wrong").projects.get("team/sub/flows")
    good = [r for r in repo_api.requests_for("gitlab") if r.status < 400]
    assert good[0].path == "/api/v4/projects/team%2Fsub%2Fflows"
    assert all(r.headers["PRIVATE-TOKEN"] == repo_api.token for r in good)
    assert not repo_api.token_seen_in_urls()


# --- Bitbucket -------------------------------------------------------------------------------
def test_bitbucket_server_with_atlassian(
    repo_api: RepoAPIServer, flows_repo: tuple[BareRepo, dict[str, str]]
) -> None:
    from atlassian import Bitbucket
    from requests import HTTPError

    repo, shas = flows_repo
    repo_api.add_repo("PROJ/flows", repo)
    bitbucket = Bitbucket(url=repo_api.bitbucket_url, token=repo_api.token)
    read = bitbucket.get_content_of_file
    assert read("PROJ", "flows", "flows/flow.py").decode() == FLOW_V2
    assert read("PROJ", "flows", "flows/flow.py", at="v1").decode() == FLOW_V1
    assert read("PROJ", "flows", "flows/flow.py", at="refs/tags/v2").decode() == FLOW_V2
    assert read("PROJ", "flows", "flows/dev.py", at=shas["dev"]) == b"dev = 1\n"
    assert bitbucket.get_commit_info("PROJ", "flows", "dev")["id"] == shas["dev"]
    assert bitbucket.get_default_branch("PROJ", "flows")["displayId"] == "main"
    branches = bitbucket.get_branches("PROJ", "flows", details=False)
    assert {b["displayId"] for b in branches} == {"main", "dev"}
    for call, status, text in (
        (lambda: read("PROJ", "flows", "missing.py", at="main"), 404, "does not exist"),
        (lambda: read("PROJ", "flows", "flows/flow.py", at="nope"), 404, "Commit 'nope'"),
        (lambda: read("PROJ", "missing", "flows/flow.py"), 404, "Repository PROJ/missing"),
        (
            lambda: Bitbucket(url=repo_api.bitbucket_url, token="wrong").get_content_of_file(
                "PROJ", "flows", "flows/flow.py"
            ),
            401,
            "Authentication failed",
        ),
    ):
        with pytest.raises(HTTPError) as error:
            call()
        assert error.value.response.status_code == status and text in str(error.value)
    good = [r for r in repo_api.requests_for("bitbucket") if r.status < 400]
    assert all(r.headers["Authorization"] == f"Bearer {repo_api.token}" for r in good)
    assert not repo_api.token_seen_in_urls()


def test_bitbucket_cloud_refs_are_paged(
    repo_api: RepoAPIServer, flows_repo: tuple[BareRepo, dict[str, str]]
) -> None:
    from atlassian.bitbucket import Cloud
    from requests import HTTPError

    repo, shas = flows_repo
    for name in ("feature/x", "hotfix", "release"):
        repo.branch(name, shas["c1"])
    repo_api.add_repo("acme/flows", repo)
    cloud = Cloud(
        url=repo_api.bitbucket_cloud_url, username=repo_api.username, password=repo_api.password
    )
    remote = cloud.workspaces.get("acme").repositories.get("flows")
    assert remote.get_data("mainbranch")["name"] == "main"
    branches = {b.name: b.hash for b in remote.branches.each()}
    assert branches == {
        "dev": shas["dev"],
        "feature/x": shas["c1"],
        "hotfix": shas["c1"],
        "main": shas["c2"],
        "release": shas["c1"],
    }
    tags = {t.name: t.hash for t in remote.tags.each()}
    assert tags == {"v1": shas["c1"], "v2": shas["c2"]}  # annotated tags peeled
    listed = [
        r.path
        for r in repo_api.requests_for("bitbucket-cloud")
        if "/refs/branches" in r.path and r.path.split("?")[0].endswith(("branches", "branches/"))
    ]
    assert len(listed) == 3  # 5 branches, 2 per page
    assert remote.get_source_file(shas["c1"], "flows/flow.py").decode() == FLOW_V1
    assert remote.get_source_file("dev", "flows/dev.py") == b"dev = 1\n"
    with pytest.raises(HTTPError) as missing:
        remote.get_source_file(shas["c1"], "missing.py")
    assert missing.value.response.status_code == 404
    with pytest.raises(HTTPError) as wrong:
        Cloud(url=repo_api.bitbucket_cloud_url, username="x", password="y").repositories.get(
            "acme", "flows"
        )
    assert wrong.value.response.status_code == 401
    assert all(
        r.headers["Authorization"].startswith("Basic ")
        for r in repo_api.requests_for("bitbucket-cloud")
    )
    assert not repo_api.token_seen_in_urls()


# --- CodeCommit ------------------------------------------------------------------------------
def test_codecommit_with_boto3(
    codecommit_server: CodeCommitServer, flows_repo: tuple[BareRepo, dict[str, str]]
) -> None:
    import boto3

    repo, shas = flows_repo
    codecommit_server.add_repo("flows", repo)
    client = boto3.client("codecommit", endpoint_url=codecommit_server.endpoint_url)
    expected = {
        None: (FLOW_V2, shas["c2"]),
        "main": (FLOW_V2, shas["c2"]),
        "v1": (FLOW_V1, shas["c1"]),
        "v2": (FLOW_V2, shas["c2"]),
        "refs/heads/main": (FLOW_V2, shas["c2"]),
        shas["c1"]: (FLOW_V1, shas["c1"]),
    }
    for specifier, (text, commit) in expected.items():
        extra = {"commitSpecifier": specifier} if specifier else {}
        answer = client.get_file(repositoryName="flows", filePath="flows/flow.py", **extra)
        assert answer["fileContent"].decode() == text and answer["commitId"] == commit
        assert answer["fileMode"] == "NORMAL" and answer["fileSize"] == len(text)
    assert client.get_branch(repositoryName="flows", branchName="dev")["branch"] == {
        "branchName": "dev",
        "commitId": shas["dev"],
    }
    meta = client.get_repository(repositoryName="flows")["repositoryMetadata"]
    assert meta["defaultBranch"] == "main"
    assert client.get_commit(repositoryName="flows", commitId=shas["c2"])["commit"]["parents"] == [
        shas["c1"]
    ]
    errors = client.exceptions
    with pytest.raises(errors.FileDoesNotExistException):
        client.get_file(repositoryName="flows", filePath="flows/missing.py")
    with pytest.raises(errors.CommitDoesNotExistException):
        client.get_file(repositoryName="flows", filePath="flows/flow.py", commitSpecifier="nope")
    with pytest.raises(errors.RepositoryDoesNotExistException):
        client.get_file(repositoryName="missing", filePath="flows/flow.py")
    with pytest.raises(errors.BranchDoesNotExistException):
        client.get_branch(repositoryName="flows", branchName="nope")
    wrong = boto3.client(
        "codecommit",
        endpoint_url=codecommit_server.endpoint_url,
        aws_access_key_id="AKIAWRONG",
        aws_secret_access_key="wrong",
    )
    with pytest.raises(wrong.exceptions.ClientError) as denied:
        wrong.get_repository(repositoryName="flows")
    assert denied.value.response["Error"]["Code"] == "UnrecognizedClientException"
    first = codecommit_server.requests[0]
    assert first.headers["X-Amz-Target"] == "CodeCommit_20150413.GetFile"
    assert first.body == {"repositoryName": "flows", "filePath": "flows/flow.py"}
    assert os.environ["AWS_ACCESS_KEY_ID"] in first.headers["Authorization"]
