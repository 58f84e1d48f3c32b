"""Real git repositories and the three real git transports on loopback, for Git storage.

``GitRepoFactory(root).create("flows", {"flow.py": "..."})`` makes a real bare repository
``ROOT/flows.git`` (default branch ``main``, ``uploadpack.allowReachableSHA1InWant`` and
``uploadpack.allowAnySHA1InWant`` on) and returns a ``BareRepo``, whose methods write commits
straight into it with git's plumbing (no working tree, no clone): ``commit()`` (files as a dict
path -> content; ``None`` deletes a path), ``delete()``, ``tag()`` (lightweight or annotated),
``branch()``, ``commit_with_sha_containing()`` (a SHA with given digits), ``force_push()``
(move a branch back, as ``git push --force`` would) and ``purge_unreachable()`` (``git reflog
expire --expire=now --all && git gc --prune=now``, so a commit no ref reaches is really gone).
Every method returns SHAs.

Servers for such repositories (all serve every repository under one root folder):

- ``GitDaemon(root)`` -- ``git daemon`` (``git://127.0.0.1:N/<name>.git``), anonymous.
- ``GitHTTPServer(root)`` -- git's smart HTTP protocol: ``git http-backend`` run as CGI by a
  threaded stdlib HTTP server that demands HTTP Basic auth with ``token`` as the password
  (``username`` too when set; a ``Bearer`` token is accepted too unless ``allow_bearer`` is
  off), answers 401 with ``WWW-Authenticate: Basic realm="git"`` otherwise, and records every
  request (``requests``: method, path, headers) so a test can check where a token travelled.
  ``GitHTTPServer(root, https=True)`` serves HTTPS with a fresh self-signed certificate whose
  file is ``ca_file`` (for ``GIT_SSL_CAINFO``).
- ``SSHGitServer(root)`` -- Debian's OpenSSH ``sshd`` as root on a loopback port, with its own
  host key and one generated client key (key-only auth). ``ssh_command`` is the value for
  ``GIT_SSH_COMMAND``; ``url(name)`` / ``scp_url(name)`` are ``ssh://root@127.0.0.1:N/abs/path``
  and ``root@127.0.0.1:/abs/path`` (the scp form cannot carry a port: it needs ``-p N`` in the
  ssh command, which ``ssh_command`` has).

``GitRepoFactory(root, namespace="t-1")`` puts repositories in ``root/t-1/`` and names them
``t-1/flows.git``; every server's ``url()`` takes a ``BareRepo`` (or such a name).

The functions at the end (``resolve_commit``, ``tree_entry``, ``read_blob``, ``list_refs``,
``commit_info``, ...) read bare repositories for the API fakes in ``repo_api.py`` and
``codecommit.py``. Every git command this module runs sees no global or system git
configuration (``git_environment()``), and never prompts.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from tests.servers.loopback import LoopbackHTTPServer
from tests.servers.s3 import ServerNotInstalled, ServerProcess, ServerUnavailable

GIT = shutil.which("git") or "git"
SSHD = "/usr/sbin/sshd"

AUTHOR_NAME = "Flow Author"
AUTHOR_EMAIL = "flows@example.com"
_EPOCH = 1_700_000_000  # commit dates count up from here: every commit gets its own second
_clock = itertools.count()
_clock_lock = threading.Lock()


def git_environment(**extra: str) -> dict[str, str]:
    """The environment for git commands run by tests: no user/system config, no prompts."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") or key in ("GIT_EXEC_PATH",)
    }
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
    )
    env.update(extra)
    return env


