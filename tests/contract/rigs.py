"""Rigs: one entry in :data:`RIGS` per backend configuration the contract suite runs against.

A rig builds storages for the shared :data:`FLOW_SCRIPT` and *declares* what its backend
supports (capability flags, and hooks that are ``None`` where the backend cannot do it).
The contract tests read those declarations; they never look at a storage's class.

Adding a backend: write a factory ``(RigContext) -> Rig`` and add one :class:`RigSpec` to
:data:`RIGS`. A factory that needs a server asks for its fixture with ``ctx.fixture(name)``,
so rigs that do not need it never start it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from prefect_storage import Flow
from prefect_storage.loading import extract_flow_from_file, extract_flow_from_module
from prefect_storage.results import AzureResult, GCSResult, LocalResult, Result, S3Result
from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import GCS, S3, Azure, Local, Module, Storage, Webhook

FLOW_NAME = "contract-flow"
"""The flow most tests store: ``x`` (default 2) is doubled, then one is added."""

SIBLING_NAME = "sibling-flow"
"""A second flow in the same script, for multi-flow storages and sibling checks."""

FLOW_SCRIPT = '''\
"""Two flows in one script: the contract suite stores and loads them with every backend."""
from prefect_storage import Flow, Parameter, task


@task
def double(x):
    return 2 * x


@task
def add_one(y):
    return y + 1


@task
def shout(word):
    return word.upper() + "!"


with Flow("contract-flow") as flow:
    add_one(double(Parameter("x", default=2)))

with Flow("sibling-flow") as sibling:
    shout(Parameter("word", default="hi"))
'''
"""The one flow source every rig stores: as a pickle, as a script or as a module."""


@dataclass(frozen=True)
class FlowRun:
    """A run of one of the script's flows and the value its last task must return."""

    flow_name: str
    parameters: dict[str, Any]
    result_task: str
    expected: Any


RUNS: dict[str, list[FlowRun]] = {
    FLOW_NAME: [
        FlowRun(FLOW_NAME, {}, "add_one", 5),
        FlowRun(FLOW_NAME, {"x": 3}, "add_one", 7),
    ],
    SIBLING_NAME: [FlowRun(SIBLING_NAME, {"word": "ok"}, "shout", "OK!")],
}
"""What running each flow of :data:`FLOW_SCRIPT` must give, by flow name."""


StorageHook = Callable[[Storage, str], Any]
"""``hook(storage, location)``: acts on what ``storage`` stored at ``location``."""


