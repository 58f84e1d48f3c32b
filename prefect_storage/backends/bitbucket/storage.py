"""``Bitbucket``: flow scripts read from Bitbucket Server or Bitbucket Cloud."""

from __future__ import annotations

from typing import Any

from ...exceptions import StorageConfigError
from ..repo import RepoStorage
from .transport import BitbucketCloudTransport, BitbucketServerTransport, BitbucketTransport


class Bitbucket(RepoStorage):
    """Run the script at ``path`` in ``repo`` at the registered commit.

    With ``workspace`` it is Bitbucket Cloud (username and app password from the secrets
    ``cloud_username_secret``/``cloud_app_password_secret``, else
    ``BITBUCKET_CLOUD_USERNAME``/``BITBUCKET_CLOUD_APP_PASSWORD``); otherwise Bitbucket
    Server at ``host`` (token from ``access_token_secret``, else ``BITBUCKET_ACCESS_TOKEN``).
    Without a secret name, each default name is read from the run context's secrets, the
    environment, then the secrets file.
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
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)

    @property
    def requested_ref(self) -> str | None:
        return self.ref

    def _make_transport(self) -> BitbucketTransport:
        if self.workspace:
            return BitbucketCloudTransport(
                repo=self.repo,
                owner=self.workspace,
                host=self.host,
                username_secret=self.cloud_username_secret,
                app_password_secret=self.cloud_app_password_secret,
            )
        return BitbucketServerTransport(
            repo=self.repo,
            owner=self.project,
            host=self.host,
            access_token_secret=self.access_token_secret,
        )
