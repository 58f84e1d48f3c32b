"""A local AWS CodeCommit endpoint for the unmodified boto3 ``codecommit`` client, serving
real bare git repositories.

moto's server implements only Create/Get/DeleteRepository (``GetFile`` answers HTTP 500), so
this threaded stdlib HTTP server speaks CodeCommit's own wire format: ``POST /`` with
``Content-Type: application/x-amz-json-1.1``, ``X-Amz-Target: CodeCommit_20150413.<Op>``, a
SigV4 ``Authorization`` header and a JSON body. Operations: ``GetFile``, ``GetFolder``,
``GetBranch``, ``GetRepository``, ``GetCommit``, ``ListBranches`` and ``PutFile`` (a real
commit into the bare repository). Errors are HTTP 400 with
``{"__type": "<Name>Exception", "message": ...}``, which botocore maps to
``client.exceptions.<Name>Exception``.

A ``commitSpecifier`` may be a SHA (abbreviated too), a branch, a tag (annotated tags are
peeled) or a full ref (``refs/heads/dev``); without one, ``GetFile`` reads the default branch.

``add_repo("flows", bare_path)`` registers a repository; ``client()`` is a boto3 client for
this endpoint (region ``us-east-1``, dummy keys). The access key in the SigV4 credential scope
must be ``access_key`` (else 403 ``UnrecognizedClientException``, as AWS answers an unknown
key); signatures themselves are not verified. ``requests`` records every call (operation,
headers, JSON body).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.servers import git as g
from tests.servers.loopback import LoopbackHTTPServer
from tests.servers.s3 import AWS_ACCESS_KEY_ID, AWS_REGION, AWS_SECRET_ACCESS_KEY

TARGET_PREFIX = "CodeCommit_20150413."
ACCOUNT_ID = "123456789012"
MAX_FILE_SIZE = 6 * 1024 * 1024  # GetFile refuses larger blobs (FileTooLargeException)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class CodeCommitError(Exception):
    def __init__(self, name: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.name, self.message, self.status = name, message, status


@dataclass
class CodeCommitRequest:
    operation: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0


@dataclass
class CodeCommitRepo:
    name: str
    bare: Path
    id: str
    created: float

    def metadata(self, port: int) -> dict[str, Any]:
        return {
            "accountId": ACCOUNT_ID,
            "repositoryId": self.id,
            "repositoryName": self.name,
            "repositoryDescription": "",
            "defaultBranch": g.default_branch(self.bare),
            "lastModifiedDate": time.time(),
            "creationDate": self.created,
            "cloneUrlHttp": f"https://git-codecommit.{AWS_REGION}.amazonaws.com/v1/repos/{self.name}",
            "cloneUrlSsh": f"ssh://git-codecommit.{AWS_REGION}.amazonaws.com/v1/repos/{self.name}",
            "Arn": f"arn:aws:codecommit:{AWS_REGION}:{ACCOUNT_ID}:{self.name}",
        }


@dataclass
class CodeCommitServer(LoopbackHTTPServer):
    access_key: str = AWS_ACCESS_KEY_ID
    """The only access key accepted (``None``: any)."""
    repos: dict[str, CodeCommitRepo] = field(default_factory=dict)
    requests: list[CodeCommitRequest] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> CodeCommitServer:
        self._serve(_handler_for(self), "codecommit")
        return self

    def reset(self) -> None:
        with self._lock:
            self.repos.clear()
            self.requests.clear()
            self._failures.clear()
            self.access_key = AWS_ACCESS_KEY_ID

    # -- configuration -------------------------------------------------------------------------
    def add_repo(self, name: str, bare: str | Path | g.BareRepo) -> CodeCommitRepo:
        """Serve bare repository ``bare`` as CodeCommit repository ``name``."""
        if isinstance(bare, g.BareRepo):
            bare = bare.path
        repo = CodeCommitRepo(name, Path(bare), str(uuid.uuid4()), time.time())
        with self._lock:
            self.repos[name] = repo
        return repo

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` calls answer ``status`` (500/503 make botocore retry)."""
        with self._lock:
            self._failures.extend([status] * times)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, endpoint_url: str | None = None, **config: Any) -> Any:
        """A boto3 ``codecommit`` client for this endpoint (keyword arguments: botocore
        ``Config`` options, e.g. ``retries={"total_max_attempts": 1}``)."""
        import boto3
        from botocore.config import Config

        options = {key: dict(v) if isinstance(v, dict) else v for key, v in config.items()}
        return boto3.client(
            "codecommit",
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=AWS_REGION,
            aws_access_key_id=AWS_ACCESS_KEY_ID,
            aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
            config=Config(**options) if options else None,
        )

    def operations(self) -> list[str]:
        """The operation names called so far, in order."""
        return [request.operation for request in self.requests]

    # -- dispatch ------------------------------------------------------------------------------
    def _respond(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        lower = {k.lower(): v for k, v in headers.items()}
        target = lower.get("x-amz-target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        record = CodeCommitRequest(operation or target, dict(headers), body or {})
        with self._lock:
            self.requests.append(record)
            failure = self._failures.pop(0) if self._failures else None
        try:
            if failure is not None:
                raise CodeCommitError(
                    "ServiceUnavailableException" if failure >= 500 else "ThrottlingException",
                    "injected failure",
                    failure,
                )
            self._check_auth(lower.get("authorization", ""))
            if not isinstance(body, dict):
                raise CodeCommitError("SerializationException", "Malformed JSON body")
            handler = getattr(self, f"_op_{operation}", None) if operation else None
            if handler is None:
                raise CodeCommitError("UnknownOperationException", f"Unknown operation {target!r}")
            status, payload = 200, handler(body)
        except CodeCommitError as error:
            status, payload = error.status, {"__type": error.name, "message": error.message}
        record.status = status
        return status, payload

    def _check_auth(self, authorization: str) -> None:
        match = _CREDENTIAL.search(authorization)
        if not authorization.startswith("AWS4-HMAC-SHA256") or match is None:
            raise CodeCommitError(
                "MissingAuthenticationTokenException", "Missing Authentication Token", 403
            )
        key, _region, service = match.groups()
        if service != "codecommit" or (self.access_key is not None and key != self.access_key):
            raise CodeCommitError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                403,
            )

    def _repo(self, body: dict[str, Any]) -> CodeCommitRepo:
        name = body.get("repositoryName")
        if not name:
            raise CodeCommitError("RepositoryNameRequiredException", "Repository name is required")
        if not re.fullmatch(r"[\w.-]{1,100}", name):
            raise CodeCommitError(
                "InvalidRepositoryNameException", f"Invalid repository name: {name}"
            )
        with self._lock:
            repo = self.repos.get(name)
        if repo is None:
            raise CodeCommitError("RepositoryDoesNotExistException", f"{name} does not exist")
        return repo

    def _commit(self, repo: CodeCommitRepo, specifier: str | None) -> str:
        sha = g.resolve_commit(repo.bare, specifier)
        if sha is None:
            if specifier is None:
                raise CodeCommitError(
                    "CommitDoesNotExistException",
                    "The repository has no default branch and no commitSpecifier was given.",
                )
            raise CodeCommitError(
                "CommitDoesNotExistException",
                f"Could not find the commit specified: {specifier}",
            )
        return sha

    # -- operations ----------------------------------------------------------------------------
    def _op_GetRepository(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"repositoryMetadata": self._repo(body).metadata(self.port)}

    def _op_GetBranch(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(body)
        name = body.get("branchName")
        if not name:
            raise CodeCommitError("BranchNameRequiredException", "Branch name is required")
        info = g.resolve_ref(repo.bare, f"refs/heads/{name}")
        if info is None:
            raise CodeCommitError(
                "BranchDoesNotExistException", f"Branch {name} does not exist in {repo.name}"
            )
        return {"branch": {"branchName": info.name, "commitId": info.commit}}

    def _op_ListBranches(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(body)
        return {"branches": [info.name for info in g.list_refs(repo.bare, "heads")]}

    def _op_GetCommit(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(body)
        commit_id = body.get("commitId")
        if not commit_id:
            raise CodeCommitError("CommitIdRequiredException", "Commit id is required")
        if not re.fullmatch(r"[0-9a-fA-F]{40}", commit_id):
            raise CodeCommitError("InvalidCommitIdException", f"Invalid commit id: {commit_id}")
        info = g.commit_info(repo.bare, commit_id)
        if info is None:
            raise CodeCommitError(
                "CommitIdDoesNotExistException", f"Commit {commit_id} does not exist"
            )

        def person(name: str, email: str, when: int) -> dict[str, str]:
            return {"name": name, "email": email, "date": f"{when} +0000"}

        return {
            "commit": {
                "commitId": info.sha,
                "treeId": info.tree,
                "parents": list(info.parents),
                "message": info.message + "\n",
                "author": person(info.author_name, info.author_email, info.author_time),
                "committer": person(info.committer_name, info.committer_email, info.committer_time),
                "additionalData": "",
            }
        }

    def _path(self, body: dict[str, Any], key: str) -> str:
        path = body.get(key)
        if path is None or path == "":
            raise CodeCommitError("PathRequiredException", "The path is required")
        if not isinstance(path, str) or "\0" in path or ".." in path.split("/"):
            raise CodeCommitError("InvalidPathException", f"Invalid path: {path}")
        return path.strip("/")

    def _op_GetFile(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(body)
        path = self._path(body, "filePath")
        sha = self._commit(repo, body.get("commitSpecifier"))
        entry = g.tree_entry(repo.bare, sha, path)
        if entry is None or entry.type != "blob":
            raise CodeCommitError(
                "FileDoesNotExistException",
                f"The file {path} does not exist in the specified commit",
            )
        data = g.read_blob(repo.bare, entry.sha) or b""
        if len(data) > MAX_FILE_SIZE:
            raise CodeCommitError("FileTooLargeException", f"The file {path} is too large")
        mode = {"100755": "EXECUTABLE", "120000": "SYMLINK"}.get(entry.mode, "NORMAL")
        return {
            "commitId": sha,
            "blobId": entry.sha,
            "filePath": path,
            "fileMode": mode,
            "fileSize": len(data),
            "fileContent": base64.b64encode(data).decode(),
        }

    def _op_GetFolder(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(body)
        path = str(body.get("folderPath") or "").strip("/")
        sha = self._commit(repo, body.get("commitSpecifier"))
        entry = g.tree_entry(repo.bare, sha, path)
        if entry is None or entry.type != "tree":
            raise CodeCommitError(
                "FolderDoesNotExistException", f"The folder {path or '/'} does not exist"
            )
        folders, files, links, modules = [], [], [], []
        for item in g.list_tree(repo.bare, sha, path):
            common = {"absolutePath": item.path, "relativePath": item.name}
            if item.type == "tree":
                folders.append({"treeId": item.sha, **common})
            elif item.type == "commit":
                modules.append({"commitId": item.sha, **common})
            elif item.mode == "120000":
                links.append({"blobId": item.sha, "fileMode": "SYMLINK", **common})
            else:
                mode = "EXECUTABLE" if item.mode == "100755" else "NORMAL"
                files.append({"blobId": item.sha, "fileMode": mode, **common})
        return {
            "commitId": sha,
            "folderPath": "/" + path if path else "/",
            "treeId": entry.sha,
            "subFolders": folders,
            "files": files,
            "symbolicLinks": links,
            "subModules": modules,
        }

    def _op_PutFile(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(body)
        branch = body.get("branchName")
        if not branch:
            raise CodeCommitError("BranchNameRequiredException", "Branch name is required")
        path = self._path(body, "filePath")
        if "fileContent" not in body:
            raise CodeCommitError("FileContentRequiredException", "File content is required")
        data = base64.b64decode(body["fileContent"])
        tip = g.resolve_ref(repo.bare, f"refs/heads/{branch}")
        parent = body.get("parentCommitId")
        has_commits = g.resolve_commit(repo.bare, None) is not None or bool(
            g.list_refs(repo.bare, "heads")
        )
        if tip is None and has_commits:
            raise CodeCommitError(
                "BranchDoesNotExistException", f"Branch {branch} does not exist in {repo.name}"
            )
        if tip is not None:
            if not parent:
                raise CodeCommitError(
                    "ParentCommitIdRequiredException", "A parent commit ID is required"
                )
            if g.commit_info(repo.bare, parent) is None:
                raise CodeCommitError(
                    "ParentCommitDoesNotExistException", f"Commit {parent} does not exist"
                )
            if parent != tip.commit:
                raise CodeCommitError(
                    "ParentCommitIdOutdatedException",
                    f"The parent commit ID {parent} is not the tip of {branch}",
                )
            current = g.tree_entry(repo.bare, tip.commit, path)
            if current is not None and g.read_blob(repo.bare, current.sha) == data:
                raise CodeCommitError(
                    "SameFileContentException", "The file already has this content"
                )
        bare = g.BareRepo(repo.bare, repo.name, g.default_branch(repo.bare) or branch)
        executable = (path,) if body.get("fileMode") == "EXECUTABLE" else ()
        sha = bare.commit(
            {path: data},
            branch=branch,
            message=body.get("commitMessage") or f"Added {path}",
            parent=tip.commit if tip else None,
            executable=executable,
        )
        entry = g.tree_entry(repo.bare, sha, path)
        info = g.commit_info(repo.bare, sha)
        assert entry is not None and info is not None
        return {"commitId": sha, "blobId": entry.sha, "treeId": info.tree}


def _handler_for(server: CodeCommitServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, payload = server._respond(dict(self.headers.items()), raw)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            body = b'{"__type":"UnknownOperationException","message":"POST only"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