@dataclass
class Rig:
    """One backend configuration: how to build its storages, and what it supports."""

    id: str
    make_storage: Callable[..., Storage]
    """``make_storage(**storage_kwargs)``: a new, empty storage for :data:`FLOW_SCRIPT`."""
    load_flow: Callable[[str], Flow]
    """The in-memory flow named so, as the registering process would add it."""

    # -- capabilities ------------------------------------------------------------------
    stores_bytes: bool = True
    """Flows are kept as bytes (pickle envelope or script source), not imported."""
    script_mode: bool = False
    """The script's source is stored; False means pickle mode (when ``stores_bytes``)."""
    single_flow: bool = False
    """One flow per storage: adding another replaces it, with no name conflict."""
    paired_result: type[Result] | None = None
    """The Result class a storage pairs with by default (None: no result)."""
    default_labels: Callable[[], list[str]] = list
    """Labels a storage adds unless ``add_default_labels=False``."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment a process needs to load the flows (set in this process too)."""
    sensitive_values: Collection[str] = ()
    """Credential values that must never show in ``serialize()``, ``repr()`` or errors."""

    # -- hooks: None where the backend cannot do it ------------------------------------
    read_stored: StorageHook | None = None
    """The stored bytes behind the storage's back: ``(storage, location) -> bytes``."""
    write_stored: Callable[[Storage, str, bytes], None] | None = None
    """Replace the stored bytes behind the storage's back."""
    remove_stored: StorageHook | None = None
    """Delete the stored object behind the storage's back."""
    break_credentials: Callable[[Storage], Storage] | None = None
    """The same storage (same flows and locations) with credentials the backend refuses."""
    fail_next_upload: Callable[[], None] | None = None
    """Make the backend fail the next upload (a server-side error)."""
    fixed_location: Callable[[], dict[str, Any]] | None = None
    """Storage kwargs that pin every flow of a storage to one location (``path``, ``key``)."""

    @property
    def pickles(self) -> bool:
        """Flows are stored as pickle envelopes."""
        return self.stores_bytes and not self.script_mode

    @property
    def checks_credentials(self) -> bool:
        return self.break_credentials is not None

    @property
    def can_tamper(self) -> bool:
        return self.read_stored is not None and self.write_stored is not None

    def tamper_stored(self, storage: Storage, location: str) -> None:
        """Flip one bit of the byte in the middle of what is stored."""
        assert self.read_stored is not None and self.write_stored is not None
        data = bytearray(self.read_stored(storage, location))
        data[len(data) // 2] ^= 0x01
        self.write_stored(storage, location, bytes(data))


@dataclass
class RigContext:
    """What a rig factory gets: a private folder, monkeypatch, and the other fixtures."""

    rig_id: str
    folder: Path
    monkeypatch: pytest.MonkeyPatch
    fixture: Callable[[str], Any]
    """``request.getfixturevalue``: starts a server fixture only for rigs that use it."""

    def write_flow_script(self, name: str = "contract_flows.py") -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        path.write_text(FLOW_SCRIPT)
        return path


@dataclass(frozen=True)
class RigSpec:
    id: str
    factory: Callable[[RigContext], Rig]
    marks: Sequence[Any] = ()
    """pytest marks for every test of this rig (e.g. ``pytest.mark.slow``)."""


# -- shared hook helpers ----------------------------------------------------------------
def _from_script(script: Path) -> Callable[[str], Flow]:
    """Flows as ``register`` would load them from the script (pickled by value)."""
    cache: dict[str, Flow] = {}

    def load(name: str) -> Flow:
        if name not in cache:
            cache[name] = extract_flow_from_file(file_path=script, flow_name=name)
        return cache[name]

    return load


def _read_file(storage: Storage, location: str) -> bytes:
    return Path(location).read_bytes()


def _write_file(storage: Storage, location: str, data: bytes) -> None:
    Path(location).write_bytes(data)


def _remove_file(storage: Storage, location: str) -> None:
    os.remove(location)


# -- Local ------------------------------------------------------------------------------
def local_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    script = ctx.write_flow_script()
    make_storage = partial(Local, path=str(script), stored_as_script=True) if script_mode else Local
    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=_from_script(script),
        script_mode=script_mode,
        paired_result=LocalResult,
        default_labels=lambda: [socket.gethostname()],
        read_stored=_read_file,
        write_stored=_write_file,
        remove_stored=_remove_file,
        fixed_location=lambda: {"path": str(ctx.folder / "fixed" / "one.flow")},
    )


# -- Module -----------------------------------------------------------------------------
def module_rig(ctx: RigContext) -> Rig:
    # A unique name per test: an earlier test's module must never be found in sys.modules.
    module = f"contract_flows_{uuid.uuid4().hex[:12]}"
    ctx.write_flow_script(f"{module}.py")
    ctx.monkeypatch.syspath_prepend(str(ctx.folder))
    pythonpath = os.pathsep.join(p for p in (str(ctx.folder), os.environ.get("PYTHONPATH")) if p)
    return Rig(
        id=ctx.rig_id,
        make_storage=partial(Module, module),
        load_flow=lambda name: extract_flow_from_module(module, flow_name=name),
        stores_bytes=False,
        env={"PYTHONPATH": pythonpath},
    )


# -- Webhook ----------------------------------------------------------------------------
TOKEN_ENV = "CONTRACT_TOKEN"
"""Holds the server's token; Webhook headers name it as a ``${CONTRACT_TOKEN}`` template."""
BAD_TOKEN_ENV = "CONTRACT_BAD_TOKEN"
"""Holds a token the server refuses (``break_credentials``)."""


