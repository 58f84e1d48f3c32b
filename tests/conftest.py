"""Shared fixtures: a temporary home for every test, and the real local servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefect_storage.secrets import ENV_PREFIX
from tests.servers.webhook import WebhookServer


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own PREFECT_STORAGE_HOME and no ambient secrets."""
    home = tmp_path / "home"
    monkeypatch.setenv("PREFECT_STORAGE_HOME", str(home))
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="session")
def _webhook_server_process() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook_server(_webhook_server_process: WebhookServer) -> WebhookServer:
    """The loopback Webhook server, emptied and given a fresh token for each test."""
    _webhook_server_process.reset()
    return _webhook_server_process


# --- Object-store servers: S3 (moto), GCS (gcp-storage-emulator), Azure Blob (Azurite) ------
# Real servers as child processes on free loopback ports, one per session, reset per test.
# Not installed: the tests skip with the reason, except under CI where they fail. Installed
# but not starting: they fail everywhere, with the server's own output in the message.
from collections.abc import Callable  # noqa: E402

from tests.servers.azurite import Azurite  # noqa: E402
from tests.servers.faultproxy import FaultProxy  # noqa: E402
from tests.servers.gcs import GCSEmulator  # noqa: E402
from tests.servers.s3 import (  # noqa: E402
    AWS_ACCESS_KEY_ID,
    AWS_REGION,
    AWS_SECRET_ACCESS_KEY,
    MotoServer,
    ServerNotInstalled,
    ServerProcess,
    ServerUnavailable,
)


def _start_server(server: ServerProcess) -> None:
    try:
        server.start()
        return
    except ServerNotInstalled as exc:
        not_installed, reason = True, str(exc)
    except ServerUnavailable as exc:
        not_installed, reason = False, str(exc)
    if not_installed and not os.environ.get("CI"):
        pytest.skip(reason)
    if not_installed:
        reason += " (under CI a missing server is a failure: run scripts/bootstrap.sh)"
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3 server for the whole session (use ``s3`` in tests: it resets it)."""
    server = MotoServer()
    _start_server(server)
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoServer:
    """The moto S3 server with no buckets, and dummy AWS credentials in the environment.

    ``s3.endpoint_url``, ``s3.client()``, ``s3.new_bucket()``. The developer's own AWS
    profile, config files and endpoint overrides are hidden from the test.
    """
    s3_server.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config-absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials-absent"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
            monkeypatch.delenv(name)
    return s3_server


@pytest.fixture
def moto_server_factory() -> Iterator[Callable[[], MotoServer]]:
    """``moto_server_factory()`` starts a private moto server for this test (one the test may
    ``stop()`` or ``kill()`` mid-test); every one still running is stopped at teardown."""
    servers: list[MotoServer] = []

    def start() -> MotoServer:
        server = MotoServer()
        servers.append(server)
        _start_server(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSEmulator]:
    """gcp-storage-emulator for the whole session (use ``gcs`` in tests: it wipes it)."""
    server = GCSEmulator()
    _start_server(server)
    yield server
    server.stop()


@pytest.fixture
def gcs(gcs_server: GCSEmulator, monkeypatch: pytest.MonkeyPatch) -> GCSEmulator:
    """The GCS emulator with no buckets; ``STORAGE_EMULATOR_HOST`` points at it.

    ``gcs.endpoint``, ``gcs.client()``, ``gcs.new_bucket()``.
    """
    gcs_server.wipe()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    return gcs_server


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[Azurite]:
    """Azurite's Blob service for the whole session (use ``azurite`` in tests)."""
    server = Azurite()
    _start_server(server)
    yield server
    server.stop()


@pytest.fixture
def azurite(azurite_server: Azurite) -> Azurite:
    """Azurite with no containers: ``azurite.connection_string``, ``.bad_connection_string``,
    ``.connection_string_for(url)``, ``.new_container()``, ``.service_client()``."""
    azurite_server.reset()
    return azurite_server


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    """``fault_proxy(target_url)`` starts a recording, failure-injecting proxy in front of a
    server (e.g. ``fault_proxy(s3.endpoint_url)``); all are stopped at teardown."""
    proxies: list[FaultProxy] = []

    def start(target_url: str) -> FaultProxy:
        proxy = FaultProxy(target_url).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