def run_git(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` (isolated from user config); raises with git's stderr on failure."""
    process = subprocess.run(
        [GIT, *map(str, args)],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=dict(env) if env is not None else git_environment(),
    )
    if check and process.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(map(str, args))} failed ({process.returncode}): "
            f"{process.stderr.decode(errors='replace').strip()}"
        )
    return process


def _next_date() -> str:
    with _clock_lock:
        return f"{_EPOCH + next(_clock)} +0000"


# --- repositories ------------------------------------------------------------------------------
FileContent = str | bytes | None
"""A file's new content in ``BareRepo.commit``; ``None`` deletes the path."""


@dataclass
class BareRepo:
    """A real bare repository; see the module docstring."""

    path: Path
    name: str
    """The path relative to the factory's root, e.g. ``flows.git`` or ``team/flows.git``."""
    default_branch: str = "main"

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        """``git -C BARE ARGS``; returns stdout (stripped)."""
        return (
            run_git("-C", self.path, *args, input=input, check=check)
            .stdout.decode(errors="replace")
            .strip()
        )

    # -- reading -------------------------------------------------------------------------------
    def rev_parse(self, ref: str) -> str | None:
        """The commit SHA ``ref`` names (a tag is peeled), or None."""
        out = run_git(
            "-C", self.path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
        )
        if out.returncode != 0:
            return None
        return out.stdout.decode().strip() or None

    def has_object(self, sha: str) -> bool:
        """Whether the object database still holds ``sha`` (False once purged)."""
        return run_git("-C", self.path, "cat-file", "-e", sha, check=False).returncode == 0

    def show(self, ref: str, path: str) -> bytes:
        """The bytes of ``path`` at ``ref`` (``git show REF:PATH``)."""
        return run_git("-C", self.path, "show", f"{ref}:{path}").stdout

    def refs(self) -> dict[str, str]:
        """Every ref -> the SHA it points at (an annotated tag's own object SHA)."""
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)")
        return dict(tuple(line.split(" ", 1)) for line in out.splitlines() if line)

    @property
    def head(self) -> str | None:
        """The default branch's tip SHA (None in an empty repository)."""
        return self.rev_parse(f"refs/heads/{self.default_branch}")

    # -- writing -------------------------------------------------------------------------------
    def commit(
        self,
        files: Mapping[str, FileContent],
        branch: str | None = None,
        message: str | None = None,
        parent: str | None = None,
        executable: tuple[str, ...] = (),
        symlinks: tuple[str, ...] = (),
    ) -> str:
        """Commit ``files`` (path -> content; None deletes) on ``branch``; returns the SHA.

        The new commit's parent is ``parent`` when given (the branch is then moved to the new
        commit whatever it pointed at), else the branch's tip (a new branch starts from the
        default branch's tip, or as a root commit in an empty repository). Paths in
        ``executable`` get mode 100755; paths in ``symlinks`` are symbolic links to their
        content.
        """
        branch = branch or self.default_branch
        if parent is None:
            parent = self.rev_parse(f"refs/heads/{branch}")
            if parent is None and branch != self.default_branch:
                parent = self.head
        with tempfile.TemporaryDirectory(prefix="git-index-") as scratch:
            env = git_environment(GIT_INDEX_FILE=os.path.join(scratch, "index"))
            if parent is not None:
                run_git("-C", self.path, "read-tree", parent, env=env)
            lines = []
            for path, content in files.items():
                path = path.lstrip("/")
                if content is None:
                    lines.append(f"0 {'0' * 40}\t{path}")
                    continue
                data = content.encode() if isinstance(content, str) else bytes(content)
                blob = (
                    run_git("-C", self.path, "hash-object", "-w", "--stdin", input=data, env=env)
                    .stdout.decode()
                    .strip()
                )
                mode = (
                    "120000" if path in symlinks else "100755" if path in executable else "100644"
                )
                lines.append(f"{mode} {blob}\t{path}")
            run_git(
                "-C",
                self.path,
                "update-index",
                "--add",
                "--index-info",
                input="".join(line + "\n" for line in lines).encode(),
                env=env,
            )
            tree = run_git("-C", self.path, "write-tree", env=env).stdout.decode().strip()
        date = _next_date()
        env = git_environment(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        message = message or f"update {', '.join(sorted(files)) or 'nothing'} on {branch}"
        parents = ["-p", parent] if parent else []
        sha = (
            run_git("-C", self.path, "commit-tree", tree, *parents, "-m", message, env=env)
            .stdout.decode()
            .strip()
        )
        self.git("update-ref", f"refs/heads/{branch}", sha)
        return sha

    def commit_with_sha_containing(
        self, fragment: str, files: Mapping[str, FileContent], branch: str | None = None
    ) -> str:
        """Like ``commit()``, but the new SHA contains the hex ``fragment`` (a counter line
        is added to the message until it does): for messages that quote a SHA, whose digits
        must not be read as anything else (e.g. an HTTP status such as ``403``)."""
        branch = branch or self.default_branch
        first = self.commit(files, branch=branch)
        raw = run_git("-C", self.path, "cat-file", "commit", first).stdout
        for attempt in itertools.count():
            body = raw + f"attempt {attempt}\n".encode()
            digest = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
            if fragment in digest:
                sha = self.git("hash-object", "-t", "commit", "-w", "--stdin", input=body)
                assert sha == digest, (sha, digest)
                self.git("update-ref", f"refs/heads/{branch}", sha)
                return sha
        raise AssertionError("unreachable")

    def delete(self, *paths: str, branch: str | None = None, message: str | None = None) -> str:
        """Commit the removal of ``paths`` on ``branch``; returns the new commit's SHA."""
        return self.commit(
            dict.fromkeys(paths), branch=branch, message=message or f"delete {', '.join(paths)}"
        )

    def branch(self, name: str, ref: str | None = None) -> str:
        """Create (or move) branch ``name`` at ``ref`` (default: the default branch's tip)."""
        sha = self.rev_parse(ref or f"refs/heads/{self.default_branch}")
        if sha is None:
            raise ValueError(f"{ref!r} names no commit in {self.name}")
        self.git("update-ref", f"refs/heads/{name}", sha)
        return sha

    def tag(
        self, name: str, ref: str | None = None, annotated: bool = False, message: str | None = None
    ) -> str:
        """Tag ``ref`` (default: the default branch's tip) as ``name``.

        Returns the tagged commit's SHA for a lightweight tag and the tag object's own SHA for
        an annotated one (``rev_parse(name)`` peels it to the commit).
        """
        sha = self.rev_parse(ref or f"refs/heads/{self.default_branch}")
        if sha is None:
            raise ValueError(f"{ref!r} names no commit in {self.name}")
        if not annotated:
            self.git("update-ref", f"refs/tags/{name}", sha)
            return sha
        date = _next_date()
        body = (
            f"object {sha}\ntype commit\ntag {name}\n"
            f"tagger {AUTHOR_NAME} <{AUTHOR_EMAIL}> {date}\n\n{message or 'release ' + name}\n"
        )
        tag_sha = self.git("mktag", input=body.encode())
        self.git("update-ref", f"refs/tags/{name}", tag_sha)
        return tag_sha

    def delete_ref(self, ref: str) -> None:
        """Delete a ref (``refs/heads/x``, ``refs/tags/v1``)."""
        self.git("update-ref", "-d", ref)

    def force_push(self, branch: str, sha: str) -> str:
        """Move ``branch`` to ``sha`` (usually an ancestor), as ``git push --force`` does; the
        commits only the old tip reached become unreachable. Returns the old tip's SHA."""
        old = self.rev_parse(f"refs/heads/{branch}")
        if old is None:
            raise ValueError(f"no branch {branch!r} in {self.name}")
        self.git("update-ref", f"refs/heads/{branch}", sha)
        return old

    def purge_unreachable(self) -> None:
        """``git reflog expire --expire=now --all && git gc --prune=now``: unreachable objects
        are really deleted, so fetching them by SHA fails on every transport."""
        self.git("reflog", "expire", "--expire=now", "--all")
        self.git("gc", "--prune=now", "--quiet")

    def set_default_branch(self, branch: str) -> None:
        """Point ``HEAD`` (what clones check out, what APIs call the default) at ``branch``."""
        self.git("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        self.default_branch = branch


@dataclass
class GitRepoFactory:
    """Creates real bare repositories under ``root`` (see the module docstring).

    With a ``namespace`` they go into ``root/<namespace>/`` and their ``name`` (what servers
    of ``root`` put in URLs) is ``<namespace>/<name>.git``: tests sharing one served root
    cannot collide.
    """

    root: Path
    namespace: str = ""
    repos: dict[str, BareRepo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / self.namespace).mkdir(parents=True, exist_ok=True)

    def create(
        self,
        name: str | None = None,
        files: Mapping[str, FileContent] | None = None,
        default_branch: str = "main",
        message: str | None = None,
    ) -> BareRepo:
        """A new bare repository ``<name>.git`` (a unique name when None), with one commit of
        ``files`` on the default branch when given (empty otherwise)."""
        name = name or f"repo-{uuid.uuid4().hex[:10]}"
        relative = name if name.endswith(".git") else f"{name}.git"
        if self.namespace:
            relative = f"{self.namespace.strip('/')}/{relative}"
        path = self.root / relative
        if path.exists():
            raise FileExistsError(f"repository {relative} exists under {self.root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        run_git("init", "--quiet", "--bare", f"--initial-branch={default_branch}", path)
        for key, value in (
            ("uploadpack.allowReachableSHA1InWant", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("uploadpack.allowTipSHA1InWant", "true"),
            ("http.receivepack", "true"),
            ("gc.auto", "0"),
        ):
            run_git("-C", path, "config", key, value)
        repo = BareRepo(path=path, name=relative, default_branch=default_branch)
        self.repos[relative] = repo
        if files:
            repo.commit(files, message=message or "initial commit")
        return repo


def _relative(repo: str | BareRepo) -> str:
    """A repository's path below the served root: a ``BareRepo``'s name, or ``name[.git]``."""
    if isinstance(repo, BareRepo):
        return repo.name
    repo = repo.strip("/")
    return repo if repo.endswith(".git") else f"{repo}.git"


# --- git daemon (git://) -----------------------------------------------------------------------
def _tcp_answers(port: int, banner: bytes | None = None, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            if banner is None:
                return True
            sock.settimeout(timeout)
            return sock.recv(64).startswith(banner)
    except OSError:
        return False


class GitDaemon(ServerProcess):
    """``git daemon`` exporting every repository under ``root`` (see the module docstring)."""

    name = "git-daemon"
    bind_error_pattern = re.compile(
        r"address already in use|unable to allocate any listen sockets", re.IGNORECASE
    )

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self.root = Path(root)

    def command(self) -> list[str]:
        return [
            GIT,
            "daemon",
            f"--base-path={self.root}",
            "--export-all",
            "--reuseaddr",
            "--informative-errors",
            "--listen=127.0.0.1",
            f"--port={self.port}",
            str(self.root),
        ]

    def environment(self) -> dict[str, str]:
        return git_environment()

    def start(self) -> GitDaemon:
        if shutil.which(GIT) is None:
            raise ServerNotInstalled("git is not installed: apt-get install git")
        super().start()
        return self

    def ready(self) -> bool:
        assert self.port is not None
        return _tcp_answers(self.port)

    def url(self, repo: str | BareRepo) -> str:
        """``git://127.0.0.1:N/<name>.git`` for a repository under the root."""
        if self.port is None:
            raise RuntimeError("the git daemon is not started")
        return f"git://127.0.0.1:{self.port}/{_relative(repo)}"


# --- smart HTTP (git http-backend as CGI) -----------------------------------------------------
@dataclass
class GitHTTPRequest:
    method: str
    path: str
    """The request target as sent: path and query string (credentials in it would show here)."""
    headers: dict[str, str]
    user: str | None
    """The Basic-auth user name, when the request carried Basic credentials."""
    authorized: bool
    status: int = 0


class GitHTTPServer(LoopbackHTTPServer):
    """``git http-backend`` behind a threaded HTTP(S) server (see the module docstring)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        token: str | None = None,
        username: str | None = None,
        https: bool = False,
        allow_bearer: bool = True,
        anonymous: bool = False,
    ) -> None:
        self.root = Path(root)
        self.token = token or uuid.uuid4().hex
        self.username = username
        """When set, Basic auth must carry exactly this user name (else any name is fine)."""
        self.allow_bearer = allow_bearer
        self.anonymous = anonymous
        """When true, requests without credentials are served (wrong credentials still fail)."""
        self.https = https
        self.requests: list[GitHTTPRequest] = []
        self.ca_file: Path | None = None
        self._folder: Path | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> GitHTTPServer:
        if shutil.which(GIT) is None:
            raise ServerNotInstalled("git is not installed: apt-get install git")
        self._folder = Path(tempfile.mkdtemp(prefix="prefect-storage-git-http-"))
        if self.https and shutil.which("openssl") is None:
            raise ServerNotInstalled("openssl is not installed: HTTPS needs a certificate")
        self._serve(_handler_for(self), "git-http", self._use_tls if self.https else None)
        return self

    def _use_tls(self, httpd: ThreadingHTTPServer) -> None:
        cert, key = self._make_certificate()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)

    def stop(self) -> None:
        super().stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def reset(self, token: str | None = None) -> None:
        """Forget recorded requests; a new token (random unless given)."""
        with self._lock:
            self.requests.clear()
            self.token = token or uuid.uuid4().hex
            self.username = None
            self.anonymous = False
            self.allow_bearer = True

    # -- addresses -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"

    def url(self, repo: str | BareRepo) -> str:
        """``http(s)://127.0.0.1:N/<name>.git`` (no credentials in it)."""
        return f"{self.base_url}/{_relative(repo)}"

    def basic_header(self, token: str | None = None, username: str | None = None) -> str:
        """``Authorization: Basic ...`` for ``git -c http.extraHeader=...``."""
        user = username or self.username or "x-access-token"
        raw = f"{user}:{token if token is not None else self.token}".encode()
        return f"Authorization: Basic {base64.b64encode(raw).decode()}"

    def git_environment(self, **extra: str) -> dict[str, str]:
        """``git_environment()`` plus ``GIT_SSL_CAINFO`` for HTTPS."""
        if self.ca_file is not None:
            extra.setdefault("GIT_SSL_CAINFO", str(self.ca_file))
        return git_environment(**extra)

    def token_seen_in_urls(self, token: str | None = None) -> bool:
        """Whether any request target contained the token (it must travel in a header)."""
        token = token or self.token
        return any(token in request.path for request in self.requests)

    # -- helpers -------------------------------------------------------------------------------
    def _make_certificate(self) -> tuple[Path, Path]:
        assert self._folder is not None
        cert, key = self._folder / "cert.pem", self._folder / "key.pem"
        command = [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ]
        command += ["-keyout", str(key), "-out", str(cert)]
        subprocess.run(command, check=True, capture_output=True)
        self.ca_file = cert
        return cert, key

    def _check_auth(self, header: str | None) -> tuple[bool, str | None]:
        """(authorized, basic user name)."""
        if not header:
            return self.anonymous, None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False, None
            good = password == self.token and (self.username is None or user == self.username)
            return good, user
        if scheme.lower() == "bearer" and self.allow_bearer:
            return value == self.token, None
        return False, None

    def _record(self, request: GitHTTPRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, de-chunked when sent with ``Transfer-Encoding: chunked``."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size_line = handler.rfile.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _handler_for(server: GitHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            body = _read_body(self)
            authorized, user = server._check_auth(self.headers.get("Authorization"))
            record = GitHTTPRequest(
                self.command, self.path, dict(self.headers.items()), user, authorized
            )
            server._record(record)
            if not authorized:
                record.status = 401
                self._send(
                    401,
                    [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")],
                    b"Authentication required\n",
                )
                return
            path, _, query = self.path.partition("?")
            env = git_environment(
                GIT_PROJECT_ROOT=str(server.root),
                GIT_HTTP_EXPORT_ALL="1",
                REMOTE_USER=user or "token",
                REMOTE_ADDR=self.client_address[0],
                PATH_INFO=unquote(path),
                QUERY_STRING=query,
                REQUEST_METHOD=self.command,
                CONTENT_TYPE=self.headers.get("Content-Type", ""),
                CONTENT_LENGTH=str(len(body)),
                SERVER_PROTOCOL="HTTP/1.1",
                GATEWAY_INTERFACE="CGI/1.1",
            )
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            process = subprocess.run(
                [GIT, "http-backend"], input=body, capture_output=True, env=env
            )
            status, headers, payload = _parse_cgi(process.stdout)
            if process.returncode != 0 and not process.stdout:
                status, headers = 500, [("Content-Type", "text/plain")]
                payload = process.stderr or b"git http-backend failed\n"
            record.status = status
            self._send(status, headers, payload)

        do_GET = do_POST = do_HEAD = _handle

    return Handler


def _parse_cgi(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Split a CGI response into (status, headers, body); ``Status:`` sets the status."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = output.partition(separator)
        if found:
            break
    else:
        head, body = output, b""
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if not name:
            continue
        if name.strip().lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return status, headers, body


# --- SSH (OpenSSH sshd) -------------------------------------------------------------------------
class SSHGitServer(ServerProcess):
    """Debian's ``sshd`` on a loopback port, for git over SSH (see the module docstring)."""

    name = "sshd"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self.root = Path(root)
        self.client_key: Path | None = None
        self.user = "root"

    def start(self) -> SSHGitServer:
        if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
            raise ServerNotInstalled(
                "OpenSSH's server is not installed: apt-get install openssh-server"
            )
        if shutil.which("ssh") is None:
            raise ServerNotInstalled("OpenSSH's client is not installed: apt-get install ssh")
        if os.geteuid() != 0:
            raise ServerUnavailable("sshd for git tests must run as root (it logs in as root)")
        # sshd refuses to start without its privilege separation directory (systemd makes it).
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        super().start()
        return self

    def command(self) -> list[str]:
        assert self.folder is not None
        config = self.folder / "sshd_config"
        if not config.exists():
            self._write_config(config)
        return [
            SSHD, "-D", "-e", "-f", str(config), "-p", str(self.port),
            "-o", "ListenAddress=127.0.0.1",
        ]  # fmt: skip

    def _write_config(self, config: Path) -> None:
        assert self.folder is not None
        host_key = self.folder / "ssh_host_ed25519_key"
        self.client_key = self.folder / "client_ed25519"
        for key, comment in ((host_key, "host"), (self.client_key, "client")):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                check=True,
                capture_output=True,
            )
        authorized = self.folder / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        authorized.chmod(0o600)
        config.write_text(
            "\n".join(
                [
                    f"HostKey {host_key}",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "AcceptEnv GIT_PROTOCOL",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "UseDNS no",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "LogLevel VERBOSE",
                    "MaxStartups 100:30:200",
                    "",
                ]
            )
        )

    def ready(self) -> bool:
        assert self.port is not None
        return _tcp_answers(self.port, banner=b"SSH-")

    @property
    def ssh_command(self) -> str:
        """The ``GIT_SSH_COMMAND`` for this server (its key, its port, no host key checks)."""
        if self.client_key is None or self.port is None:
            raise RuntimeError("sshd is not started")
        return (
            f"ssh -i {self.client_key} -p {self.port} -F /dev/null "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR"
        )

    def git_environment(self, **extra: str) -> dict[str, str]:
        """``git_environment()`` plus ``GIT_SSH_COMMAND``."""
        extra.setdefault("GIT_SSH_COMMAND", self.ssh_command)
        return git_environment(**extra)

    def _path(self, repo: str | BareRepo) -> Path:
        return (self.root / _relative(repo)).resolve()

    def url(self, repo: str | BareRepo) -> str:
        """``ssh://root@127.0.0.1:N/abs/path/<name>.git``."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self._path(repo)}"

    def scp_url(self, repo: str | BareRepo) -> str:
        """``root@127.0.0.1:/abs/path/<name>.git`` (needs the port in ``ssh_command``)."""
        return f"{self.user}@127.0.0.1:{self._path(repo)}"


# --- reading bare repositories (for the API servers in repo_api.py and codecommit.py) ---------
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")
_REVISION_SYNTAX = re.compile(r"\.\.|[~^:\\*?\[\s]|@\{|^@$|^-|//|^/|/$|\.lock$")


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    """``100644``, ``100755`` (executable), ``120000`` (symlink), ``040000`` (tree), ``160000``."""
    type: str
    """``blob``, ``tree`` or ``commit`` (a submodule)."""
    sha: str
    size: int | None
    path: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: int
    committer_name: str
    committer_email: str
    committer_time: int
    message: str


@dataclass(frozen=True)
class RefInfo:
    name: str
    """The short name: ``main``, ``feature/x``, ``v1``."""
    ref: str
    """The full name: ``refs/heads/main``."""
    object: str
    """What the ref points at: an annotated tag's own object SHA, else the commit SHA."""
    commit: str
    """The commit it peels to."""

    @property
    def annotated(self) -> bool:
        return self.object != self.commit


def _git_out(bare: str | os.PathLike[str], *args: str) -> str | None:
    process = run_git("-C", bare, *args, check=False)
    if process.returncode != 0:
        return None
    return process.stdout.decode(errors="surrogateescape")


def default_branch(bare: str | os.PathLike[str]) -> str | None:
    """The branch ``HEAD`` names (also for an empty repository), or None when detached."""
    out = _git_out(bare, "symbolic-ref", "--quiet", "HEAD")
    return out.strip().removeprefix("refs/heads/") if out else None


def list_refs(bare: str | os.PathLike[str], kind: str = "heads") -> list[RefInfo]:
    """The branches (``heads``) or tags (``tags``), sorted by name, tags peeled."""
    fmt = "%(refname)%00%(objectname)%00%(*objectname)"
    out = _git_out(bare, "for-each-ref", f"--format={fmt}", f"refs/{kind}/") or ""
    refs = []
    for line in out.splitlines():
        ref, obj, peeled = line.split("\0")
        refs.append(RefInfo(ref.removeprefix(f"refs/{kind}/"), ref, obj, peeled or obj))
    return refs


def resolve_ref(bare: str | os.PathLike[str], spec: str | None) -> RefInfo | None:
    """The branch or tag ``spec`` names (short or full name; tags win, as in git), or None."""
    if not spec:
        return None
    candidates = [spec] if spec.startswith("refs/") else [f"refs/tags/{spec}", f"refs/heads/{spec}"]
    for ref in candidates:
        kind = ref.split("/")[1]
        for info in list_refs(bare, kind):
            if info.ref == ref:
                return info
    return None


def resolve_commit(bare: str | os.PathLike[str], spec: str | None) -> str | None:
    """The commit SHA that a branch, tag (peeled), full ref or (abbreviated) SHA names.

    ``None``, ``""`` and ``HEAD`` mean the default branch. Revision syntax (``main~1``, ``a..b``,
    ``HEAD@{1}``, ...) names nothing: the hosted services accept names and SHAs only. A SHA
    whose commit was purged names nothing either.
    """
    if not spec:
        branch = default_branch(bare)
        return resolve_commit(bare, f"refs/heads/{branch}") if branch else None
    if spec == "HEAD":
        return resolve_commit(bare, None)
    if _REVISION_SYNTAX.search(spec):
        return None
    info = resolve_ref(bare, spec)
    if info is not None:
        return info.commit
    if _HEX.fullmatch(spec):
        out = _git_out(bare, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
        if out and out.strip().startswith(spec.lower()):
            return out.strip()
    return None


def tree_entry(bare: str | os.PathLike[str], commit: str, path: str) -> TreeEntry | None:
    """The entry at ``path`` in ``commit``'s tree (file, folder, ...), or None."""
    path = path.strip("/")
    if not path:
        tree = (_git_out(bare, "rev-parse", f"{commit}^{{tree}}") or "").strip()
        return TreeEntry("040000", "tree", tree, None, "") if tree else None
    out = _git_out(bare, "ls-tree", "-l", "--full-tree", commit, "--", path)
    for line in (out or "").splitlines():
        meta, _, name = line.partition("\t")
        if name == path:
            mode, kind, sha, size = meta.split()
            return TreeEntry(mode, kind, sha, None if size == "-" else int(size), name)
    return None


def list_tree(bare: str | os.PathLike[str], commit: str, path: str = "") -> list[TreeEntry]:
    """The entries directly inside folder ``path`` of ``commit`` (sorted as git sorts them)."""
    path = path.strip("/")
    target = f"{commit}:{path}" if path else commit
    out = _git_out(bare, "ls-tree", "-l", target) or ""
    entries = []
    for line in out.splitlines():
        meta, _, name = line.partition("\t")
        mode, kind, sha, size = meta.split()
        full = f"{path}/{name}" if path else name
        entries.append(TreeEntry(mode, kind, sha, None if size == "-" else int(size), full))
    return entries


def read_blob(bare: str | os.PathLike[str], sha: str) -> bytes | None:
    """A blob's bytes, or None when there is no such blob."""
    process = run_git("-C", bare, "cat-file", "blob", sha, check=False)
    return process.stdout if process.returncode == 0 else None


def commit_info(bare: str | os.PathLike[str], commit: str) -> CommitInfo | None:
    """What ``git log -1`` knows about ``commit`` (a SHA), or None."""
    fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B"
    out = _git_out(bare, "log", "-1", f"--format={fmt}", f"{commit}^{{commit}}", "--")
    if not out:
        return None
    sha, tree, parents, an, ae, at, cn, ce, ct, message = out.split("\0", 9)
    return CommitInfo(
        sha, tree, tuple(parents.split()), an, ae, int(at), cn, ce, int(ct), message.rstrip("\n")
    )


def last_commit_for(bare: str | os.PathLike[str], commit: str, path: str) -> str | None:
    """The last commit at or before ``commit`` that changed ``path``."""
    out = _git_out(bare, "log", "-1", "--format=%H", commit, "--", path.strip("/"))
    return out.strip() or None if out else None