def webhook_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    server = ctx.fixture("webhook_server")
    script = ctx.write_flow_script()
    ctx.monkeypatch.setenv(BAD_TOKEN_ENV, "not-the-token")

    def webhook(url: str, token_env: str, **kwargs: Any) -> Webhook:
        request = {"url": url, "headers": {"Authorization": f"Bearer ${{{token_env}}}"}}
        if script_mode:
            kwargs = {"stored_as_script": True, "flow_script_path": str(script), **kwargs}
        return Webhook(
            build_request_kwargs=request,
            build_request_http_method="PUT",
            get_flow_request_kwargs=request,
            get_flow_request_http_method="GET",
            **kwargs,
        )

    def make_storage(**kwargs: Any) -> Webhook:
        return webhook(f"{server.url}/flows/{uuid.uuid4().hex}", TOKEN_ENV, **kwargs)

    def blob_id(storage: Storage) -> str:
        assert isinstance(storage, Webhook)
        return storage.get_flow_request_kwargs["url"].rsplit("/", 1)[1]

    def write(storage: Storage, location: str, data: bytes) -> None:
        server.blobs[blob_id(storage)] = data

    def break_credentials(storage: Storage) -> Storage:
        assert isinstance(storage, Webhook)
        broken = webhook(storage.build_request_kwargs["url"], BAD_TOKEN_ENV)
        broken.flows = dict(storage.flows)
        return broken

    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=_from_script(script),
        script_mode=script_mode,
        single_flow=True,
        env={TOKEN_ENV: server.token},
        sensitive_values=(server.token,),
        read_stored=lambda storage, location: server.blobs[blob_id(storage)],
        write_stored=write,
        remove_stored=lambda storage, location: server.blobs.pop(blob_id(storage)),
        break_credentials=break_credentials,
        fail_next_upload=lambda: server.fail_next(400),
    )


# -- S3, GCS, Azure ----------------------------------------------------------------------
# Each object-store rig talks to its real server through a fault proxy (so the next upload
# can be made to fail), reaching it only the way a user would: S3 through
# ``client_options={"endpoint_url": ...}``, GCS through ``STORAGE_EMULATOR_HOST``, Azure
# through a connection string in ``AZURE_STORAGE_CONNECTION_STRING`` or in a secret named by
# ``connection_string_secret``. Hooks read and write the bucket with the SDK, straight to the
# server. Script rigs fix the key so that both flows of the script share one object (without
# a key each flow gets its own copy: ``tests/backends`` covers that).
SCRIPT_KEY = "flows/contract_flows.py"
FIXED_KEY = "fixed/one.flow"
BAD_SECRET_ACCESS_KEY = "not-the-secret-access-key"
AZURE_SECRET = "CONTRACT_AZURE_CONNECTION"
AZURE_BAD_SECRET = "CONTRACT_AZURE_BAD_CONNECTION"


def _script_kwargs(script: Path, key_argument: str, **extra: Any) -> dict[str, Any]:
    return {
        "stored_as_script": True,
        "local_script_path": str(script),
        key_argument: SCRIPT_KEY,
        **extra,
    }


def _rebuilt(make: Callable[..., Storage], storage: Storage, **kwargs: Any) -> Storage:
    """A storage like ``storage`` (same flows and locations) made by ``make(**kwargs)``."""
    twin = make(**kwargs)
    twin.flows = dict(storage.flows)
    return twin


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
            kwargs = _script_kwargs(script, "key", **kwargs)
        return S3(bucket, client_options={"endpoint_url": proxy.url}, **kwargs)

    def break_credentials(storage: Storage) -> Storage:
        ctx.monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BAD_SECRET_ACCESS_KEY)
        return _rebuilt(make_storage, storage)

    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=_from_script(script),
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


def gcs_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    """gcp-storage-emulator: it checks no credentials (there is nothing to break)."""
    server = ctx.fixture("gcs")
    proxy = ctx.fixture("fault_proxy")(server.endpoint)
    script = ctx.write_flow_script()
    bucket = server.new_bucket()
    blobs = server.client().bucket(bucket)

    def make_storage(**kwargs: Any) -> GCS:
        if script_mode:
            kwargs = _script_kwargs(script, "key", **kwargs)
        return GCS(bucket, project="test", **kwargs)

    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=_from_script(script),
        script_mode=script_mode,
        paired_result=GCSResult,
        env={"STORAGE_EMULATOR_HOST": proxy.url},
        read_stored=lambda storage, location: blobs.blob(location).download_as_bytes(),
        write_stored=lambda storage, location, data: blobs.blob(location).upload_from_string(data),
        remove_stored=lambda storage, location: blobs.blob(location).delete(),
        fail_next_upload=lambda: proxy.fail_next(
            400, method="POST", path_contains=f"/upload/storage/v1/b/{bucket}/o"
        ),
        fixed_location=lambda: {"key": FIXED_KEY},
    )


