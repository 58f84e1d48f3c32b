"""Execute every fenced code block of the user docs in ``idioms/`` (one test per page).

Rules (the pages are written to them; see ``idioms/README.md``):

* ```` ```python ```` blocks run in order, in-process, in one namespace per page, compiled
  with the file name ``<idioms/PAGE.md:block N>`` so a traceback points into the page.
* ```` ```bash ```` (or ``console``/``shell``) blocks run with ``bash -e`` in the same
  working directory and environment.
* ```` ```text ```` blocks are shown output only and are not run. Any other language (or
  none) is an error, and every page needs at least one code block.
* Each page runs in a fresh temporary working directory with a fresh
  ``PREFECT_STORAGE_HOME`` (the autouse ``home`` fixture), ``WEBHOOK_URL`` and
  ``WEBHOOK_TOKEN`` pointing at the loopback Webhook server, and the directory of this
  interpreter first on ``PATH`` (so ``prefect-storage`` and ``python`` are this
  environment's). No ``PREFECT_STORAGE_REGISTRY_URL`` comes in from the shell, so the
  registry is the page's own SQLite file under its home. ``sys.path``, ``os.environ``, the
  warning filters and the working directory are restored after the page, and the modules it
  imported from its working directory are dropped from ``sys.modules``.
* A page that talks to servers names them in a comment above its title, e.g.
  ``<!-- needs: s3 gcs azurite postgres -->``; only those are started, and they reach the
  page as environment variables: ``S3_ENDPOINT_URL`` (moto's S3 server, with dummy AWS
  credentials in ``AWS_*``), ``STORAGE_EMULATOR_HOST`` (the GCS emulator),
  ``AZURE_STORAGE_CONNECTION_STRING`` (Azurite) and ``REGISTRY_URL`` (a fresh, empty
  database on a PostgreSQL server). Each starts empty for each page.
* The repository servers (``git``, ``git-ssh``, ``repo-api``, ``codecommit``) serve one
  empty bare repository (default branch ``main``) that the page pushes its flows to with
  plain ``git``: ``FLOWS_REMOTE`` is its path on disk. ``git``: ``git daemon`` and smart
  HTTP behind Basic auth serve it as ``FLOWS_REPO`` (``<owner>/flows``) at
  ``GIT_DAEMON_HOST`` and ``GIT_HTTP_HOST`` (``127.0.0.1:PORT``), with the token
  ``GIT_HTTP_TOKEN``. ``git-ssh``: sshd at ``GIT_SSH_HOST``/``GIT_SSH_PORT`` lets
  ``GIT_SSH_USER`` in with the private key ``GIT_SSH_KEY``, and names repositories by their
  path (``FLOWS_REMOTE``). ``repo-api``: the GitHub/GitLab/Bitbucket Server/Bitbucket Cloud
  API fake serves it as ``acme/flows`` (and ``ACME/flows``, a Bitbucket project key) at
  ``GITHUB_API_URL`` (``.../api/v3``, as on GitHub Enterprise), ``GITLAB_URL``,
  ``BITBUCKET_SERVER_URL`` and ``BITBUCKET_CLOUD_URL`` (one server), with the token
  ``REPO_API_TOKEN`` and the Bitbucket Cloud user ``REPO_API_USERNAME`` whose app password
  is ``REPO_API_PASSWORD``. ``codecommit``: the CodeCommit fake serves it as ``flows`` at
  ``CODECOMMIT_ENDPOINT_URL``, with dummy AWS credentials in ``AWS_*``. Such pages see no
  global or system git configuration, none of the caller's ``GIT_*`` variables and none of
  the token variables the repository storages read (``TOKEN_VARIABLES``).
* ``docker``: the session's Docker engine (``DOCKER_HOST``; ``DOCKER_CONFIG`` an empty folder),
  a local image registry (``DOCKER_REGISTRY``, ``127.0.0.1:PORT``), the local Python base
  image (``PYTHON_BASE_IMAGE``: nothing can be pulled, so build with ``local_image=True``)
  and a wheel of this checkout (``PACKAGE_WHEEL``, for ``Docker(package_wheel=...)``).
"""

