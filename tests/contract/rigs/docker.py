"""Docker over a real engine and registry; see the comment below."""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.contract.rigs import (
    Rig,
    RigContext,
    RigSpec,
    flow_loader,
    read_file,
    remove_file,
    write_file,
)

# Docker storage bakes the flows into an image, and its get_flow reads a flow's location as a
# local file: it is meant to run inside that image. The contract tests call get_flow in this
# process, so the rig makes the image's flow files visible here, at the same absolute paths:
# - every location is under the test's folder (``<folder>/image/...``), never a real /opt:
#   pickle mode keeps the storage's own per-flow locations (``<FLOWS_DIRECTORY>/<slug>.prefect``,
#   one file per flow, as two-flow storages need) with FLOWS_DIRECTORY moved there; script
#   mode ships the script with ``local_script_path`` to a fixed ``path``;
# - after every successful ``build()`` (which pushes to the session's registry), the files are
#   copied out of the BUILT image (a container created from ``storage.image``, then
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
    from prefect_storage.backends.docker import storage as docker_module
    from prefect_storage.storage import Docker

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
            assert self.image_tag in pushed, f"{self.image} is not in the registry"
        client = daemon.client()
        try:
            _copy_out_of_image(client, self.image, self.flows.values())
        finally:
            client.close()
        return self

    ctx.monkeypatch.setattr(Docker, "build", build_and_copy_out)

    def make_storage(**kwargs: Any) -> Docker:
        return Docker(**{**defaults, **kwargs})

    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=flow_loader(script),
        script_mode=script_mode,
        read_stored=read_file,
        write_stored=write_file,
        remove_stored=remove_file,
        fail_next_upload=lambda: proxy.fail_next(500, method="PUT", path_contains="/manifests/"),
        fixed_location=lambda: {"path": str(root / "fixed" / "one.flow")},
    )


RIGS = [
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
