"""S3 over moto (IAM authentication on) and CodeCommit over our CodeCommit server."""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect_storage.results import S3Result
from prefect_storage.storage import S3, Storage
from tests.contract.rigs import (
    FIXED_KEY,
    Rig,
    RigContext,
    RigSpec,
    flow_loader,
    rebuilt,
    script_kwargs,
)
from tests.contract.rigs._repos import repo_rig

BAD_SECRET_ACCESS_KEY = "not-the-secret-access-key"


def s3_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    """moto, with its IAM authentication on: keys and SigV4 signatures are really checked.

    An IAM user allowed ``s3:*`` is created first; its keys are the AWS environment variables
    (boto3's own chain), and ``break_credentials`` replaces the secret key with a wrong one.
    """
    from tests.backends.support import moto_iam_keys, moto_set_auth

    server = ctx.fixture("s3")
    proxy = ctx.fixture("fault_proxy")(server.endpoint_url)
    script = ctx.write_flow_script()
    bucket = server.new_bucket()
    access_key, secret_key = moto_iam_keys(server.endpoint_url)
    # The session's server is shared: checking stops again when this test ends.
    ctx.fixture("request").addfinalizer(lambda: moto_set_auth(server.endpoint_url, "inf"))
    moto_set_auth(server.endpoint_url, "0")
    import boto3

    sdk = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )

    def make_storage(**kwargs: Any) -> S3:
        if script_mode:
            kwargs = script_kwargs(script, "key", **kwargs)
        return S3(bucket, client_options={"endpoint_url": proxy.url}, **kwargs)

    def break_credentials(storage: Storage) -> Storage:
        ctx.monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BAD_SECRET_ACCESS_KEY)
        return rebuilt(make_storage, storage)

    return Rig(
        id=ctx.rig_id,
        required_fields=frozenset({"bucket"}),
        make_storage=make_storage,
        load_flow=flow_loader(script),
        script_mode=script_mode,
        paired_result=S3Result,
        env={"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
        sensitive_values=(secret_key, BAD_SECRET_ACCESS_KEY),
        read_stored=lambda storage, location: sdk.get_object(Bucket=bucket, Key=location)[
            "Body"
        ].read(),
        write_stored=lambda storage, location, data: sdk.put_object(
            Bucket=bucket, Key=location, Body=data
        ),
        remove_stored=lambda storage, location: sdk.delete_object(Bucket=bucket, Key=location),
        break_credentials=break_credentials,
        fail_next_upload=lambda: proxy.fail_next(400, method="PUT", path_contains=f"/{bucket}/"),
        fixed_location=lambda: {"key": FIXED_KEY},
    )


def codecommit_rig(ctx: RigContext) -> Rig:
    """The script repository served by our CodeCommit server; boto3's own credential chain
    (the AWS environment variables), broken by a wrong access key id."""
    import os

    from prefect_storage.storage import CodeCommit
    from tests.contract.rigs._repos import REPO_NAME, REPO_SCRIPT_PATH, Credentials, script_repo

    repo = script_repo(ctx)
    server = ctx.fixture("codecommit_server")
    server.add_repo(REPO_NAME, repo.bare)
    options = {"endpoint_url": server.endpoint_url, "region_name": "us-east-1"}
    make = partial(CodeCommit, REPO_NAME, REPO_SCRIPT_PATH, client_options=options)

    def break_credentials(storage: Storage) -> Storage:
        ctx.monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTTHEACCESSKEY0")
        return rebuilt(make, storage)

    return repo_rig(
        ctx,
        repo,
        make=make,
        required_fields={"repo", "path"},
        credentials=Credentials(sensitive=(os.environ["AWS_SECRET_ACCESS_KEY"],)),
        break_credentials=break_credentials,
    )


RIGS = [
    RigSpec("s3-pickle", partial(s3_rig, script_mode=False)),
    RigSpec("s3-script", partial(s3_rig, script_mode=True)),
    RigSpec("codecommit", codecommit_rig),
]