from __future__ import annotations

import linecache
import os
import re
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.registry import REGISTRY_URL_ENV
from tests.servers.webhook import WebhookServer

ROOT = Path(__file__).resolve().parent.parent
IDIOMS = ROOT / "idioms"
PAGES = sorted(IDIOMS.glob("*.md"))

RUN_AS = {"python": "python", "bash": "bash", "console": "bash", "shell": "bash"}
SHOWN_ONLY = {"text"}
LANGUAGES = sorted({*RUN_AS, *SHOWN_ONLY})

BASH_TIMEOUT = 120
SERVERS = ("s3", "gcs", "azurite", "postgres", "git", "git-ssh", "repo-api", "codecommit", "docker")
"""What a page may name in its ``<!-- needs: ... -->`` comment."""

REPO_SERVERS = ("git", "git-ssh", "repo-api", "codecommit")
"""Servers of the one bare repository ``FLOWS_REMOTE`` that a page pushes to."""

TOKEN_VARIABLES = (
    "GITHUB_ACCESS_TOKEN",
    "GITLAB_ACCESS_TOKEN",
    "BITBUCKET_ACCESS_TOKEN",
    "BITBUCKET_CLOUD_USERNAME",
    "BITBUCKET_CLOUD_APP_PASSWORD",
)
"""Credentials the repository storages read from the environment: a page sets its own."""

_NEEDS = re.compile(r"^<!--\s*needs:(?P<names>[^>]*)-->$")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*)$")
_FAILED_LINE = "__idioms_failed_line__"


@dataclass
class Block:
    number: int  # 1-based, counting every fenced block of the page
    language: str
    line: int  # line in the page of the block's first code line
    code: str

    def where(self, page: Path, line_in_block: int | None = None) -> str:
        line = self.line if line_in_block is None else self.line + line_in_block - 1
        language = self.language or "no language"
        return f"idioms/{page.name}, block {self.number} ({language}), line {line}"


def parse_blocks(page: Path) -> list[Block]:
    """Every fenced code block of ``page``, with its language and position."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip()
        language = info.split()[0].lower() if info else ""
        start = index
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while index < len(lines) and not closing.match(lines[index]):
            index += 1
        if index == len(lines):
            raise AssertionError(
                f"idioms/{page.name}: the code block opened on line {start} is never closed"
            )
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[start:index]
        ]
        blocks.append(Block(len(blocks) + 1, language, start + 1, "\n".join(body) + "\n"))
        index += 1
    return blocks


def page_needs(page: Path) -> list[str]:
    """The servers a page names in ``<!-- needs: ... -->`` comments above its title."""
    needs: list[str] = []
    for line in page.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        match = _NEEDS.match(line.strip())
        if match is None:
            break
        needs.extend(match["names"].split())
    unknown = sorted(set(needs) - set(SERVERS))
    assert not unknown, f"idioms/{page.name}: unknown server(s) {unknown}; use {list(SERVERS)}"
    return needs


def provide_servers(
    page: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start the servers ``page`` needs and put their addresses in the environment."""
    needs = page_needs(page)
    if "s3" in needs:
        s3 = request.getfixturevalue("s3")  # also sets dummy AWS_* credentials
        monkeypatch.setenv("S3_ENDPOINT_URL", s3.endpoint_url)
    if "gcs" in needs:
        request.getfixturevalue("gcs")  # sets STORAGE_EMULATOR_HOST
    if "azurite" in needs:
        azurite = request.getfixturevalue("azurite")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    if "postgres" in needs:
        server = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("REGISTRY_URL", server.url(server.create_database("idioms")))
    if any(name in needs for name in REPO_SERVERS):
        provide_repository(needs, request, monkeypatch)
    if "docker" in needs:
        request.getfixturevalue("docker_env")  # DOCKER_HOST, an empty DOCKER_CONFIG
        monkeypatch.setenv("DOCKER_REGISTRY", request.getfixturevalue("docker_registry").url)
        monkeypatch.setenv("PYTHON_BASE_IMAGE", request.getfixturevalue("python_base_image"))
        monkeypatch.setenv("PACKAGE_WHEEL", str(request.getfixturevalue("package_wheel")))