def azure_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    """Azurite, which checks the shared-key signature of every request.

    Pickle mode finds the connection string in ``AZURE_STORAGE_CONNECTION_STRING``; script
    mode names a secret with ``connection_string_secret`` (set through the
    ``PREFECT__CONTEXT__SECRETS__<NAME>`` variable). ``break_credentials`` names a secret that
    holds the same endpoint with a wrong account key (Azurite answers 403).
    """
    from tests.servers.azurite import ACCOUNT_KEY, BAD_ACCOUNT_KEY

    server = ctx.fixture("azurite")
    proxy = ctx.fixture("fault_proxy")(server.url)
    script = ctx.write_flow_script()
    container = server.new_container()
    blobs = server.container_client(container)
    good = server.connection_string_for(proxy.url)
    bad = server.connection_string_for(proxy.url, key=BAD_ACCOUNT_KEY)
    env = {ENV_PREFIX + AZURE_BAD_SECRET: bad}
    if script_mode:
        ctx.monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
        env[ENV_PREFIX + AZURE_SECRET] = good
    else:
        env["AZURE_STORAGE_CONNECTION_STRING"] = good

    def make_storage(**kwargs: Any) -> Azure:
        if script_mode:
            # Both flows share the script's blob: overwrite=True, or the second upload of the
            # same script is refused (see tests/backends: the script is uploaded per flow).
            kwargs = _script_kwargs(
                script,
                "blob_name",
                connection_string_secret=AZURE_SECRET,
                overwrite=True,
                **kwargs,
            )
        return Azure(container, **kwargs)

    def break_credentials(storage: Storage) -> Storage:
        assert isinstance(storage, Azure)
        kwargs: dict[str, Any] = {"connection_string_secret": AZURE_BAD_SECRET}
        if script_mode:
            kwargs = _script_kwargs(script, "blob_name", overwrite=True, **kwargs)
        twin = Azure(container, **kwargs)
        twin.flows = dict(storage.flows)
        return twin

    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=_from_script(script),
        script_mode=script_mode,
        paired_result=AzureResult,
        env=env,
        sensitive_values=(ACCOUNT_KEY, BAD_ACCOUNT_KEY),
        read_stored=lambda storage, location: blobs.download_blob(location).readall(),
        write_stored=lambda storage, location, data: blobs.upload_blob(
            location, data, overwrite=True
        ),
        remove_stored=lambda storage, location: blobs.delete_blob(location),
        break_credentials=break_credentials,
        fail_next_upload=lambda: proxy.fail_next(400, method="PUT", path_contains=f"/{container}/"),
        fixed_location=lambda: {"blob_name": FIXED_KEY},
    )


# -- Git, GitHub, GitLab, Bitbucket, CodeCommit -------------------------------------------
# Repository storages are read-only: the rig commits FLOW_SCRIPT into a real bare repository
# (``git_repos``) on top of a first commit, and ``build()`` pins the branch's tip. So:
# - ``read_stored`` reads the script at the pinned commit (``storage.commit_sha``);
# - ``write_stored`` is None: a commit changing the file is a *new* commit, which a pinned
#   storage must not pick up (tests/repos checks that), so no stored bytes can change behind
#   the storage's back and the tampering tests do not apply;
# - ``remove_stored`` force-pushes the branch back to the first commit and purges what became
#   unreachable: the pinned commit is really gone (a commit that deletes the file would not
#   remove it: the pinned commit still has it, as tests/repos checks);
# - ``break_credentials`` names a secret holding a token the server refuses (git daemon is
#   anonymous: nothing to break); nothing is ever uploaded, so no ``fail_next_upload``.
# Servers are reached the user's way: ``repo_host``/``protocol`` for Git, ``base_url``/``host``
# for the APIs, ``client_options={"endpoint_url": ...}`` for CodeCommit.
REPO_SCRIPT_PATH = "flows/contract_flows.py"
REPO_OWNER = "acme"
REPO_PROJECT = "ACME"
REPO_NAME = "flows"
REPO_TOKEN_SECRET = "CONTRACT_REPO_TOKEN"
REPO_BAD_TOKEN_SECRET = "CONTRACT_REPO_BAD_TOKEN"
REPO_USER_SECRET = "CONTRACT_REPO_USER"
REPO_BAD_TOKEN = "not-the-repo-token"
REPO_BAD_ACCESS_KEY = "AKIANOTTHEACCESSKEY0"