# --- PostgreSQL, for the flow registry (tests/registry and the idioms) -----------------------
from tests.servers.postgres import PostgresServer  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; a test database per test on top of it.

    Under CI a server that does not start fails the tests that need it; elsewhere they are
    skipped with the reason (e.g. PostgreSQL not installed: run scripts/bootstrap.sh).
    """
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:
        reason = f"PostgreSQL server could not be started: {exc}"
    else:
        reason = None
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    yield server
    server.stop()


# --- Git repositories and the services that host them ----------------------------------------
# Real bare repositories (GitRepoFactory) served by real git transports (git daemon, git
# http-backend behind HTTP Basic auth, OpenSSH's sshd) and by local fakes of the GitHub, GitLab,
# Bitbucket and CodeCommit APIs that read those same repositories. Servers live for the session
# and serve one session folder; every test creates its repositories in its own namespace
# inside it (``git_repos``), and gets each server reset (new token, no recorded requests).
import shutil as _shutil  # noqa: E402
import uuid as _uuid  # noqa: E402

from tests.servers.codecommit import CodeCommitServer  # noqa: E402
from tests.servers.git import (  # noqa: E402
    GitDaemon,
    GitHTTPServer,
    GitRepoFactory,
    SSHGitServer,
)
from tests.servers.repo_api import RepoAPIServer  # noqa: E402


@pytest.fixture(scope="session")
def git_served_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every session git server serves (repositories go into per-test folders)."""
    return tmp_path_factory.mktemp("git-served")


@pytest.fixture
def git_repos(git_served_root: Path) -> Iterator[GitRepoFactory]:
    """Creates real bare repositories for this test: ``git_repos.create("flows", {path:
    content})`` returns a ``BareRepo`` (``commit``, ``tag``, ``branch``, ``delete``,
    ``force_push``, ``purge_unreachable``, ``rev_parse``); every git server fixture serves
    them (``git_daemon.url(repo)``, ``git_http.url(repo)``, ``git_ssh.url(repo)``)."""
    namespace = f"t-{_uuid.uuid4().hex[:10]}"
    yield GitRepoFactory(git_served_root, namespace=namespace)
    _shutil.rmtree(git_served_root / namespace, ignore_errors=True)


@pytest.fixture(scope="session")
def _git_daemon_process(git_served_root: Path) -> Iterator[GitDaemon]:
    server = GitDaemon(git_served_root)
    _start_server(server)
    yield server
    server.stop()


@pytest.fixture
def git_daemon(_git_daemon_process: GitDaemon) -> GitDaemon:
    """``git daemon`` (anonymous ``git://``) serving ``git_repos``: ``git_daemon.url(repo)``."""
    return _git_daemon_process


@pytest.fixture(scope="session")
def _git_http_process(git_served_root: Path) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(git_served_root)
    _start_server(server)  # type: ignore[arg-type]  # same start()/errors as a ServerProcess
    yield server
    server.stop()


@pytest.fixture
def git_http(_git_http_process: GitHTTPServer) -> GitHTTPServer:
    """Smart HTTP (``git http-backend``) serving ``git_repos`` behind Basic auth with a fresh
    ``git_http.token`` (any user name): ``url(repo)``, ``basic_header()``, ``requests``
    (method, path, headers of every request), ``token_seen_in_urls()``."""
    _git_http_process.reset()
    return _git_http_process


@pytest.fixture(scope="session")
def _git_https_process(git_served_root: Path) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(git_served_root, https=True)
    _start_server(server)  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture
def git_https(_git_https_process: GitHTTPServer) -> GitHTTPServer:
    """``git_http`` over HTTPS with a self-signed certificate: ``git_https.ca_file`` is the
    file for ``GIT_SSL_CAINFO`` (``git_https.git_environment()`` sets it)."""
    _git_https_process.reset()
    return _git_https_process


@pytest.fixture(scope="session")
def _git_ssh_process(git_served_root: Path) -> Iterator[SSHGitServer]:
    server = SSHGitServer(git_served_root)
    _start_server(server)
    yield server
    server.stop()


@pytest.fixture
def git_ssh(_git_ssh_process: SSHGitServer) -> SSHGitServer:
    """OpenSSH's sshd (as root, key-only) serving ``git_repos``: ``git_ssh.url(repo)``
    (``ssh://root@127.0.0.1:N/abs/path.git``), ``scp_url(repo)``, ``ssh_command`` (the
    ``GIT_SSH_COMMAND`` with the client key), ``client_key``."""
    return _git_ssh_process


@pytest.fixture(scope="session")
def _repo_api_process() -> Iterator[RepoAPIServer]:
    server = RepoAPIServer().start()
    yield server
    server.stop()


