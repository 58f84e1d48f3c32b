"""A Bitbucket repository read with atlassian-python-api: the transports of ``Bitbucket``.

Bitbucket Server (a token) and Bitbucket Cloud (a user name and an app password) speak
different APIs, so each has its transport; the library raises ``requests.HTTPError``.
"""

from __future__ import annotations

import sys
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..._deps import import_optional
from ...exceptions import FlowNotFoundError
from ..credentials import find_text_credential
from ..repo import SHA, APIRepoTransport

TOKEN_NAME = "BITBUCKET_ACCESS_TOKEN"
"""Default secret / environment variable holding a Bitbucket Server token."""

CLOUD_USERNAME_NAME = "BITBUCKET_CLOUD_USERNAME"
CLOUD_APP_PASSWORD_NAME = "BITBUCKET_CLOUD_APP_PASSWORD"
DEFAULT_CLOUD_URL = "https://api.bitbucket.org/"


@dataclass(eq=False)
class BitbucketTransport(APIRepoTransport):
    """Repository ``repo`` of ``owner`` (a Server project key or a Cloud workspace)."""

    not_found_hint = "Check that host, project, repository, ref and path are correct."

    owner: str
    host: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def _status(self, exc: Exception) -> tuple[int, str] | None:
        requests = sys.modules.get("requests")  # never imported: not one of its errors
        if requests and isinstance(exc, requests.HTTPError) and exc.response is not None:
            return exc.response.status_code, ""
        return None

    def _resolve(self, ref: str | None) -> str:
        if ref and SHA.match(ref):
            return ref.lower()
        return self._tip(ref)

    @abstractmethod
    def _tip(self, ref: str | None) -> str:
        """The commit branch or tag ``ref`` (``None``: the default branch) points at."""

    def _read(self, path: str, ref: str | None) -> bytes:
        content = self._file(path, ref or self._resolve(None))
        return content if isinstance(content, bytes) else str(content).encode()

    @abstractmethod
    def _file(self, path: str, ref: str) -> Any:
        """The content of ``path`` at ``ref`` (bytes or text)."""


@dataclass(eq=False)
class BitbucketServerTransport(BitbucketTransport):
    """Bitbucket Server at ``host``, with the token of secret ``access_token_secret`` (else
    ``BITBUCKET_ACCESS_TOKEN``; else anonymous)."""

    service = "Bitbucket Server"
    auth_hint = f"check the access token secret (or {TOKEN_NAME})"

    access_token_secret: str | None = None

    def _make_client(self) -> Any:
        atlassian = import_optional("atlassian", "bitbucket")
        token = find_text_credential(self.access_token_secret, TOKEN_NAME)
        return atlassian.Bitbucket(url=self.host, token=token, timeout=self.attempt_timeout)

    def _tip(self, ref: str | None) -> str:
        if ref:
            return str(self.client.get_commit_info(self.owner, self.repo, ref)["id"])
        return str(self.client.get_default_branch(self.owner, self.repo)["latestCommit"])

    def _file(self, path: str, ref: str) -> Any:
        return self.client.get_content_of_file(self.owner, self.repo, path, at=ref)


@dataclass(eq=False)
class BitbucketCloudTransport(BitbucketTransport):
    """Bitbucket Cloud (``host`` default: api.bitbucket.org), workspace ``owner``, with the user
    name and app password of the secrets ``username_secret`` and ``app_password_secret``
    (else ``BITBUCKET_CLOUD_USERNAME`` and ``BITBUCKET_CLOUD_APP_PASSWORD``)."""

    service = "Bitbucket Cloud"
    auth_hint = (
        f"check the user name and app password secrets (or {CLOUD_USERNAME_NAME} and "
        f"{CLOUD_APP_PASSWORD_NAME})"
    )

    username_secret: str | None = None
    app_password_secret: str | None = None

    def _make_client(self) -> Any:
        import_optional("atlassian", "bitbucket")
        from atlassian.bitbucket import Cloud

        return Cloud(
            url=self.host or DEFAULT_CLOUD_URL,
            username=find_text_credential(self.username_secret, CLOUD_USERNAME_NAME),
            password=find_text_credential(self.app_password_secret, CLOUD_APP_PASSWORD_NAME),
            timeout=self.attempt_timeout,
        )

    @property
    def _base(self) -> str:
        return f"repositories/{self.owner}/{self.repo}"

    def _tip(self, ref: str | None) -> str:
        ref = ref or self.client.get(self._base)["mainbranch"]["name"]
        for kind in ("branches", "tags"):
            for entry in self._paged(f"{self._base}/refs/{kind}"):
                if entry.get("name") == ref:
                    return str(entry["target"]["hash"])
        raise FlowNotFoundError(f"ref {ref!r} not found in {self.full_name!r}.")

    def _paged(self, url: str) -> Iterator[dict[str, Any]]:
        """Every value of a Bitbucket Cloud listing, following ``next`` links."""
        page = self.client.get(url, params={"pagelen": 100})
        while True:
            yield from page.get("values", [])
            if not page.get("next"):
                return
            page = self.client.get(page["next"], absolute=True)

    def _file(self, path: str, ref: str) -> Any:
        return self.client.get(f"{self._base}/src/{ref}/{path}", not_json_response=True)
