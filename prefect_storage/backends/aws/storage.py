"""``S3``: flows as objects in an Amazon S3 (or S3-compatible) bucket; ``CodeCommit``: flow
scripts read from an AWS CodeCommit repository."""

from __future__ import annotations

from typing import Any

from ..bucket import BucketStorage
from ..repo import RepoStorage
from .result import S3Result
from .transport import CodeCommitTransport, S3Transport, check_client_options


class S3(BucketStorage):
    """Store each flow as an object in ``bucket`` (``key``, or ``<flow>/<timestamp>``).

    ``client_options`` go to ``boto3.client`` (``endpoint_url``, ``region_name``, ...) and
    are serialized; ``upload_options`` are extra ``put_object`` arguments (``ACL``,
    ``ServerSideEncryption``, ...). Credentials: the ``AWS_CREDENTIALS`` secret in the run
    context, else boto3's own chain (environment, profile, instance role).
    """

    serialized_fields = ("bucket", "key", "stored_as_script", "client_options")

    def __init__(
        self,
        bucket: str,
        key: str | None = None,
        stored_as_script: bool = False,
        local_script_path: str | None = None,
        client_options: dict[str, Any] | None = None,
        upload_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise TypeError("`bucket` must be the name of an S3 bucket")
        self.bucket = bucket
        self.key = key
        self.client_options = check_client_options(client_options)
        self.upload_options = dict(upload_options or {})
        super().__init__(key, local_script_path, stored_as_script=stored_as_script, **kwargs)

    def _make_transport(self) -> S3Transport:
        return S3Transport(self.bucket, self.client_options)

    def _paired_result(self) -> S3Result:
        return S3Result(self.bucket, boto3_kwargs=self.client_options, transport=self.transport)


class CodeCommit(RepoStorage):
    """Run the script at ``path`` in CodeCommit repository ``repo``.

    ``commit`` is a commit specifier (SHA, branch, tag or full ref; default: the default
    branch head), resolved to a commit SHA at build. Credentials as for ``S3``.
    """

    serialized_fields = ("repo", "path", "commit", "client_options", "commit_sha")

    def __init__(
        self,
        repo: str,
        path: str | None = None,
        commit: str | None = None,
        client_options: dict[str, Any] | None = None,
        commit_sha: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.repo = repo
        self.commit = commit
        self.client_options = check_client_options(client_options)
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)
        self._transport = self._make_transport()

    @property
    def requested_ref(self) -> str | None:
        return self.commit

    def _make_transport(self) -> CodeCommitTransport:
        return CodeCommitTransport(self.repo, self.path, self.client_options)
