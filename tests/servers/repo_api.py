"""One local HTTP server that speaks the GitHub, GitLab and Bitbucket (Server and Cloud) REST
APIs the official Python clients use, serving files from real bare git repositories.

No emulator exists for these services, so this is a small, faithful fake: every answer is read
from a real bare repository with git itself (``git ls-tree``, ``git cat-file``, ``git log``,
``git for-each-ref``), and errors are the bodies and status codes the real services send, so
each client raises its own real exception. Register a repository under ``owner/name`` (GitHub
owner, GitLab namespace -- nested ``group/sub/name`` works --, Bitbucket Server project key,
Bitbucket Cloud workspace) with ``add_repo("acme/flows", bare_path, public=False)``: it is then
served by all four APIs at once.

Base URLs (``server.url`` is ``http://127.0.0.1:N``):

- GitHub: ``Github(base_url=server.github_url, auth=Auth.Token(server.token),
  seconds_between_requests=0)`` (``github_url`` is ``server.url``; ``.../api/v3`` works too,
  as on GitHub Enterprise). Token: ``Authorization: token T`` (what PyGithub sends) or
  ``Bearer T``.
- GitLab: ``Gitlab(server.gitlab_url, private_token=server.token)`` -> ``/api/v4``; token in
  ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``; GitLab's ``?private_token=`` query works
  too, as on gitlab.com -- tests can assert no one used it via ``token_seen_in_urls()``).
- Bitbucket Server: ``Bitbucket(url=server.bitbucket_url, token=server.token)`` ->
  ``/rest/api/1.0``; ``Authorization: Bearer T`` (or Basic ``user:T``).
- Bitbucket Cloud: ``Cloud(url=server.bitbucket_cloud_url, username=server.username,
  password=server.password)`` -> ``/2.0``; HTTP Basic (or ``Bearer server.token``). Lists
  are paged ``page_size`` (default 2) entries at a time unless the client asks for
  ``pagelen``, so paging code really runs.

Auth, as the real services do it: a wrong token is 401 everywhere (even for a public repo);
no credentials reach public repositories only (a private one is then GitHub/GitLab 404,
Bitbucket Server 401, Bitbucket Cloud 403).

``requests`` records every request (api, method, target with query, headers, status);
``token_seen_in_urls(secret)`` says whether a secret ever appeared in a request target.
``fail_next(status)`` makes the next request(s) answer an error. ``reset()`` forgets repos
and requests and draws new credentials.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from tests.servers import git as g
from tests.servers.loopback import LoopbackHTTPServer

Response = tuple[int, dict[str, str], bytes]
JSON = "application/json; charset=utf-8"
BITBUCKET_JSON = "application/json;charset=UTF-8"  # exactly what atlassian's client checks


@dataclass
class APIRequest:
    api: str
    """``github``, ``gitlab``, ``bitbucket`` (Server), ``bitbucket-cloud`` or ``unknown``."""
    method: str
    path: str
    """The request target as sent, with its query string."""
    headers: dict[str, str]
    status: int = 0


@dataclass
class HostedRepo:
    full_name: str
    bare: Path
    public: bool
    id: int

    @property
    def owner(self) -> str:
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[1]


@dataclass
class RepoAPIServer(LoopbackHTTPServer):
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    """GitHub token, GitLab private token, Bitbucket Server HTTP access token, Cloud bearer."""
    username: str = "flow-bot"
    """Bitbucket Cloud user name (for Basic auth)."""
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Bitbucket Cloud app password (for Basic auth)."""
    page_size: int = 2
    """Entries per page of a Bitbucket list when the client does not ask for a size."""
    github_max_content: int = 1024 * 1024
    """GitHub's contents API sends no content for larger files (``encoding: none``)."""
    repos: dict[str, HostedRepo] = field(default_factory=dict)
    requests: list[APIRequest] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _next_id: int = 1000

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> RepoAPIServer:
        self._serve(_handler_for(self), "repo-api")
        return self

    def reset(self) -> None:
        """No repositories, no recorded requests, fresh credentials, default settings."""
        with self._lock:
            self.repos.clear()
            self.requests.clear()
            self._failures.clear()
            self.token = uuid.uuid4().hex
            self.password = uuid.uuid4().hex
            self.username = "flow-bot"
            self.page_size = 2
            self.github_max_content = 1024 * 1024

    # -- configuration -------------------------------------------------------------------------
    def add_repo(
        self, full_name: str, bare: str | Path | g.BareRepo, public: bool = False
    ) -> HostedRepo:
        """Serve bare repository ``bare`` as ``owner/name`` on every API."""
        if isinstance(bare, g.BareRepo):
            bare = bare.path
        if "/" not in full_name.strip("/"):
            raise ValueError(f"{full_name!r} is not owner/name")
        with self._lock:
            self._next_id += 1
            repo = HostedRepo(full_name.strip("/"), Path(bare), public, self._next_id)
            self.repos[repo.full_name] = repo
        return repo

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` requests (of any API) answer ``status`` with a JSON error."""
        with self._lock:
            self._failures.extend([status] * times)

    # -- addresses and inspection --------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    github_url = url
    gitlab_url = url
    bitbucket_url = url
    bitbucket_cloud_url = url

    def requests_for(self, api: str) -> list[APIRequest]:
        return [request for request in self.requests if request.api == api]

    def token_seen_in_urls(self, secret: str | None = None) -> bool:
        """Whether ``secret`` (default: the token and the password) was in any request target."""
        secrets = [secret] if secret else [self.token, self.password]
        return any(s in unquote(r.path) for r in self.requests for s in secrets)

    # -- request dispatch ----------------------------------------------------------------------
    def _respond(self, method: str, target: str, headers: dict[str, str], host: str) -> Response:
        path, _, query_string = target.partition("?")
        query = {k: v[-1] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
        segments = [unquote(s) for s in path.split("/")[1:]]
        lower = {k.lower(): v for k, v in headers.items()}
        base = f"http://{host}"
        if path.startswith("/api/v4/"):
            api, handler = "gitlab", _GitLab(self, base, lower, query)
            segments = segments[2:]
        elif path.startswith(("/rest/api/1.0/", "/rest/api/latest/")):
            api, handler = "bitbucket", _BitbucketServer(self, base, lower, query)
            segments = segments[3:]
        elif path.startswith("/2.0/"):
            api, handler = "bitbucket-cloud", _BitbucketCloud(self, base, lower, query)
            segments = segments[1:]
        elif path.startswith(("/repos/", "/repositories/", "/api/v3/", "/raw/")):
            prefix = "/api/v3" if path.startswith("/api/v3/") else ""
            api, handler = "github", _GitHub(self, base + prefix, lower, query)
            segments = segments[2:] if prefix else segments
        else:
            api, handler = "unknown", None
        record = APIRequest(api, method, target, dict(headers))
        with self._lock:
            self.requests.append(record)
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            response: Response = _json(failure, {"message": "injected failure"})
        elif handler is None:
            response = _json(404, {"message": "Not Found"})
        else:
            try:
                response = handler.handle(method, path, segments)
            except Exception as exc:  # a bug in this fake: make it visible, not a hang
                response = _json(500, {"message": f"fake server error: {exc!r}"})
        record.status = response[0]
        return response

    def _find(self, full_name: str) -> HostedRepo | None:
        with self._lock:
            return self.repos.get(full_name)

    def _find_id(self, repo_id: int) -> HostedRepo | None:
        with self._lock:
            return next((r for r in self.repos.values() if r.id == repo_id), None)

    def _owners(self) -> set[str]:
        with self._lock:
            return {repo.owner for repo in self.repos.values()}


def _json(status: int, payload: Any, content_type: str = JSON, **headers: str) -> Response:
    return status, {"Content-Type": content_type, **headers}, json.dumps(payload).encode()


def _raw(data: bytes, content_type: str = "text/plain; charset=utf-8", **headers: str) -> Response:
    return 200, {"Content-Type": content_type, **headers}, data


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64_lines(data: bytes) -> str:
    """Base64 in lines of 60 characters, each ending with a newline (as GitHub sends it)."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


class _API:
    def __init__(
        self, server: RepoAPIServer, base: str, headers: dict[str, str], query: dict[str, str]
    ) -> None:
        self.server, self.base, self.headers, self.query = server, base, headers, query

    def handle(self, method: str, path: str, segments: list[str]) -> Response:
        raise NotImplementedError

    def _credentials(self) -> tuple[str, str] | None:
        """(scheme, secret) from ``Authorization``; Basic gives ``user:password``."""
        header = self.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value).decode()
            except ValueError:
                value = ""
        return scheme.lower(), value


# --- GitHub ----------------------------------------------------------------------------------
class _GitHub(_API):
    docs = "https://docs.github.com/rest"

    def _error(self, status: int, message: str, doc: str = "") -> Response:
        return _json(
            status,
            {"message": message, "documentation_url": f"{self.docs}{doc}", "status": str(status)},
        )

    def _auth(self) -> str:
        """``ok``, ``anonymous`` or ``bad``."""
        credentials = self._credentials()
        if credentials is None:
            return "anonymous"
        scheme, secret = credentials
        if scheme in ("token", "bearer"):
            return "ok" if secret == self.server.token else "bad"
        if scheme == "basic":
            return "ok" if secret.partition(":")[2] == self.server.token else "bad"
        return "bad"

    def handle(self, method: str, path: str, segments: list[str]) -> Response:
        auth = self._auth()
        if auth == "bad":
            return self._error(401, "Bad credentials")
        if method not in ("GET", "HEAD"):
            return self._error(404, "Not Found")
        if segments[:1] == ["repositories"] and len(segments) >= 2 and segments[1].isdigit():
            repo = self.server._find_id(int(segments[1]))
            rest = segments[2:]
        elif segments[:1] in (["repos"], ["raw"]) and len(segments) >= 3:
            repo = self.server._find(f"{segments[1]}/{segments[2]}")
            rest = segments[3:]
        else:
            return self._error(404, "Not Found")
        if repo is None or (auth == "anonymous" and not repo.public):
            return self._error(404, "Not Found", "/repos/repos#get-a-repository")
        if segments[0] == "raw":
            return self._raw_download(repo, rest)
        api = f"{self.base}/repos/{repo.full_name}"
        if not rest:
            return _json(200, self._repo_json(repo, api))
        if rest[0] == "commits" and len(rest) >= 2:
            ref = "/".join(rest[1:])
            sha = g.resolve_commit(repo.bare, ref)
            if sha is None:
                return self._error(422, f"No commit found for SHA: {ref}", "/commits/commits")
            return _json(200, self._commit_json(repo, api, sha))
        if rest[0] == "branches" and len(rest) >= 2:
            name = "/".join(rest[1:])
            info = g.resolve_ref(repo.bare, f"refs/heads/{name}")
            if info is None:
                return self._error(404, "Branch not found", "/branches/branches#get-a-branch")
            commit = self._commit_json(repo, api, info.commit)
            return _json(200, {"name": name, "commit": commit, "protected": False})
        if rest[0] == "contents":
            return self._contents(repo, api, "/".join(rest[1:]))
        if rest[:2] == ["git", "blobs"] and len(rest) == 3:
            data = g.read_blob(repo.bare, rest[2])
            if data is None:
                return self._error(404, "Not Found", "/git/blobs#get-a-blob")
            return _json(
                200,
                {
                    "sha": rest[2],
                    "node_id": rest[2],
                    "size": len(data),
                    "url": f"{api}/git/blobs/{rest[2]}",
                    "content": _b64_lines(data),
                    "encoding": "base64",
                },
            )
        return self._error(404, "Not Found")

    def _repo_json(self, repo: HostedRepo, api: str) -> dict[str, Any]:
        host = self.base.removesuffix("/api/v3")
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": not repo.public,
            "visibility": "public" if repo.public else "private",
            "owner": {
                "login": repo.owner,
                "id": abs(hash(repo.owner)) % 10**6,
                "type": "Organization",
                "url": f"{self.base}/users/{repo.owner}",
            },
            "html_url": f"{host}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": api,
            "contents_url": f"{api}/contents/{{+path}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "clone_url": f"{host}/{repo.full_name}.git",
            "default_branch": g.default_branch(repo.bare) or "main",
            "archived": False,
            "disabled": False,
            "permissions": {"admin": False, "push": False, "pull": True},
        }

    def _commit_json(self, repo: HostedRepo, api: str, sha: str) -> dict[str, Any]:
        info = g.commit_info(repo.bare, sha)
        assert info is not None
        person = {"name": info.author_name, "email": info.author_email}
        return {
            "sha": info.sha,
            "node_id": f"C_{info.sha}",
            "url": f"{api}/commits/{info.sha}",
            "html_url": f"{self.base.removesuffix('/api/v3')}/{repo.full_name}/commit/{info.sha}",
            "commit": {
                "url": f"{api}/git/commits/{info.sha}",
                "message": info.message,
                "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
                "author": {**person, "date": _iso(info.author_time)},
                "committer": {
                    "name": info.committer_name,
                    "email": info.committer_email,
                    "date": _iso(info.committer_time),
                },
                "comment_count": 0,
            },
            "author": None,
            "committer": None,
            "parents": [{"sha": p, "url": f"{api}/commits/{p}"} for p in info.parents],
            "files": [],
            "stats": {"total": 0, "additions": 0, "deletions": 0},
        }

    def _entry_json(self, repo: HostedRepo, api: str, entry: g.TreeEntry, ref: str) -> dict:
        # GitHub lists a submodule as "file" in a folder listing (documented, for compatibility)
        kind = "dir" if entry.type == "tree" else "file"
        if entry.mode == "120000":
            kind = "symlink"
        url = f"{api}/contents/{quote(entry.path)}?ref={quote(ref, safe='')}"
        git_kind = "trees" if entry.type == "tree" else "blobs"
        host = self.base.removesuffix("/api/v3")
        download = f"{host}/raw/{repo.full_name}/{quote(ref, safe='')}/{quote(entry.path)}"
        return {
            "type": kind,
            "name": entry.name,
            "path": entry.path,
            "sha": entry.sha,
            "size": entry.size or 0,
            "url": url,
            "git_url": f"{api}/git/{git_kind}/{entry.sha}",
            "html_url": f"{host}/{repo.full_name}/blob/{ref}/{entry.path}",
            "download_url": download if kind == "file" else None,
            "_links": {"self": url, "git": f"{api}/git/{git_kind}/{entry.sha}"},
        }

    def _contents(self, repo: HostedRepo, api: str, path: str) -> Response:
        doc = "/repos/contents#get-repository-content"
        ref = self.query.get("ref") or g.default_branch(repo.bare) or "main"
        sha = g.resolve_commit(repo.bare, ref)
        if sha is None:
            if g.resolve_commit(repo.bare, None) is None:
                return self._error(404, "This repository is empty.", doc)
            return self._error(404, f"No commit found for the ref {ref}", doc)
        entry = g.tree_entry(repo.bare, sha, path)
        if entry is None:
            return self._error(404, "Not Found", doc)
        if entry.type == "tree":
            entries = g.list_tree(repo.bare, sha, path)
            return _json(200, [self._entry_json(repo, api, e, ref) for e in entries])
        data = g.read_blob(repo.bare, entry.sha) or b""
        accept = self.headers.get("accept", "")
        if "raw" in accept and "vnd.github" in accept:
            return _raw(data, "application/vnd.github.raw")
        payload = self._entry_json(repo, api, entry, ref)
        if len(data) > self.server.github_max_content:
            payload.update(content="", encoding="none")
        else:
            payload.update(content=_b64_lines(data), encoding="base64")
        return _json(200, payload)

    def _raw_download(self, repo: HostedRepo, rest: list[str]) -> Response:
        if len(rest) < 2:
            return 404, {"Content-Type": "text/plain"}, b"404: Not Found"
        sha = g.resolve_commit(repo.bare, rest[0])
        entry = g.tree_entry(repo.bare, sha, "/".join(rest[1:])) if sha else None
        if entry is None or entry.type != "blob":
            return 404, {"Content-Type": "text/plain"}, b"404: Not Found"
        return _raw(g.read_blob(repo.bare, entry.sha) or b"")


# --- GitLab ----------------------------------------------------------------------------------
class _GitLab(_API):
    def _auth(self) -> str:
        secret = (
            self.headers.get("private-token")
            or self.query.get("private_token")
            or self.query.get("access_token")
        )
        credentials = self._credentials()
        if secret is None and credentials is not None and credentials[0] == "bearer":
            secret = credentials[1]
        if secret is None:
            return "anonymous"
        return "ok" if secret == self.server.token else "bad"

    def handle(self, method: str, path: str, segments: list[str]) -> Response:
        auth = self._auth()
        if auth == "bad":
            return _json(401, {"message": "401 Unauthorized"})
        if not segments or segments[0] != "projects" or len(segments) < 2:
            return _json(404, {"error": "404 Not Found"})
        # the project id or URL-encoded path is ONE raw path segment: split before unquoting
        raw_segments = path.split("/")[4:]
        ident = unquote(raw_segments[0])
        repo = self.server._find_id(int(ident)) if ident.isdigit() else self.server._find(ident)
        if repo is None or (auth == "anonymous" and not repo.public):
            return _json(404, {"message": "404 Project Not Found"})
        rest = [unquote(s) for s in raw_segments[1:]]
        if method not in ("GET", "HEAD"):
            return _json(405, {"message": "405 Method Not Allowed"})
        if not rest:
            return _json(200, self._project_json(repo))
        if rest[0] != "repository" or len(rest) < 2:
            return _json(404, {"error": "404 Not Found"})
        kind, args = rest[1], rest[2:]
        if kind == "files" and len(args) in (1, 2) and args[1:] in ([], ["raw"]):
            return self._file(method, repo, args[0], raw=args[1:] == ["raw"])
        if kind == "commits" and len(args) == 1:
            sha = g.resolve_commit(repo.bare, args[0])
            if sha is None:
                return _json(404, {"message": "404 Commit Not Found"})
            return _json(200, self._commit_json(repo, sha))
        if kind == "branches" and len(args) == 1:
            info = g.resolve_ref(repo.bare, f"refs/heads/{args[0]}")
            if info is None:
                return _json(404, {"message": "404 Branch Not Found"})
            return _json(
                200,
                {
                    "name": info.name,
                    "commit": self._commit_json(repo, info.commit),
                    "merged": False,
                    "protected": False,
                    "default": info.name == g.default_branch(repo.bare),
                    "web_url": f"{self.base}/{repo.full_name}/-/tree/{info.name}",
                },
            )
        if kind == "tags" and len(args) == 1:
            info = g.resolve_ref(repo.bare, f"refs/tags/{args[0]}")
            if info is None:
                return _json(404, {"message": "404 Tag Not Found"})
            return _json(
                200,
                {
                    "name": info.name,
                    "target": info.object,
                    "message": "" if not info.annotated else None,
                    "commit": self._commit_json(repo, info.commit),
                    "protected": False,
                },
            )
        return _json(404, {"error": "404 Not Found"})

    def _project_json(self, repo: HostedRepo) -> dict[str, Any]:
        namespace = repo.owner
        return {
            "id": repo.id,
            "name": repo.name,
            "path": repo.name,
            "path_with_namespace": repo.full_name,
            "name_with_namespace": " / ".join(repo.full_name.split("/")),
            "namespace": {
                "id": abs(hash(namespace)) % 10**6,
                "name": namespace.rsplit("/", 1)[-1],
                "path": namespace.rsplit("/", 1)[-1],
                "full_path": namespace,
                "kind": "group",
            },
            "default_branch": g.default_branch(repo.bare),
            "visibility": "public" if repo.public else "private",
            "web_url": f"{self.base}/{repo.full_name}",
            "http_url_to_repo": f"{self.base}/{repo.full_name}.git",
            "ssh_url_to_repo": f"git@127.0.0.1:{repo.full_name}.git",
            "empty_repo": g.resolve_commit(repo.bare, None) is None,
            "archived": False,
        }

    def _commit_json(self, repo: HostedRepo, sha: str) -> dict[str, Any]:
        info = g.commit_info(repo.bare, sha)
        assert info is not None
        return {
            "id": info.sha,
            "short_id": info.sha[:8],
            "title": info.message.splitlines()[0] if info.message else "",
            "message": info.message + "\n",
            "author_name": info.author_name,
            "author_email": info.author_email,
            "authored_date": _iso(info.author_time),
            "committer_name": info.committer_name,
            "committer_email": info.committer_email,
            "committed_date": _iso(info.committer_time),
            "created_at": _iso(info.committer_time),
            "parent_ids": list(info.parents),
            "web_url": f"{self.base}/{repo.full_name}/-/commit/{info.sha}",
        }

    def _file(self, method: str, repo: HostedRepo, file_path: str, raw: bool) -> Response:
        ref = self.query.get("ref")
        if not ref:
            if not raw:
                return _json(400, {"error": "ref is missing, ref is empty"})
            ref = g.default_branch(repo.bare) or "main"
        sha = g.resolve_commit(repo.bare, ref)
        if sha is None:
            return _json(404, {"message": "404 Commit Not Found"})
        entry = g.tree_entry(repo.bare, sha, file_path)
        if entry is None or entry.type != "blob":
            return _json(404, {"message": "404 File Not Found"})
        data = g.read_blob(repo.bare, entry.sha) or b""
        last = g.last_commit_for(repo.bare, sha, file_path) or sha
        meta = {
            "file_name": entry.name,
            "file_path": entry.path,
            "size": len(data),
            "encoding": "base64",
            "content_sha256": hashlib.sha256(data).hexdigest(),
            "ref": ref,
            "blob_id": entry.sha,
            "commit_id": sha,
            "last_commit_id": last,
            "execute_filemode": entry.mode == "100755",
        }
        headers = {
            f"X-Gitlab-{k.replace('_', '-').title()}": str(v).lower()
            if isinstance(v, bool)
            else str(v)
            for k, v in meta.items()
        }
        if raw:
            return _raw(data, "text/plain; charset=utf-8", **headers)
        if method == "HEAD":
            return 200, {"Content-Type": JSON, **headers}, b""
        return _json(200, {**meta, "content": base64.b64encode(data).decode()})


# --- Bitbucket Server / Data Center ------------------------------------------------------------
class _BitbucketServer(_API):
    def _error(self, status: int, message: str, exception: str) -> Response:
        body = {
            "errors": [
                {
                    "context": None,
                    "message": message,
                    "exceptionName": f"com.atlassian.bitbucket.{exception}",
                }
            ]
        }
        return _json(status, body, BITBUCKET_JSON)

    def _auth(self) -> str:
        credentials = self._credentials()
        if credentials is None:
            return "anonymous"
        scheme, secret = credentials
        if scheme == "bearer":
            return "ok" if secret == self.server.token else "bad"
        if scheme == "basic":
            return "ok" if secret.partition(":")[2] == self.server.token else "bad"
        return "bad"

    def handle(self, method: str, path: str, segments: list[str]) -> Response:
        auth = self._auth()
        if auth == "bad":
            return self._error(
                401,
                "Authentication failed. Please check your credentials and try again.",
                "auth.IncorrectPasswordAuthenticationException",
            )
        if len(segments) < 4 or segments[0] != "projects" or segments[2] != "repos":
            return self._error(404, "Not Found", "rest.NotFoundException")
        project, slug, rest = segments[1], segments[3], segments[4:]
        repo = self.server._find(f"{project}/{slug}")
        if repo is None:
            if project not in self.server._owners():
                return self._error(
                    404, f"Project {project} does not exist.", "project.NoSuchProjectException"
                )
            return self._error(
                404,
                f"Repository {project}/{slug} does not exist.",
                "repository.NoSuchRepositoryException",
            )
        if auth == "anonymous" and not repo.public:
            return self._error(
                401,
                "You are not permitted to access this resource",
                "AuthorisationException",
            )
        if method not in ("GET", "HEAD"):
            return self._error(405, "Method not allowed", "rest.MethodNotAllowedException")
        if not rest:
            return _json(200, self._repo_json(repo))
        if rest[0] == "raw":
            return self._raw_file(repo, "/".join(rest[1:]))
        if rest[0] == "commits" and len(rest) >= 2:
            commit_id = "/".join(rest[1:])
            sha = g.resolve_commit(repo.bare, commit_id)
            if sha is None:
                return self._no_commit(repo, commit_id)
            return _json(200, self._commit_json(repo, sha))
        if rest in (["branches", "default"], ["default-branch"]):
            branch = g.default_branch(repo.bare)
            info = g.resolve_ref(repo.bare, f"refs/heads/{branch}") if branch else None
            if info is None:
                return self._error(
                    404,
                    f"Repository {repo.full_name} does not have a default branch.",
                    "repository.NoDefaultBranchException",
                )
            return _json(200, self._ref_json(repo, info, "BRANCH"))
        if rest[0] in ("branches", "tags"):
            kind, type_ = ("heads", "BRANCH") if rest[0] == "branches" else ("tags", "TAG")
            if len(rest) > 1:
                name = "/".join(rest[1:])
                info = g.resolve_ref(repo.bare, name if name.startswith("refs/") else None)
                info = info or g.resolve_ref(repo.bare, f"refs/{kind}/{name}")
                if info is None:
                    return self._error(
                        404,
                        f"{type_.title()} '{name}' does not exist in repository '{slug}'.",
                        "repository.NoSuchTagException"
                        if type_ == "TAG"
                        else "repository.NoSuchBranchException",
                    )
                return _json(200, self._ref_json(repo, info, type_))
            refs = g.list_refs(repo.bare, kind)
            text = self.query.get("filterText") or self.query.get("filter") or ""
            values = [self._ref_json(repo, r, type_) for r in refs if text in r.name]
            return _json(200, self._page(values))
        return self._error(404, "Not Found", "rest.NotFoundException")

    def _no_commit(self, repo: HostedRepo, commit_id: str) -> Response:
        return self._error(
            404,
            f"Commit '{commit_id}' does not exist in repository '{repo.name}'.",
            "commit.NoSuchCommitException",
        )

    def _page(self, values: list[Any]) -> dict[str, Any]:
        start = int(self.query.get("start") or 0)
        limit = int(self.query.get("limit") or self.server.page_size)
        page = values[start : start + limit]
        last = start + limit >= len(values)
        result = {
            "size": len(page),
            "limit": limit,
            "isLastPage": last,
            "values": page,
            "start": start,
        }
        if not last:
            result["nextPageStart"] = start + limit
        return result

    def _repo_json(self, repo: HostedRepo) -> dict[str, Any]:
        href = f"{self.base}/projects/{repo.owner}/repos/{repo.name}"
        return {
            "slug": repo.name,
            "id": repo.id,
            "name": repo.name,
            "scmId": "git",
            "state": "AVAILABLE",
            "forkable": True,
            "public": repo.public,
            "project": {"key": repo.owner, "id": abs(hash(repo.owner)) % 10**6, "type": "NORMAL"},
            "links": {
                "clone": [
                    {"href": f"{self.base}/scm/{repo.full_name.lower()}.git", "name": "http"}
                ],
                "self": [{"href": f"{href}/browse"}],
            },
        }

    def _commit_json(self, repo: HostedRepo, sha: str) -> dict[str, Any]:
        info = g.commit_info(repo.bare, sha)
        assert info is not None
        return {
            "id": info.sha,
            "displayId": info.sha[:11],
            "author": {"name": info.author_name, "emailAddress": info.author_email},
            "authorTimestamp": info.author_time * 1000,
            "committer": {"name": info.committer_name, "emailAddress": info.committer_email},
            "committerTimestamp": info.committer_time * 1000,
            "message": info.message,
            "parents": [{"id": p, "displayId": p[:11]} for p in info.parents],
        }

    def _ref_json(self, repo: HostedRepo, info: g.RefInfo, type_: str) -> dict[str, Any]:
        result = {
            "id": info.ref,
            "displayId": info.name,
            "type": type_,
            "latestCommit": info.commit,
            "latestChangeset": info.commit,
        }
        if type_ == "BRANCH":
            result["isDefault"] = info.name == g.default_branch(repo.bare)
        else:
            result["hash"] = info.object if info.annotated else None
        return result

    def _raw_file(self, repo: HostedRepo, file_path: str) -> Response:
        at = self.query.get("at")
        sha = g.resolve_commit(repo.bare, at)
        if sha is None:
            return self._no_commit(repo, at or "HEAD")
        entry = g.tree_entry(repo.bare, sha, file_path)
        if entry is None or entry.type != "blob":
            return self._error(
                404,
                f'The path "{file_path}" does not exist at revision "{at or sha}"',
                "content.NoSuchPathException",
            )
        return _raw(g.read_blob(repo.bare, entry.sha) or b"", "text/plain;charset=UTF-8")


# --- Bitbucket Cloud ---------------------------------------------------------------------------
class _BitbucketCloud(_API):
    def _error(self, status: int, message: str, **extra: Any) -> Response:
        error: dict[str, Any] = {"message": message}
        if extra:
            error["data"] = extra
        return _json(status, {"type": "error", "error": error})

    def _auth(self) -> str:
        credentials = self._credentials()
        if credentials is None:
            return "anonymous"
        scheme, secret = credentials
        if scheme == "basic":
            good = secret == f"{self.server.username}:{self.server.password}"
            return "ok" if good else "bad"
        if scheme == "bearer":
            return "ok" if secret == self.server.token else "bad"
        return "bad"

    def handle(self, method: str, path: str, segments: list[str]) -> Response:
        auth = self._auth()
        if auth == "bad":
            return self._error(401, "Unauthorized")
        if segments and segments[-1] == "":
            segments = segments[:-1]  # the client asks for .../refs/branches/ (trailing slash)
        if method not in ("GET", "HEAD"):
            return self._error(405, "Method not allowed")
        if segments[:1] == ["workspaces"] and len(segments) == 2:
            workspace = segments[1]
            if workspace not in self.server._owners():
                return self._error(404, f"No workspace with identifier '{workspace}'.")
            return _json(200, self._workspace_json(workspace))
        if segments[:1] != ["repositories"] or len(segments) < 3:
            return self._error(404, "Resource not found")
        repo = self.server._find(f"{segments[1]}/{segments[2]}")
        if repo is None:
            return self._error(404, f"Repository {segments[1]}/{segments[2]} not found")
        if auth == "anonymous" and not repo.public:
            return self._error(403, "Access denied. You must have read access to this repository.")
        api = f"{self.base}/2.0/repositories/{repo.full_name}"
        rest = segments[3:]
        if not rest:
            return _json(200, self._repo_json(repo, api))
        if rest[0] == "refs" and len(rest) >= 2 and rest[1] in ("branches", "tags"):
            kind, type_ = ("heads", "branch") if rest[1] == "branches" else ("tags", "tag")
            if len(rest) > 2:
                name = "/".join(rest[2:])
                info = g.resolve_ref(repo.bare, f"refs/{kind}/{name}")
                if info is None:
                    return self._error(404, f"{type_.title()} not found", name=name)
                return _json(200, self._ref_json(repo, api, info, type_))
            refs = [self._ref_json(repo, api, r, type_) for r in g.list_refs(repo.bare, kind)]
            return _json(200, self._page(refs, f"{api}/refs/{rest[1]}"))
        if rest[0] == "commit" and len(rest) == 2:
            sha = g.resolve_commit(repo.bare, rest[1])
            if sha is None:
                return self._error(404, f"Commit {rest[1]} not found", shas=[rest[1]])
            return _json(200, self._commit_json(repo, api, sha))
        if rest[0] == "src" and len(rest) >= 2:
            return self._src(repo, api, rest[1], "/".join(rest[2:]))
        return self._error(404, "Resource not found")

    def _page(self, values: list[Any], url: str) -> dict[str, Any]:
        page = max(int(self.query.get("page") or 1), 1)
        size = min(int(self.query.get("pagelen") or self.server.page_size), 100)
        chunk = values[(page - 1) * size : page * size]
        result: dict[str, Any] = {
            "pagelen": size,
            "size": len(values),
            "page": page,
            "values": chunk,
        }
        if page * size < len(values):
            params = {**self.query, "page": str(page + 1), "pagelen": str(size)}
            result["next"] = f"{url}?{urlencode(params)}"
        if page > 1:
            params = {**self.query, "page": str(page - 1), "pagelen": str(size)}
            result["previous"] = f"{url}?{urlencode(params)}"
        return result

    def _workspace_json(self, workspace: str) -> dict[str, Any]:
        api = f"{self.base}/2.0"
        return {
            "type": "workspace",
            "uuid": "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, workspace)) + "}",
            "name": workspace,
            "slug": workspace,
            "is_private": True,
            "links": {
                "self": {"href": f"{api}/workspaces/{workspace}"},
                "repositories": {"href": f"{api}/repositories/{workspace}"},
                "projects": {"href": f"{api}/workspaces/{workspace}/projects"},
                "members": {"href": f"{api}/workspaces/{workspace}/members"},
                "html": {"href": f"{self.base}/{workspace}/"},
            },
        }

    def _repo_json(self, repo: HostedRepo, api: str) -> dict[str, Any]:
        branch = g.default_branch(repo.bare)
        return {
            "type": "repository",
            "uuid": "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, repo.full_name)) + "}",
            "full_name": repo.full_name,
            "name": repo.name,
            "slug": repo.name,
            "is_private": not repo.public,
            "scm": "git",
            "mainbranch": {"type": "branch", "name": branch} if branch else None,
            "workspace": {"type": "workspace", "slug": repo.owner, "name": repo.owner},
            "links": {
                "self": {"href": api},
                "html": {"href": f"{self.base}/{repo.full_name}"},
                "clone": [
                    {"name": "https", "href": f"{self.base}/{repo.full_name}.git"},
                    {"name": "ssh", "href": f"git@127.0.0.1:{repo.full_name}.git"},
                ],
            },
        }

    def _commit_json(self, repo: HostedRepo, api: str, sha: str) -> dict[str, Any]:
        info = g.commit_info(repo.bare, sha)
        assert info is not None
        return {
            "type": "commit",
            "hash": info.sha,
            "date": _iso(info.committer_time).replace("Z", "+00:00"),
            "message": info.message + "\n",
            "author": {
                "type": "author",
                "raw": f"{info.author_name} <{info.author_email}>",
            },
            "parents": [
                {"type": "commit", "hash": p, "links": {"self": {"href": f"{api}/commit/{p}"}}}
                for p in info.parents
            ],
            "links": {"self": {"href": f"{api}/commit/{info.sha}"}},
        }

    def _ref_json(self, repo: HostedRepo, api: str, info: g.RefInfo, type_: str) -> dict:
        kind = "branches" if type_ == "branch" else "tags"
        result: dict[str, Any] = {
            "type": type_,
            "name": info.name,
            "target": self._commit_json(repo, api, info.commit),
            "links": {
                "self": {"href": f"{api}/refs/{kind}/{quote(info.name)}"},
                "commits": {"href": f"{api}/commits/{quote(info.name)}"},
            },
        }
        if type_ == "tag" and info.annotated:
            result["message"] = g.run_git(
                "-C", repo.bare, "tag", "-l", "--format=%(contents)", info.name
            ).stdout.decode()
            result["tagger"] = {"type": "author", "raw": f"{g.AUTHOR_NAME} <{g.AUTHOR_EMAIL}>"}
        return result

    def _src(self, repo: HostedRepo, api: str, commit: str, file_path: str) -> Response:
        sha = g.resolve_commit(repo.bare, commit)
        if sha is None:
            return self._error(404, "Commit not found", shas=[commit])
        entry = g.tree_entry(repo.bare, sha, file_path)
        if entry is None:
            return self._error(404, f"No such file or directory: {file_path}")
        if entry.type == "tree":
            values = [
                {
                    "type": "commit_directory" if e.type == "tree" else "commit_file",
                    "path": e.path,
                    "size": e.size,
                    "commit": {"type": "commit", "hash": sha},
                    "links": {"self": {"href": f"{api}/src/{sha}/{quote(e.path)}"}},
                }
                for e in g.list_tree(repo.bare, sha, file_path)
            ]
            return _json(200, self._page(values, f"{api}/src/{sha}/{quote(file_path)}"))
        return _raw(g.read_blob(repo.bare, entry.sha) or b"", "text/plain")


# --- HTTP plumbing ---------------------------------------------------------------------------
def _handler_for(server: RepoAPIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
            status, headers, body = server._respond(
                self.command, self.path, dict(self.headers.items()), host
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler
