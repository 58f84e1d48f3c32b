"""No token of a repository storage ever shows. Unique tokens are planted as: the Git HTTP
token (``git_token_secret_name``, from the secrets file), a token inside the userinfo of a
``git_clone_url_secret_name`` URL, the GitHub, GitLab and Bitbucket Server tokens, the
Bitbucket Cloud app password, and the CodeCommit secret key (``AWS_CREDENTIALS``); refused
ones too. After build / get_flow / run / serialize / repr / errors (bad tokens included),
with logging at DEBUG, they are searched for in: ``serialize()``, ``repr``, log text,
exception str/repr/traceback, files under the home folder but ``secrets.toml``, every file
of every Git checkout left on disk (``.git/config`` included), the request targets the
servers saw, and the command lines of git processes sampled from ``/proc`` every few ms
while Git clones over HTTP (a repository with large files, so the clone lasts)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from prefect_storage import context
from prefect_storage.engine.flow import Flow
from prefect_storage.exceptions import BackendAuthError
from prefect_storage.secrets import ENV_PREFIX, set_secret
from prefect_storage.storage import Bitbucket, CodeCommit, Git, GitHub, GitLab, Storage
from tests.repos.conftest import (
    FAST,
    SIBLING_FILES,
    answer_script,
    repo_path,
    result_of,
    run_cli,
)
from tests.servers.codecommit import CodeCommitServer
from tests.servers.faultproxy import FaultProxy
from tests.servers.git import GitHTTPServer, GitRepoFactory, SSHGitServer
from tests.servers.repo_api import RepoAPIServer
from tests.servers.s3 import AWS_ACCESS_KEY_ID

LocalFlow = Callable[[str, str], Flow]
LARGE_FILES = 3
LARGE_FILE_SIZE = 8 * 1024 * 1024
"""Incompressible files that make a clone over HTTP last long enough to be sampled."""


def _token(kind: str) -> str:
    return f"leak-{kind}-{uuid.uuid4().hex}"


class GitProcessSampler:
    """Reads the command line of every process named ``git*`` from ``/proc`` every ~2 ms."""

    def __init__(self) -> None:
        self.command_lines: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="git-sampler")

    def _loop(self) -> None:
        own = os.getpid()
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) == own:
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as file:
                        raw = file.read()
                except OSError:
                    continue
                argv = raw.decode(errors="replace").split("\0")
                is_git = bool(argv) and os.path.basename(argv[0]).startswith("git")
                if is_git and _descends_from(int(entry.name), own):
                    self.command_lines.add(" ".join(argv).strip())
            time.sleep(0.002)

    @contextmanager
    def running(self) -> Iterator[None]:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="git-sampler")
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()

    def client_command_lines(self) -> list[str]:
        """Command lines of git run by the storage (the server's are ``http-backend``)."""
        return [c for c in self.command_lines if "fetch" in c or "remote-http" in c]


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether process ``pid`` is a descendant of ``ancestor`` (other test runs on this
    machine run git too: only this test's processes count)."""
    for _ in range(16):
        try:
            with open(f"/proc/{pid}/stat") as file:
                # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
                pid = int(file.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def _assert_absent(tokens: dict[str, str], where: dict[str, str | bytes]) -> None:
    leaks = []
    for kind, token in tokens.items():
        for label, text in where.items():
            needle: Any = token.encode() if isinstance(text, bytes) else token
            at = text.find(needle)
            if at >= 0:
                leaks.append(f"{kind} token in {label}, after {text[max(0, at - 80) : at]!r}")
    assert leaks == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _files(folder: Path, label: str, skip: Iterable[str] = ()) -> dict[str, str | bytes]:
    return {
        f"{label} {path.relative_to(folder)}": path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and path.name not in skip
    }


def test_no_planted_token_leaks_from_repository_storages(
    git_repos: GitRepoFactory,
    git_http: GitHTTPServer,
    repo_api: RepoAPIServer,
    codecommit_server: CodeCommitServer,
    local_flow: LocalFlow,
    checkouts: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = {
        kind: _token(kind)
        for kind in (
            "git-http", "git-http-refused", "clone-url", "clone-url-refused", "github",
            "github-refused", "gitlab", "gitlab-refused", "bitbucket-server",
            "bitbucket-server-refused", "bitbucket-cloud-app-password",
            "bitbucket-cloud-refused", "codecommit-secret-key", "codecommit-refused",
        )
    }  # fmt: skip
    observed: dict[str, str | bytes] = {}
    errors: list[BaseException] = []
    storages: list[Storage] = []
    request_targets: list[str] = []
    sampler = GitProcessSampler()

    def round_trip(storage: Storage, source: str, flow_name: str, task: str) -> Any:
        """add_flow, build, serialize, deserialize, get_flow and run, as register + agent do."""
        storage.retry_policy = FAST
        storage.add_flow(local_flow(source, flow_name))
        storage.build()
        rebuilt = Storage.deserialize(json.loads(json.dumps(storage.serialize())))
        rebuilt.retry_policy = FAST
        flow = rebuilt.get_flow(flow_name)
        value = result_of(flow, task)
        storages.extend([storage, rebuilt])
        return value

    def expect_refused(storage: Storage, source: str, flow_name: str) -> None:
        storage.retry_policy = FAST
        storage.add_flow(local_flow(source, flow_name))
        with pytest.raises(BackendAuthError) as caught:
            storage.build()
        errors.append(caught.value)
        storages.append(storage)

    # -- Git over HTTP: the token from the secrets file; a large repository, sampled ----------
    big = git_repos.create(
        "big",
        {
            "pipelines/flow.py": SIBLING_FILES,
            "pipelines/data.txt": "big\n",
            **{f"blobs/{i}.bin": os.urandom(LARGE_FILE_SIZE) for i in range(LARGE_FILES)},
        },
    )
    git_http.reset(token=tokens["git-http"])
    set_secret("PLANTED_GIT_TOKEN", tokens["git-http"])
    monkeypatch.setenv(ENV_PREFIX + "PLANTED_GIT_BAD", tokens["git-http-refused"])
    where = {"repo_host": f"127.0.0.1:{git_http.port}", "protocol": "http"}
    with sampler.running():
        value = round_trip(
            Git(
                "pipelines/flow.py",
                repo_path(big),
                git_token_secret_name="PLANTED_GIT_TOKEN",
                **where,
            ),
            SIBLING_FILES,
            "files-flow",
            "read_data",
        )
        assert value == "big"
        expect_refused(
            Git(
                "pipelines/flow.py",
                repo_path(big),
                git_token_secret_name="PLANTED_GIT_BAD",
                **where,
            ),
            SIBLING_FILES,
            "files-flow",
        )
    request_targets += [r.path for r in git_http.requests]
    assert any(r.authorized and "git-upload-pack" in r.path for r in git_http.requests)
    assert not any(git_http.token_seen_in_urls(tokens[k]) for k in ("git-http", "git-http-refused"))
    sampled = sampler.client_command_lines()
    assert any("big.git" in line for line in sampled), sorted(sampler.command_lines)

    # -- Git with the token inside a clone URL secret's userinfo ------------------------------
    small = git_repos.create(
        "small", {"pipelines/flow.py": SIBLING_FILES, "pipelines/data.txt": "small\n"}
    )
    git_http.reset(token=tokens["clone-url"])
    for name, token in (
        ("PLANTED_CLONE_URL", "clone-url"),
        ("PLANTED_BAD_URL", "clone-url-refused"),
    ):
        url = git_http.url(small).replace("http://", f"http://robot:{tokens[token]}@")
        monkeypatch.setenv(ENV_PREFIX + name, url)
    with sampler.running():
        value = round_trip(
            Git("pipelines/flow.py", git_clone_url_secret_name="PLANTED_CLONE_URL"),
            SIBLING_FILES,
            "files-flow",
            "read_data",
        )
        assert value == "small"
        expect_refused(
            Git("pipelines/flow.py", git_clone_url_secret_name="PLANTED_BAD_URL"),
            SIBLING_FILES,
            "files-flow",
        )
    request_targets += [r.path for r in git_http.requests]
    assert not any(
        git_http.token_seen_in_urls(tokens[k]) for k in ("clone-url", "clone-url-refused")
    )

    # -- GitHub, GitLab, Bitbucket Server, Bitbucket Cloud --------------------------------------
    source = answer_script("from the api", "api")
    hosted = git_repos.create("hosted", {"flow.py": source})
    repo_api.add_repo("acme/flows", hosted)
    repo_api.add_repo("ACME/flows", hosted)
    api = repo_api.url

    def planted(secret_name: str, kind: str) -> str:
        monkeypatch.setenv(ENV_PREFIX + secret_name, tokens[kind])
        return secret_name

    def api_storage(kind: str, token_secret: str) -> Storage:
        if kind == "github":
            return GitHub("acme/flows", "flow.py", access_token_secret=token_secret, base_url=api)
        if kind == "gitlab":
            return GitLab("acme/flows", api, "flow.py", access_token_secret=token_secret)
        if kind == "bitbucket-server":
            return Bitbucket(
                "ACME", "flows", host=api, path="flow.py", access_token_secret=token_secret
            )
        return Bitbucket(
            "ACME", "flows", workspace="acme", host=api, path="flow.py",
            cloud_username_secret="PLANTED_BB_USER", cloud_app_password_secret=token_secret,
        )  # fmt: skip

    monkeypatch.setenv(ENV_PREFIX + "PLANTED_BB_USER", repo_api.username)
    for kind, refused in (
        ("github", "github-refused"),
        ("gitlab", "gitlab-refused"),
        ("bitbucket-server", "bitbucket-server-refused"),
        ("bitbucket-cloud-app-password", "bitbucket-cloud-refused"),
    ):
        if kind.startswith("bitbucket-cloud"):
            repo_api.password = tokens[kind]
        else:
            repo_api.token = tokens[kind]
        good = planted(f"PLANTED_{kind.upper().replace('-', '_')}", kind)
        bad = planted(f"PLANTED_{refused.upper().replace('-', '_')}", refused)
        assert round_trip(api_storage(kind, good), source, "api", "answer") == "from the api"
        expect_refused(api_storage(kind, bad), source, "api")
    request_targets += [r.path for r in repo_api.requests]
    assert not any(repo_api.token_seen_in_urls(token) for token in tokens.values())

    # -- CodeCommit: the secret key in the AWS_CREDENTIALS context secret -----------------------
    codecommit_server.add_repo("flows", hosted)
    options = {"endpoint_url": codecommit_server.endpoint_url}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    good_keys = {
        "ACCESS_KEY": AWS_ACCESS_KEY_ID,
        "SECRET_ACCESS_KEY": tokens["codecommit-secret-key"],
    }
    with context(secrets={"AWS_CREDENTIALS": good_keys}):
        round_trip(CodeCommit("flows", "flow.py", client_options=options), source, "api", "answer")
    bad_keys = {
        "ACCESS_KEY": "AKIAREFUSEDKEY000000",
        "SECRET_ACCESS_KEY": tokens["codecommit-refused"],
    }
    with context(secrets={"AWS_CREDENTIALS": bad_keys}):
        expect_refused(CodeCommit("flows", "flow.py", client_options=options), source, "api")
    for request in codecommit_server.requests:
        observed[f"CodeCommit {request.operation} request"] = json.dumps(
            {"headers": request.headers, "body": request.body}
        )

    # -- where every token must be absent -------------------------------------------------------
    for number, storage in enumerate(storages):
        observed[f"serialize() of storage {number} {storage!r}"] = json.dumps(storage.serialize())
        observed[f"repr of storage {number}"] = repr(storage)
    for number, record in enumerate(caplog.records):
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        observed[f"log record {number} ({record.name})"] = text
    observed["log text"] = caplog.text
    for error in errors:
        name = type(error).__name__
        observed[f"str({name}) {error}"] = str(error)
        observed[f"repr({name})"] = repr(error)
        observed[f"traceback of {name}"] = "".join(traceback.format_exception(error))
    observed.update(_files(home, "home file", skip=("secrets.toml",)))
    checkout_files = _files(checkouts, "checkout file")
    assert any(label.endswith(".git/config") for label in checkout_files), "no checkout kept"
    observed.update(checkout_files)
    observed["request targets the servers saw"] = "\n".join(request_targets)
    assert request_targets
    out, err = capfd.readouterr()
    observed["stdout"], observed["stderr"] = out, err

    _assert_absent(tokens, observed)
    # git hands a URL to its HTTP helper (git-remote-http) as an argument, so a token in the
    # query of the URL cannot be kept off that command line; the SSH passwords are.
    ssh_tokens = {k: v for k, v in tokens.items() if k.startswith("ssh")}
    _assert_absent(ssh_tokens, {"sampled git command lines": "\n".join(sampler.command_lines)})


def test_no_planted_token_leaks_from_ssh_or_query_tokens_in_clone_urls(
    git_repos: GitRepoFactory,
    git_ssh: SSHGitServer,
    git_http: GitHTTPServer,
    fault_proxy: Callable[[str], FaultProxy],
    local_flow: LocalFlow,
    checkouts: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Tokens in ``ssh://user:TOKEN@`` and ``?private_token=TOKEN`` clone URL secrets, used
    in process and by an agent's flow run whose fetch fails and is retried, show nowhere:
    warnings, exception texts, DEBUG logs, ``runs logs``, ``runs ls --json``, ``flows show
    --json``, the registry database or any other file under home but ``secrets.toml``."""
    from prefect_storage.agents import LocalAgent
    from prefect_storage.exceptions import BackendUnavailableError
    from prefect_storage.registry import REGISTRY_URL_ENV, FlowRegistry, RunState

    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv(REGISTRY_URL_ENV, raising=False)  # the registry lives under home
    monkeypatch.setenv("GIT_SSH_COMMAND", git_ssh.ssh_command)
    tokens = {
        kind: _token(kind)
        for kind in ("ssh-password", "ssh-refused", "ssh-unreachable", "query", "agent-query")
    }
    bare = git_repos.create(
        "flows", {"pipelines/flow.py": SIBLING_FILES, "pipelines/data.txt": "x\n"}
    )
    ssh_path = git_ssh.url(bare).partition(f"127.0.0.1:{git_ssh.port}")[2]
    proxy = fault_proxy(git_http.base_url)
    proxy.fail_next(503, times=1_000)  # the git server stays unavailable: every fetch is retried
    urls = {
        "SSH_URL": f"ssh://root:{tokens['ssh-password']}@127.0.0.1:{git_ssh.port}{ssh_path}",
        "SSH_REFUSED": f"ssh://nobody:{tokens['ssh-refused']}@127.0.0.1:{git_ssh.port}{ssh_path}",
        "SSH_DOWN": f"ssh://root:{tokens['ssh-unreachable']}@127.0.0.1:{git_ssh.port}{ssh_path}",
        "QUERY_URL": f"{proxy.url}/{repo_path(bare)}.git?private_token={tokens['query']}",
    }
    for name, url in urls.items():
        monkeypatch.setenv(ENV_PREFIX + name, url)
    observed: dict[str, str | bytes] = {}
    errors: list[BaseException] = []
    sampler = GitProcessSampler()

    # The password of an ssh:// URL is dropped (git would hand it to ssh as part of the user
    # name, on a command line); the key authenticates, so the clone works.
    flow = local_flow(SIBLING_FILES, "files-flow")
    storage = Git("pipelines/flow.py", git_clone_url_secret_name="SSH_URL")
    storage.retry_policy = FAST
    with sampler.running():
        storage.add_flow(flow)
        storage.build()
        rebuilt = Storage.deserialize(json.loads(json.dumps(storage.serialize())))
        assert result_of(rebuilt.get_flow("files-flow"), "read_data") == "x"
    assert sampler.command_lines, "no git process was sampled: the check would be vacuous"
    assert "carries a password" in caplog.text

    # The server's ssh_command names its port, and ssh's first -p wins over the URL's.
    closed = git_ssh.ssh_command.replace(f"-p {git_ssh.port}", f"-p {_closed_port()}")
    assert closed != git_ssh.ssh_command
    for secret_name, expected, ssh_command in (
        ("SSH_REFUSED", BackendAuthError, git_ssh.ssh_command),
        ("SSH_DOWN", BackendUnavailableError, closed),
        ("QUERY_URL", BackendUnavailableError, git_ssh.ssh_command),
    ):
        monkeypatch.setenv("GIT_SSH_COMMAND", ssh_command)
        failing = Git("pipelines/flow.py", git_clone_url_secret_name=secret_name)
        failing.retry_policy = FAST
        failing.add_flow(flow)
        with sampler.running(), pytest.raises(expected) as caught:
            failing.build()
        errors.append(caught.value)
    assert any(
        "failed (attempt 1 of 2)" in r.getMessage() and "private_token=***" in r.getMessage()
        for r in caplog.records
    ), "the query-token fetch was not retried with a redacted warning"
    assert proxy.count(path_contains=tokens["query"]) > 0  # the token really went to the server

    # An agent's flow run: registered while the server answers, run after the secret was
    # rotated to a query-token URL of the server that now fails (a fresh process, retried).
    monkeypatch.setenv("GIT_SSH_COMMAND", git_ssh.ssh_command)
    registry = FlowRegistry()
    flow.storage = Git("pipelines/flow.py", git_clone_url_secret_name="RUN_URL")
    monkeypatch.setenv(ENV_PREFIX + "RUN_URL", urls["SSH_URL"])
    flow.register(labels=["planted"], registry=registry)
    monkeypatch.setenv(
        ENV_PREFIX + "RUN_URL",
        f"{proxy.url}/{repo_path(bare)}.git?private_token={tokens['agent-query']}",
    )
    run = registry.create_flow_run("files-flow")
    assert LocalAgent(hostname_label=False, labels=["planted"], registry=registry).run_once() == [
        run.id
    ]
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.FAILED
    assert final.message and "private_token=***" in final.message, final.message
    assert proxy.count(path_contains=tokens["agent-query"]) > 1  # fetched and retried
    for args in (
        ("runs", "logs", run.id),
        ("runs", "logs", run.id, "--json"),
        ("runs", "ls", "--json"),
        ("flows", "show", "files-flow", "--json"),
    ):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
        observed[" ".join(args)] = done.stdout + done.stderr
    assert "attempt 1 of 5" in observed[f"runs logs {run.id}"]  # the retry warning is there

    for number, record in enumerate(caplog.records):
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        observed[f"log record {number} ({record.name})"] = text
    observed["log text"] = caplog.text
    for error in errors:
        name = type(error).__name__
        observed[f"str({name}) {error}"] = str(error)
        observed[f"repr({name})"] = repr(error)
        observed[f"traceback of {name}"] = "".join(traceback.format_exception(error))
    home_files = _files(home, "home file", skip=("secrets.toml",))
    assert any("registry.db" in label for label in home_files), sorted(home_files)
    observed.update(home_files)
    observed.update(_files(checkouts, "checkout file"))
    out, err = capfd.readouterr()
    observed["stdout"], observed["stderr"] = out, err

    _assert_absent(tokens, observed)
    # git hands a URL to its HTTP helper (git-remote-http) as an argument, so a token in the
    # query of the URL cannot be kept off that command line; the SSH passwords are.
    ssh_tokens = {k: v for k, v in tokens.items() if k.startswith("ssh")}
    _assert_absent(ssh_tokens, {"sampled git command lines": "\n".join(sampler.command_lines)})