@pytest.fixture
def repo_api(_repo_api_process: RepoAPIServer) -> RepoAPIServer:
    """The GitHub / GitLab / Bitbucket Server / Bitbucket Cloud API fake, with no repositories
    and fresh credentials: ``repo_api.add_repo("acme/flows", bare_repo, public=False)``, then
    ``github_url``/``gitlab_url``/``bitbucket_url``/``bitbucket_cloud_url`` with
    ``repo_api.token`` (or ``username``/``password`` for Bitbucket Cloud); ``requests``."""
    _repo_api_process.reset()
    return _repo_api_process


@pytest.fixture(scope="session")
def _codecommit_process() -> Iterator[CodeCommitServer]:
    server = CodeCommitServer().start()
    yield server
    server.stop()


@pytest.fixture
def codecommit_server(
    _codecommit_process: CodeCommitServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CodeCommitServer:
    """The CodeCommit endpoint with no repositories: ``codecommit_server.add_repo("flows",
    bare_repo)``, ``.endpoint_url``, ``.client()``, ``.requests``. Dummy AWS credentials are
    in the environment (the access key it accepts); the developer's AWS profile is hidden."""
    _codecommit_process.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config-absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials-absent"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
            monkeypatch.delenv(name)
    return _codecommit_process


# --- Docker: a real engine, a local registry, a Python base image, this package's wheel ------
# tests/servers/docker.py. No image can be pulled here: `python_base_image` is built locally
# (debootstrap + docker import; cached in .cache/, so only the first session pays ~1 min).
# A missing dockerd / docker-registry / debootstrap skips outside CI and fails under CI; a
# daemon, registry or build that fails fails everywhere.
from tests.servers import docker as _docker_servers  # noqa: E402
from tests.servers.docker import DockerDaemon, LocalRegistry  # noqa: E402


def _docker_progress(config: pytest.Config) -> Callable[[str], None]:
    """Progress lines for slow set-up steps, shown on the terminal even while capturing."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def progress(message: str) -> None:
        if capture is None:
            _docker_servers.print_progress(message)
            return
        with capture.global_and_fixture_disabled():
            _docker_servers.print_progress(message)

    return progress


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[DockerDaemon]:
    """``dockerd`` for the whole session on a private socket (``docker_daemon.host``,
    ``.client()``); sets no environment (use ``docker_env`` for ``DOCKER_HOST``). Images tagged
    ``prefect-storage-test/...`` persist between sessions; other images and all containers
    are removed when it starts and stops. Containers run with ``network_mode`` "none"/"host"."""
    daemon = DockerDaemon()
    _start_server(daemon)
    yield daemon
    daemon.stop()


@pytest.fixture
def docker_env(
    monkeypatch: pytest.MonkeyPatch, docker_daemon: DockerDaemon, tmp_path: Path
) -> DockerDaemon:
    """``DOCKER_HOST`` set to the session's daemon for this test (``docker.from_env()`` works);
    TLS and context variables removed, ``DOCKER_CONFIG`` an empty folder (no credentials or
    helpers from ``~/.docker``). Returns the daemon."""
    monkeypatch.setenv("DOCKER_HOST", docker_daemon.host)
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT", "DOCKER_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return docker_daemon


@pytest.fixture(scope="session")
def docker_registry() -> Iterator[LocalRegistry]:
    """A Docker registry on loopback for the session: push to ``f"{docker_registry.url}/name:tag"``
    (``127.0.0.1:PORT``, plain HTTP); ``.tags(name)``. Use unique repository names per test."""
    registry = LocalRegistry()
    _start_server(registry)
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def python_base_image(docker_daemon: DockerDaemon, pytestconfig: pytest.Config) -> str:
    """``prefect-storage-test/python:bookworm`` in ``docker_daemon``: Debian 12, python3 3.11
    (also ``python``), pip with ``PIP_BREAK_SYSTEM_PACKAGES=1``, the host CA bundle. Build
    FROM it with ``network_mode="host"`` to ``pip install`` from the package index; never pull
    it (``local_image=True`` for Docker storage)."""
    try:
        return _docker_servers.python_base_image(docker_daemon, _docker_progress(pytestconfig))
    except ServerNotInstalled as exc:
        if not os.environ.get("CI"):
            pytest.skip(str(exc))
        pytest.fail(f"{exc} (under CI this is a failure: run scripts/bootstrap.sh)", pytrace=False)
    except Exception as exc:
        pytest.fail(f"the Python base image could not be built: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def package_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout (``prefect_storage-<version>-py3-none-any.whl``), built once
    per session, to ``COPY`` into images and ``pip install`` there."""
    try:
        return _docker_servers.build_wheel(
            _docker_servers.REPO_ROOT, tmp_path_factory.mktemp("wheel")
        )
    except Exception as exc:
        pytest.fail(str(exc), pytrace=False)