def _repo_with_script(ctx: RigContext) -> Any:
    """A bare repository: a first commit, then FLOW_SCRIPT at REPO_SCRIPT_PATH on ``main``."""
    repos = ctx.fixture("git_repos")
    bare = repos.create(REPO_NAME, {"README.md": "flows for the contract suite\n"})
    base = bare.head
    bare.commit({REPO_SCRIPT_PATH: FLOW_SCRIPT}, message="add the contract flows")

    def remove(storage: Storage, location: str) -> None:
        pinned = getattr(storage, "commit_sha", None)
        assert pinned and len(pinned) == 40, f"build() pinned {pinned!r}, not a commit SHA"
        bare.force_push(bare.default_branch, base)
        bare.purge_unreachable()
        assert not bare.has_object(pinned)

    return bare, remove


def repo_rig(ctx: RigContext, *, kind: str) -> Rig:
    """One repository backend (``kind``) over its local server; see the comment above."""
    from prefect_storage.storage import Bitbucket, CodeCommit, Git, GitHub, GitLab

    bare, remove = _repo_with_script(ctx)
    script = ctx.write_flow_script()
    env: dict[str, str] = {ENV_PREFIX + REPO_BAD_TOKEN_SECRET: REPO_BAD_TOKEN}
    sensitive: list[str] = [REPO_BAD_TOKEN]
    make: Callable[..., Storage]
    good: dict[str, Any] = {}
    bad: dict[str, Any] | None = None
    if kind in ("git-daemon", "git-http"):
        repo = bare.name.removesuffix(".git")
        if kind == "git-daemon":
            server = ctx.fixture("git_daemon")
            make = partial(Git, REPO_SCRIPT_PATH, repo, repo_host=f"127.0.0.1:{server.port}")
            good = {"protocol": "git"}
        else:
            server = ctx.fixture("git_http")
            make = partial(
                Git, REPO_SCRIPT_PATH, repo, repo_host=f"127.0.0.1:{server.port}", protocol="http"
            )
            good = {"git_token_secret_name": REPO_TOKEN_SECRET}
            bad = {"git_token_secret_name": REPO_BAD_TOKEN_SECRET}
            env[ENV_PREFIX + REPO_TOKEN_SECRET] = server.token
            sensitive.append(server.token)
    elif kind == "codecommit":
        server = ctx.fixture("codecommit_server")
        server.add_repo(REPO_NAME, bare)
        options = {"endpoint_url": server.endpoint_url, "region_name": "us-east-1"}
        make = partial(CodeCommit, REPO_NAME, REPO_SCRIPT_PATH, client_options=options)
        sensitive.append(os.environ["AWS_SECRET_ACCESS_KEY"])
    else:
        api = ctx.fixture("repo_api")
        api.add_repo(f"{REPO_OWNER}/{REPO_NAME}", bare)
        api.add_repo(f"{REPO_PROJECT}/{REPO_NAME}", bare)  # Bitbucket Server: project key
        env[ENV_PREFIX + REPO_TOKEN_SECRET] = api.token
        sensitive.append(api.token)
        good = {"access_token_secret": REPO_TOKEN_SECRET}
        bad = {"access_token_secret": REPO_BAD_TOKEN_SECRET}
        if kind == "github":
            make = partial(GitHub, f"{REPO_OWNER}/{REPO_NAME}", REPO_SCRIPT_PATH)
            good["base_url"] = bad["base_url"] = api.github_url
        elif kind == "gitlab":
            make = partial(GitLab, f"{REPO_OWNER}/{REPO_NAME}", api.gitlab_url, REPO_SCRIPT_PATH)
        elif kind == "bitbucket-server":
            make = partial(
                Bitbucket, REPO_PROJECT, REPO_NAME, host=api.bitbucket_url, path=REPO_SCRIPT_PATH
            )
        else:  # bitbucket-cloud: user name and app password
            make = partial(
                Bitbucket,
                REPO_PROJECT,
                REPO_NAME,
                workspace=REPO_OWNER,
                host=api.bitbucket_cloud_url,
                path=REPO_SCRIPT_PATH,
                cloud_username_secret=REPO_USER_SECRET,
            )
            env[ENV_PREFIX + REPO_USER_SECRET] = api.username
            env[ENV_PREFIX + REPO_TOKEN_SECRET] = api.password
            sensitive = [REPO_BAD_TOKEN, api.password]
            good = {"cloud_app_password_secret": REPO_TOKEN_SECRET}
            bad = {"cloud_app_password_secret": REPO_BAD_TOKEN_SECRET}

    def make_storage(**kwargs: Any) -> Storage:
        return make(**good, **kwargs)

    def break_credentials(storage: Storage) -> Storage:
        if kind == "codecommit":
            ctx.monkeypatch.setenv("AWS_ACCESS_KEY_ID", REPO_BAD_ACCESS_KEY)
            return _rebuilt(make, storage)
        assert bad is not None
        return _rebuilt(make, storage, **bad)

    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=_from_script(script),
        script_mode=True,
        env=env,
        sensitive_values=tuple(sensitive),
        read_stored=lambda storage, location: bare.show(storage.commit_sha, location),
        remove_stored=remove,
        break_credentials=break_credentials if (bad or kind == "codecommit") else None,
    )