def provide_repository(
    needs: list[str], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One empty bare repository, served by the repository servers the page needs."""
    for name in list(os.environ):
        if name.startswith("GIT_") and name != "GIT_EXEC_PATH":
            monkeypatch.delenv(name)
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # No ~/.gitconfig or /etc/gitconfig: the page configures what it needs.
    config = request.getfixturevalue("tmp_path") / "gitconfig"
    config.touch()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")

    bare = request.getfixturevalue("git_repos").create("flows")
    monkeypatch.setenv("FLOWS_REMOTE", str(bare.path))
    monkeypatch.setenv("FLOWS_REPO", bare.name.removesuffix(".git"))
    if "git" in needs:
        daemon = request.getfixturevalue("git_daemon")
        http = request.getfixturevalue("git_http")
        monkeypatch.setenv("GIT_DAEMON_HOST", f"127.0.0.1:{daemon.port}")
        monkeypatch.setenv("GIT_HTTP_HOST", f"127.0.0.1:{http.port}")
        monkeypatch.setenv("GIT_HTTP_TOKEN", http.token)
    if "git-ssh" in needs:
        sshd = request.getfixturevalue("git_ssh")
        monkeypatch.setenv("GIT_SSH_HOST", "127.0.0.1")
        monkeypatch.setenv("GIT_SSH_PORT", str(sshd.port))
        monkeypatch.setenv("GIT_SSH_USER", sshd.user)
        monkeypatch.setenv("GIT_SSH_KEY", str(sshd.client_key))
    if "repo-api" in needs:
        api = request.getfixturevalue("repo_api")
        api.add_repo("acme/flows", bare)
        api.add_repo("ACME/flows", bare)  # a Bitbucket Server project key
        monkeypatch.setenv("GITHUB_API_URL", f"{api.github_url}/api/v3")  # as on Enterprise
        monkeypatch.setenv("GITLAB_URL", api.gitlab_url)
        monkeypatch.setenv("BITBUCKET_SERVER_URL", api.bitbucket_url)
        monkeypatch.setenv("BITBUCKET_CLOUD_URL", api.bitbucket_cloud_url)
        monkeypatch.setenv("REPO_API_TOKEN", api.token)
        monkeypatch.setenv("REPO_API_USERNAME", api.username)
        monkeypatch.setenv("REPO_API_PASSWORD", api.password)
    if "codecommit" in needs:
        codecommit = request.getfixturevalue("codecommit_server")  # sets dummy AWS_* too
        codecommit.add_repo("flows", bare)
        monkeypatch.setenv("CODECOMMIT_ENDPOINT_URL", codecommit.endpoint_url)


def _python_failure(page: Path, block: Block, filename: str, exc: BaseException) -> str:
    line_in_block = None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line_in_block = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == filename:
                line_in_block = frame.lineno
    # Skip this module's own frame: the traceback starts in the page.
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    shown = "".join(traceback.format_exception(type(exc), exc, tb))
    return f"{block.where(page, line_in_block)} failed:\n{shown}"


def run_python(page: Path, block: Block, namespace: dict[str, Any]) -> None:
    filename = f"<idioms/{page.name}:block {block.number}>"
    # Lets tracebacks quote the page's lines.
    linecache.cache[filename] = (len(block.code), None, block.code.splitlines(True), filename)
    try:
        exec(compile(block.code, filename, "exec"), namespace)
    except Exception as exc:  # report any failure against the page
        failure = _python_failure(page, block, filename, exc)
    else:
        return
    pytest.fail(failure, pytrace=False)


def run_bash(page: Path, block: Block) -> None:
    # The trap reports the failing line; it sits on its own first line, hence the -1.
    script = f"trap 'echo {_FAILED_LINE} $LINENO >&2' ERR\n{block.code}"
    try:
        done = subprocess.run(
            ["bash", "-e", "-c", script, f"idioms/{page.name}:block {block.number}"],
            cwd=os.getcwd(),
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=BASH_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where(page)} did not finish within {BASH_TIMEOUT} s", pytrace=False)
    if done.returncode == 0:
        return
    lines = re.findall(rf"^{_FAILED_LINE} (\d+)$", done.stderr, re.MULTILINE)
    stderr = re.sub(rf"^{_FAILED_LINE} \d+\n?", "", done.stderr, flags=re.MULTILINE)
    line_in_block = int(lines[0]) - 1 if lines else None
    pytest.fail(
        f"{block.where(page, line_in_block)} exited with status {done.returncode}\n"
        f"--- stdout ---\n{done.stdout}--- stderr ---\n{stderr}",
        pytrace=False,
    )


def _is_within(file: str | None, folder: Path) -> bool:
    return file is not None and Path(file).resolve().is_relative_to(folder.resolve())


def _page_ids() -> list[Any]:
    return [pytest.param(page, id=page.name) for page in PAGES]


def test_there_are_pages() -> None:
    assert (IDIOMS / "README.md") in PAGES
    assert len(PAGES) >= 2, "idioms/ holds no pages besides the index"


@pytest.mark.parametrize("page", _page_ids())
def test_idiom_page(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    webhook_server: WebhookServer,
) -> None:
    blocks = parse_blocks(page)
    assert blocks, f"idioms/{page.name} has no code block; every page needs at least one"
    unknown = [block for block in blocks if block.language not in LANGUAGES]
    assert not unknown, "\n".join(
        f"{block.where(page)}: unknown language {block.language!r}; use one of {LANGUAGES}"
        for block in unknown
    )

    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("WEBHOOK_URL", webhook_server.url)
    monkeypatch.setenv("WEBHOOK_TOKEN", webhook_server.token)
    monkeypatch.delenv(REGISTRY_URL_ENV, raising=False)
    provide_servers(page, request, monkeypatch)
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))

    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_environ = dict(os.environ)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        with warnings.catch_warnings():
            for block in blocks:
                if block.language in SHOWN_ONLY:
                    continue
                if RUN_AS[block.language] == "python":
                    run_python(page, block, namespace)
                else:
                    run_bash(page, block)
    finally:
        sys.path[:] = saved_path
        # Modules the page wrote and imported (``etl``, ``helpers``, ...) must not leak into
        # other pages or tests; library modules it imported first are kept, since importing
        # them twice would make two copies of their classes.
        for name in set(sys.modules) - saved_modules:
            if _is_within(getattr(sys.modules[name], "__file__", None), tmp_path):
                del sys.modules[name]
        os.environ.clear()
        os.environ.update(saved_environ)
        for key in [key for key in linecache.cache if key.startswith(f"<idioms/{page.name}:")]:
            del linecache.cache[key]


def test_readme_indexes_every_page() -> None:
    index = (IDIOMS / "README.md").read_text(encoding="utf-8")
    missing = [
        page.name for page in PAGES if page.name != "README.md" and f"({page.name})" not in index
    ]
    assert not missing, f"idioms/README.md does not link to: {missing}"


@pytest.mark.parametrize("page", [p for p in _page_ids() if p.values[0].name != "README.md"])
def test_idiom_page_shape(page: Path) -> None:
    """Title, a "When to use this" paragraph first, and a "What can go wrong" section."""
    text = page.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    while lines and _NEEDS.match(lines[0].strip()):
        lines.pop(0)  # the page's <!-- needs: ... --> comments
    assert lines[0].startswith("# "), f"idioms/{page.name} must start with a '# Title'"
    assert lines[1].startswith("**When to use this"), (
        f"idioms/{page.name}: the paragraph after the title must start with '**When to use this'"
    )
    assert "\n## What can go wrong" in text, f"idioms/{page.name} needs a '## What can go wrong'"
