"""``Bitbucket``: flow scripts read from Bitbucket Server or Bitbucket Cloud."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..clients.bitbucket import cloud_client, server_client, translated_errors
from ..clients.git import SHA
from ..exceptions import FlowNotFoundError, StorageConfigError
from ..storage.base import RepoStorage


class Bitbucket(RepoStorage):
    """Run the script at ``path`` in ``repo`` at the registered commit.

    With ``workspace`` it is Bitbucket Cloud (username and app password from the secrets
    ``cloud_username_secret``/``cloud_app_password_secret``, else the environment variables
    ``BITBUCKET_CLOUD_USERNAME``/``BITBUCKET_CLOUD_APP_PASSWORD``); otherwise Bitbucket
    Server at ``host`` (token from ``access_token_secret``, else ``BITBUCKET_ACCESS_TOKEN``).
    ``ref`` (branch, tag or SHA; default: the default branch) is resolved at build.
    """

    serialized_fields = (
        "project",
        "repo",
        "workspace",
        "host",
        "path",
        "ref",
        "access_token_secret",
        "cloud_username_secret",
        "cloud_app_password_secret",
        "commit_sha",
    )
    _transient = (*RepoStorage._transient, "_client")

    def __init__(
        self,
        project: str,
        repo: str,
        workspace: str | None = None,
        host: str | None = None,
        path: str | None = None,
        ref: str | None = None,
        access_token_secret: str | None = None,
        cloud_username_secret: str | None = None,
        cloud_app_password_secret: str | None = None,
        commit_sha: str | None = None,
        **kwargs: Any,
    ) -> None:
        if workspace and access_token_secret:
            raise StorageConfigError(
                "`access_token_secret` is for Bitbucket Server; Bitbucket Cloud (`workspace`) "
                "uses `cloud_username_secret` and `cloud_app_password_secret`."
            )
        if not workspace and not host:
            raise StorageConfigError(
                "Bitbucket Server needs `host` (e.g. 'https://bitbucket.example.com'); for "
                "Bitbucket Cloud pass `workspace`."
            )
        self.project = project
        self.repo = repo
        self.workspace = workspace
        self.host = host
        self.ref = ref
        self.access_token_secret = access_token_secret
        self.cloud_username_secret = cloud_username_secret
        self.cloud_app_password_secret = cloud_app_password_secret
        self._client: Any = None
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)

    @property
    def _full_name(self) -> str:
        return f"{self.workspace}/{self.repo}" if self.workspace else f"{self.project}/{self.repo}"

    @property
    def client(self) -> Any:
        if self._client is None:
            if self.workspace:
                self._client = cloud_client(
                    self.host,
                    self.cloud_username_secret,
                    self.cloud_app_password_secret,
                    self.retry_policy,
                )
            else:
                assert self.host is not None  # checked in __init__
                self._client = server_client(self.host, self.access_token_secret, self.retry_policy)
        return self._client

    def _resolve_commit(self) -> str:
        what = f"Resolving {self.ref or 'the default branch'} of {self._full_name}"
        if self.ref and SHA.match(self.ref):
            return self.ref.lower()
        with translated_errors(what, self._full_name):
            if not self.workspace:
                if self.ref:
                    return str(self.client.get_commit_info(self.project, self.repo, self.ref)["id"])
                return str(self.client.get_default_branch(self.project, self.repo)["latestCommit"])
            base = f"repositories/{self.workspace}/{self.repo}"
            ref = self.ref or self.client.get(base)["mainbranch"]["name"]
            for kind in ("branches", "tags"):
                for entry in self._paged(f"{base}/refs/{kind}"):
                    if entry.get("name") == ref:
                        return str(entry["target"]["hash"])
        raise FlowNotFoundError(f"ref {ref!r} not found in {self._full_name!r}.")

    def _paged(self, url: str) -> Iterator[dict[str, Any]]:
        """Every value of a Bitbucket Cloud listing, following ``next`` links."""
        page = self.client.get(url, params={"pagelen": 100})
        while True:
            yield from page.get("values", [])
            if not page.get("next"):
                return
            page = self.client.get(page["next"], absolute=True)

    def _get(self, location: str) -> bytes:
        ref = self.commit_sha or self.ref or self._resolve_commit()
        with translated_errors(f"Reading {location!r} at {ref}", self._full_name):
            if self.workspace:
                url = f"repositories/{self.workspace}/{self.repo}/src/{ref}/{location}"
                self.logger.info("Downloading flow from Bitbucket cloud - %s", url)
                content = self.client.get(url, not_json_response=True)
            else:
                content = self.client.get_content_of_file(self.project, self.repo, location, at=ref)
        return content if isinstance(content, bytes) else str(content).encode()