REPO_RIGS = (
    "git-daemon",
    "git-http",
    "github",
    "gitlab",
    "bitbucket-server",
    "bitbucket-cloud",
    "codecommit",
)


# -- Docker -------------------------------------------------------------------------------
# Docker storage bakes the flows into an image, and its get_flow reads a flow's location as a
# local file: it is meant to run inside that image. The contract tests call get_flow in this
# process, so the rig makes the image's flow files visible here, at the same absolute paths:
# - every location is under the test's folder (``<folder>/image/...``), never a real /opt:
#   pickle mode keeps the storage's own per-flow locations (``<FLOWS_DIRECTORY>/<slug>.prefect``,
#   one file per flow, as two-flow storages need) with FLOWS_DIRECTORY moved there; script
#   mode ships the script with ``local_script_path`` to a fixed ``path``;
# - after every successful ``build()`` (which pushes to the session's registry), the files are
#   copied out of the BUILT image (a container created from ``storage.name``, then
#   ``get_archive``) to those same paths. Only the hooks below change them later, so get_flow
#   here and in a fresh process reads what is in the image, and so does ``read_stored``.
# - ``write_stored`` (so tampering) and ``remove_stored`` act on that host copy: the image is
#   immutable, but the host copy is where the in-process get_flow reads, which is what the
#   tampering and removal tests are about.
# No credentials (the registry is anonymous). The registry is reached through a fault proxy:
# ``fail_next_upload`` makes it refuse the image's manifest, so the push, and build(), fail.
# That proxy lives for the session (one per registry): the engine knows which layers a
# registry host already has, so each push uploads only the new flow layers; a proxy per test
# would be a new host each time, and every push would upload the whole base image again.
# Images are built FROM the local ``python_base_image`` (never pulled) with this checkout's
# wheel; only the flow layers and the health check change between builds.
DOCKER_IMAGE_ROOT = "image"
"""The folder, under the rig's folder, that stands for the image's root on this machine."""
DOCKER_SCRIPT_PATH = "flows/contract_flows.py"
"""Where script rigs put FLOW_SCRIPT in the image (under DOCKER_IMAGE_ROOT)."""
_REGISTRY_PROXIES: dict[str, Any] = {}
"""The session's fault proxy in front of each registry (by registry URL)."""


def _registry_proxy(ctx: RigContext, registry: Any) -> Any:
    """The fault proxy in front of ``registry``, started once; no rules left between tests."""
    from tests.servers.faultproxy import FaultProxy

    request = ctx.fixture("request")
    proxy = _REGISTRY_PROXIES.get(registry.url)
    if proxy is None:
        proxy = _REGISTRY_PROXIES[registry.url] = FaultProxy(f"http://{registry.url}").start()
        request.config.add_cleanup(proxy.stop)
    proxy.reset()
    request.addfinalizer(proxy.reset)
    return proxy


def _copy_out_of_image(client: Any, image: str, locations: Collection[str]) -> None:
    """Copy each file ``location`` of ``image`` to the same absolute path on this machine."""
    import io
    import tarfile

    container = client.containers.create(image, network_mode="none")
    try:
        for location in sorted(set(locations)):
            chunks, _ = container.get_archive(location)
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
                member = archive.extractfile(os.path.basename(location))
                assert member is not None, f"{location} is not a file in {image}"
                data = member.read()
            Path(location).parent.mkdir(parents=True, exist_ok=True)
            Path(location).write_bytes(data)
    finally:
        container.remove(force=True)


def docker_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    """A real engine and registry (``tests/servers/docker.py``); see the comment above."""
    from prefect_storage.storage import Docker
    from prefect_storage.storage import docker as docker_module

    daemon = ctx.fixture("docker_env")  # DOCKER_HOST, and an empty DOCKER_CONFIG
    registry = ctx.fixture("docker_registry")
    proxy = _registry_proxy(ctx, registry)
    base_image = ctx.fixture("python_base_image")
    wheel = ctx.fixture("package_wheel")
    script = ctx.write_flow_script()
    root = ctx.folder / DOCKER_IMAGE_ROOT
    image_name = f"contract/{ctx.rig_id}-{uuid.uuid4().hex[:8]}"  # one repository per test
    ctx.monkeypatch.setattr(docker_module, "FLOWS_DIRECTORY", str(root / "opt/prefect/flows"))
    defaults: dict[str, Any] = {
        "registry_url": proxy.url.removeprefix("http://"),
        "image_name": image_name,
        "base_image": base_image,
        "local_image": True,
        "package_wheel": str(wheel),
    }
    if script_mode:
        defaults |= {
            "stored_as_script": True,
            "local_script_path": str(script),
            "path": str(root / DOCKER_SCRIPT_PATH),
        }

    # build() runs the real Docker.build, then copies the flow files out of the built image.
    # Patched on the class for this test only: an instance attribute would be pickled with
    # the storage (and ``Docker`` subclasses cannot be serialized).
    real_build = Docker.build

    def build_and_copy_out(self: Docker, push: bool = True) -> Docker:
        real_build(self, push=push)
        if push:
            pushed = registry.tags(str(self.image_name))
            assert self.image_tag in pushed, f"{self.name} is not in the registry"
        client = daemon.client()
        try:
            _copy_out_of_image(client, self.name, self.flows.values())
        finally:
            client.close()
        return self

    ctx.monkeypatch.setattr(Docker, "build", build_and_copy_out)

    def make_storage(**kwargs: Any) -> Docker:
        return Docker(**{**defaults, **kwargs})

    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=_from_script(script),
        script_mode=script_mode,
        read_stored=_read_file,
        write_stored=_write_file,
        remove_stored=_remove_file,
        fail_next_upload=lambda: proxy.fail_next(500, method="PUT", path_contains="/manifests/"),
        fixed_location=lambda: {"path": str(root / "fixed" / "one.flow")},
    )


RIGS: list[RigSpec] = [
    RigSpec("local-pickle", partial(local_rig, script_mode=False)),
    RigSpec("local-script", partial(local_rig, script_mode=True)),
    RigSpec("module", module_rig),
    RigSpec("webhook-pickle", partial(webhook_rig, script_mode=False)),
    RigSpec("webhook-script", partial(webhook_rig, script_mode=True)),
    RigSpec("s3-pickle", partial(s3_rig, script_mode=False)),
    RigSpec("s3-script", partial(s3_rig, script_mode=True)),
    RigSpec("gcs-pickle", partial(gcs_rig, script_mode=False)),
    RigSpec("gcs-script", partial(gcs_rig, script_mode=True)),
    RigSpec("azure-pickle", partial(azure_rig, script_mode=False)),
    RigSpec("azure-script", partial(azure_rig, script_mode=True)),
    *(RigSpec(kind, partial(repo_rig, kind=kind)) for kind in REPO_RIGS),
    RigSpec(
        "docker-pickle",
        partial(docker_rig, script_mode=False),
        marks=(pytest.mark.docker, pytest.mark.slow),
    ),
    RigSpec(
        "docker-script",
        partial(docker_rig, script_mode=True),
        marks=(pytest.mark.docker, pytest.mark.slow),
    ),
]
"""Every backend configuration the contract suite runs against."""
