"""A real Docker engine and a real image registry on this machine, for Docker storage tests.

No image can be pulled from Docker Hub here, so everything is local:

``DockerDaemon().start()`` runs Debian's ``dockerd`` as a child process on a private socket,
without touching the machine's networking: ``--iptables=false --ip-masq=false --bridge=none``
(so containers run with ``network_mode="none"`` or ``"host"`` only; there is no bridge) and
``--storage-driver=overlay2``, or ``vfs`` where overlay2 does not start (see ``DockerDaemon``).
Its socket, exec-root and log live in a fresh temporary folder (``.host`` is
``unix:///tmp/prefect-storage-dockerd-.../docker.sock``, for ``DOCKER_HOST``); its data-root
is persistent, ``<repo>/.cache/docker/<slot>/data-root``, so images survive between sessions.
A session claims a slot with a file lock (``.cache/docker/<slot>.lock``): a second session
running at the same time gets the next slot (its own data-root) instead of sharing a daemon.
The daemon's pidfile is kept in the slot folder: a ``dockerd`` left running on that data-root
by a crashed session is stopped, and its stale pidfile removed, before a new one starts.
When it starts and when it stops, the daemon removes every container and every image that is
not tagged ``prefect-storage-test/...``: those are the cached images (the Python base image);
anything a test builds is gone by the next session. ``stop()`` sends SIGTERM to the dockerd
PID (it stops its containers and its containerd), waits, then SIGKILLs the process group.

``LocalRegistry().start()`` runs ``docker-registry serve CONFIG`` (Distribution 2.8) on
127.0.0.1 and a free port, with filesystem storage in a temporary folder; ``.url`` is
``127.0.0.1:PORT`` (the engine talks plain HTTP to loopback registries: push
``127.0.0.1:PORT/name:tag``).

``python_base_image(daemon)`` returns ``prefect-storage-test/python:bookworm``, building it when
the daemon lacks it (or it was built from another recipe / CA bundle):

1. ``debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3 bookworm``
   into ``<repo>/.cache/debootstrap-bookworm`` (once per machine, ~50 s, ~300 MB; reused
   afterwards; ``python -m tests.servers.docker rootfs`` does only this step);
2. ``tar -C ROOTFS -c . | docker import --change 'ENV ...' --change 'CMD ["python3"]' -``
   (without apt's caches, docs, man pages and locales) as ``...:bookworm-rootfs``;
3. a small ``docker build`` on top that copies the host's CA bundle (this network intercepts
   TLS with its own CA) to ``/etc/ssl/certs/ca-certificates.crt`` and sets the environment.

The image: Debian 12, ``/usr/bin/python3`` (3.11) also as ``python``, Debian's pip 23.0.1 as
``pip``/``pip3``/``python -m pip``. Debian's pip refuses system-wide installs (PEP 668); the
image sets ``PIP_BREAK_SYSTEM_PACKAGES=1`` (no venv), so ``pip install X`` installs into
``/usr/local/lib/python3.11/dist-packages`` (scripts into ``/usr/local/bin``) and plain
``python`` sees it. Also set: ``PIP_ROOT_USER_ACTION=ignore``, ``PIP_NO_CACHE_DIR=1``,
``PIP_DISABLE_PIP_VERSION_CHECK=1``, and ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``/``PIP_CERT``
pointing at the CA bundle (``requests`` installed from PyPI would otherwise use certifi's
bundle and fail behind the intercepting proxy). ``CMD ["python3"]``. Its own build needs no
network; a ``docker build`` that runs ``pip install`` needs ``network_mode="host"``.

``python3_only_image(daemon)`` returns ``prefect-storage-test/python:bookworm-python3-only``,
built FROM it (cached the same way): ``python-is-python3`` purged, so ``python3`` is the only
interpreter on PATH, and ``PIP_BREAK_SYSTEM_PACKAGES=0``, so pip refuses system-wide installs
as Debian's does.

``build_wheel(repo_root, out_dir)`` builds this package's wheel (``python -m pip wheel
--no-deps``) from a copy of the source, so that images can install the checkout's code.

A file lock (``.cache/docker/base-image.lock``) keeps two sessions from building at once.
Each slot and storage driver holds its own copy of the image (steps 2-3 again: ~3 s with
overlay2, ~10 s with vfs); the debootstrap tree is shared. ``python -m tests.servers.docker
warm`` starts a daemon, builds the image and stops (to warm a CI cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.servers.s3 import (
    ServerNotInstalled,
    ServerProcess,
    ServerUnavailable,
    _signal_group,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
DOCKER_CACHE = CACHE_DIR / "docker"
"""Slots (one persistent data-root each), their locks, and the base-image lock."""
ROOTFS_CACHE = CACHE_DIR / "debootstrap-bookworm"
"""The debootstrapped Debian 12 tree the base image is imported from."""

STORAGE_DRIVERS = ("overlay2", "vfs")
"""Tried in this order (see ``DockerDaemon``)."""
MAX_SLOTS = 8
"""How many sessions may run a daemon at the same time on one machine."""
DOCKERD_STOP_TIMEOUT = 30.0
"""Seconds dockerd gets to stop (its containers get ``SHUTDOWN_TIMEOUT`` of those)."""
SHUTDOWN_TIMEOUT = 5
KEEP_PREFIX = "prefect-storage-test/"
"""Images tagged with this prefix are kept between sessions; all others are removed."""

BASE_IMAGE = "prefect-storage-test/python:bookworm"
PYTHON3_ONLY_IMAGE = "prefect-storage-test/python:bookworm-python3-only"
ROOTFS_IMAGE = "prefect-storage-test/python:bookworm-rootfs"
RECIPE_LABEL = "org.prefect-storage.test.recipe"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("PREFECT_STORAGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBOOTSTRAP_ARGS = [
    "--variant=minbase",
    "--include=python3,python3-pip,python-is-python3",
    DEBIAN_SUITE,
]
TAR_EXCLUDES = [
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*_*",  # the package lists (run apt-get update to use apt)
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/info/*",
    "./usr/share/locale/*",
]
IMPORT_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
]
IMAGE_ENV = {
    "PIP_BREAK_SYSTEM_PACKAGES": "1",
    "PIP_ROOT_USER_ACTION": "ignore",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_CERT": IMAGE_CA_BUNDLE,
    "SSL_CERT_FILE": IMAGE_CA_BUNDLE,
    "REQUESTS_CA_BUNDLE": IMAGE_CA_BUNDLE,
}
DEBOOTSTRAP_TIMEOUT = 900.0
LOCK_TIMEOUT = 1200.0
"""Seconds to wait for another session's base-image build (a cold one takes about a minute)."""

Progress = Callable[[str], None]


def print_progress(message: str) -> None:
    print(f"[docker test setup] {message}", file=sys.stderr, flush=True)


# -- the engine --------------------------------------------------------------------------------
class DockerDaemon(ServerProcess):
    """``dockerd`` on a private socket with a persistent data-root (see the module docstring).

    ``host`` is the ``DOCKER_HOST`` value, ``client()`` a ``docker.DockerClient`` for it,
    ``data_root`` the persistent folder, ``storage_driver`` the one in use. (``port`` from
    ``ServerProcess`` is not used.)

    ``storage_drivers`` are tried in order: ``overlay2`` where the kernel and the file system of
    the data-root allow it (containers start in ~0.3 s; layers are shared), else ``vfs`` (every
    layer and every container is a full copy of the image: ~3-4 s per container, much more
    disk). ``PREFECT_STORAGE_DOCKER_STORAGE_DRIVER=vfs`` forces one. Images are stored per
    driver, so each driver has its own cached base image.
    """

    name = "dockerd"
    start_attempts = 1

    def __init__(
        self, cache_dir: Path = DOCKER_CACHE, storage_drivers: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        self.cache_dir = cache_dir
        forced = os.environ.get("PREFECT_STORAGE_DOCKER_STORAGE_DRIVER")
        self.storage_drivers = list(storage_drivers or ([forced] if forced else STORAGE_DRIVERS))
        self.storage_driver: str | None = None
        self.slot: int | None = None
        self.slot_dir: Path | None = None
        self._slot_lock: int | None = None
        self._starting = False
        self.driver_errors: list[str] = []
        """Why the drivers tried before ``storage_driver`` did not start."""

    # -- paths ---------------------------------------------------------------------------------
    @property
    def data_root(self) -> Path:
        if self.slot_dir is None:
            raise RuntimeError("the Docker daemon is not started")
        return self.slot_dir / "data-root"

    @property
    def pidfile(self) -> Path:
        if self.slot_dir is None:
            raise RuntimeError("the Docker daemon is not started")
        return self.slot_dir / "dockerd.pid"

    @property
    def socket_path(self) -> Path:
        if self.folder is None:
            raise RuntimeError("the Docker daemon is not started")
        return self.folder / "docker.sock"

    @property
    def host(self) -> str:
        """``unix:///.../docker.sock``: the value for ``DOCKER_HOST`` or ``base_url``."""
        return f"unix://{self.socket_path}"

    def client(self, timeout: int = 600) -> Any:
        """A ``docker.DockerClient`` for this daemon (API version negotiated)."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=timeout)

    # -- ServerProcess -------------------------------------------------------------------------
    def command(self) -> list[str]:
        assert self.folder is not None
        dockerd = shutil.which("dockerd", path=_sbin_path())
        assert dockerd is not None  # checked in start()
        config = self.folder / "daemon.json"
        config.write_text("{}\n")  # not /etc/docker/daemon.json: flags clash with its settings
        return [
            dockerd,
            f"--config-file={config}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.folder / 'exec'}",
            f"--pidfile={self.pidfile}",
            f"--host=unix://{self.socket_path}",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            f"--storage-driver={self.storage_driver}",
            f"--shutdown-timeout={SHUTDOWN_TIMEOUT}",
            # Its own containerd runs under exec-root; should a system containerd be running,
            # dockerd uses that one instead: keep to our own namespaces in it.
            f"--containerd-namespace=prefect-storage-test-{self.slot}",
            f"--containerd-plugins-namespace=prefect-storage-test-{self.slot}-plugins",
        ]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["PATH"] = _sbin_path()  # containerd, runc, docker-init live in /usr/bin, /usr/sbin
        return env

    def ready(self) -> bool:
        return self.folder is not None and _ping(self.socket_path)

    def start(self) -> DockerDaemon:
        if shutil.which("dockerd", path=_sbin_path()) is None:
            raise ServerNotInstalled(
                "dockerd is not installed: run `bash scripts/bootstrap.sh` "
                "(or apt-get install docker.io)"
            )
        if os.geteuid() != 0:
            raise ServerNotInstalled("dockerd needs root here (no rootless setup): run as root")
        self._claim_slot()
        began = time.monotonic()
        try:
            self._stop_orphan()
            self.driver_errors = []
            for number, driver in enumerate(self.storage_drivers, 1):
                self.storage_driver = driver
                self._starting = True  # ServerProcess.start() calls stop() when it fails
                try:
                    super().start()
                    break
                except ServerUnavailable as exc:
                    if number == len(self.storage_drivers):
                        if self.driver_errors:
                            raise ServerUnavailable(
                                f"{exc}\n(before that: {'; '.join(self.driver_errors)})"
                            ) from None
                        raise
                    self.driver_errors.append(f"--storage-driver={driver}: {_last_line(exc)}")
                finally:
                    self._starting = False
            self.prune()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Remove test containers and images, end dockerd, remove its temporary folder and
        release the slot. Idempotent."""
        if self.running and not self._starting:
            with contextlib.suppress(Exception):
                self.prune()
        self._end_process()
        # dockerd bind-mounts its data-root onto itself and mounts exec-root/netns/default; it
        # leaves them behind when it fails to start (or is killed). No dockerd of ours runs on
        # them now, and the slot lock keeps other sessions away.
        leftovers = [self.folder] if self.folder is not None else []
        if self.slot_dir is not None and self._slot_lock is not None:
            leftovers.append(self.data_root)
        for folder in leftovers:
            for point in _mounts_under(folder):
                subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        super().stop()
        if self._starting:
            return
        if self.slot_dir is not None:
            with contextlib.suppress(FileNotFoundError):
                self.pidfile.unlink()
        if self._slot_lock is not None:
            os.close(self._slot_lock)  # releases the flock
            self._slot_lock = None

    def _end_process(self) -> None:
        """SIGTERM to dockerd itself (it stops containers and containerd), SIGKILL later."""
        process, self._process = self._process, None
        self.pid = None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=DOCKERD_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=DOCKERD_STOP_TIMEOUT)
        self.returncode = process.returncode

    # -- housekeeping --------------------------------------------------------------------------
    def prune(self) -> None:
        """Remove every container, and every image not tagged ``prefect-storage-test/...``."""
        client = self.client(timeout=120)
        try:
            for container in client.containers.list(all=True):
                container.remove(force=True, v=True)
            for image in client.images.list():
                if not any(tag.startswith(KEEP_PREFIX) for tag in image.tags):
                    with contextlib.suppress(Exception):  # e.g. removed with a parent already
                        client.images.remove(image.id, force=True)
            client.images.prune(filters={"dangling": True})
            client.volumes.prune()
        finally:
            client.close()

    def _claim_slot(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for slot in range(MAX_SLOTS):
            fd = os.open(self.cache_dir / f"{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.slot, self._slot_lock = slot, fd
            self.slot_dir = self.cache_dir / str(slot)
            self.data_root.mkdir(parents=True, exist_ok=True)
            return
        raise ServerUnavailable(
            f"dockerd: all {MAX_SLOTS} data-root slots in {self.cache_dir} are in use by other "
            "test sessions"
        )

    def _stop_orphan(self) -> None:
        """End a dockerd that a crashed session left on this slot's data-root; drop its pidfile.

        We hold the slot's lock, so no live session owns that process any more.
        """
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            pid = 0
        if pid > 0 and _is_dockerd_for(pid, self.data_root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + DOCKERD_STOP_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.5)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _sbin_path() -> str:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    for extra in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(p for p in parts if p)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


def _is_dockerd_for(pid: int, data_root: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return (
        bool(argv)
        and os.path.basename(argv[0]) == b"dockerd"
        and (f"--data-root={data_root}".encode() in argv)
    )


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(socket_path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def _ping(socket_path: Path, timeout: float = 2.0) -> bool:
    """Whether the engine answers ``GET /_ping`` with ``OK`` on its unix socket."""
    if not socket_path.exists():
        return False
    connection = _UnixHTTPConnection(socket_path, timeout)
    try:
        connection.request("GET", "/_ping")
        response = connection.getresponse()
        return response.status == 200 and response.read().strip() == b"OK"
    except OSError:
        return False
    finally:
        connection.close()


# -- the registry ------------------------------------------------------------------------------
class LocalRegistry(ServerProcess):
    """Distribution's ``docker-registry`` on 127.0.0.1 with filesystem storage (temporary)."""

    name = "docker-registry"

    def command(self) -> list[str]:
        assert self.folder is not None and self.port is not None
        program = shutil.which("docker-registry", path=_sbin_path())
        if program is None:
            raise ServerNotInstalled(
                "docker-registry is not installed: run `bash scripts/bootstrap.sh` "
                "(or apt-get install docker-registry)"
            )
        storage = self.folder / "storage"
        storage.mkdir(exist_ok=True)
        config = self.folder / "config.yml"
        config.write_text(  # YAML; values quoted as JSON strings
            "version: 0.1\n"
            "log:\n"
            "  level: info\n"
            "storage:\n"
            "  filesystem:\n"
            f"    rootdirectory: {json.dumps(str(storage))}\n"
            "  delete:\n"
            "    enabled: true\n"
            "http:\n"
            f'  addr: "127.0.0.1:{self.port}"\n'
            '  secret: "prefect-storage-tests"\n'
        )
        return [program, "serve", str(config)]

    def ready(self) -> bool:
        assert self.port is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
        try:
            connection.request("GET", "/v2/")
            response = connection.getresponse()
            response.read()
        except OSError:
            return False
        finally:
            connection.close()
        return response.status == 200

    @property
    def url(self) -> str:
        """``127.0.0.1:PORT``: prefix image names with it (``127.0.0.1:PORT/team/flow:tag``)."""
        if self.port is None:
            raise RuntimeError("the registry is not started")
        return f"127.0.0.1:{self.port}"

    def tags(self, repository: str) -> list[str]:
        """The tags of ``repository`` in this registry (``GET /v2/<name>/tags/list``)."""
        assert self.port is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", f"/v2/{repository}/tags/list")
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status == 404:
            return []
        if response.status != 200:
            raise RuntimeError(f"registry answered HTTP {response.status}: {body[:200]!r}")
        return sorted(json.loads(body).get("tags") or [])


# -- the Python base image ---------------------------------------------------------------------
@contextlib.contextmanager
def file_lock(
    path: Path, what: str, progress: Progress, timeout: float = LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (another session's build may hold it first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{what}: {path} stayed locked for {timeout:.0f} s"
                    ) from None
                if not announced:
                    progress(f"{what}: waiting for another session ({path} is locked)")
                    announced = True
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


def _rootfs_recipe() -> str:
    return " ".join(["debootstrap", *DEBOOTSTRAP_ARGS])


def ensure_rootfs(progress: Progress = print_progress) -> Path:
    """The debootstrapped tree in ``.cache/debootstrap-bookworm``, made if missing (locked)."""
    marker = ROOTFS_CACHE.with_name(ROOTFS_CACHE.name + ".recipe")
    if _rootfs_ready(marker):
        return ROOTFS_CACHE
    with file_lock(DOCKER_CACHE / "rootfs.lock", "debootstrap", progress):
        if _rootfs_ready(marker):  # made by another session while we waited
            return ROOTFS_CACHE
        debootstrap = shutil.which("debootstrap", path=_sbin_path())
        if debootstrap is None:
            raise ServerNotInstalled(
                "debootstrap is not installed: run `bash scripts/bootstrap.sh` "
                "(or apt-get install debootstrap)"
            )
        if os.geteuid() != 0:
            raise ServerNotInstalled("debootstrap needs root")
        partial = ROOTFS_CACHE.with_name(ROOTFS_CACHE.name + ".partial")
        for stale in (partial, ROOTFS_CACHE):
            _remove_tree(stale)
        marker.unlink(missing_ok=True)
        log_path = ROOTFS_CACHE.with_name(ROOTFS_CACHE.name + ".log")
        command = [debootstrap, *DEBOOTSTRAP_ARGS, str(partial), DEBIAN_MIRROR]
        progress(f"debootstrap of Debian {DEBIAN_SUITE} into {ROOTFS_CACHE} (~1 min, ~300 MB)")
        began = time.monotonic()
        with open(log_path, "wb") as log:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PATH": _sbin_path(), "DEBIAN_FRONTEND": "noninteractive"},
                timeout=DEBOOTSTRAP_TIMEOUT,
                check=False,
            )
        if result.returncode != 0 or not (partial / "usr/bin/python3").exists():
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
            _remove_tree(partial)
            raise ServerUnavailable(
                f"debootstrap failed with exit code {result.returncode} "
                f"({' '.join(command)}); log {log_path}:\n{tail}"
            )
        if _mounts_under(partial):  # debootstrap unmounts its /proc, /sys; make sure
            raise ServerUnavailable(
                f"debootstrap left mounts under {partial}: {_mounts_under(partial)}"
            )
        partial.rename(ROOTFS_CACHE)
        marker.write_text(_rootfs_recipe() + "\n")
        progress(f"debootstrap done in {time.monotonic() - began:.0f} s ({_du(ROOTFS_CACHE)})")
        return ROOTFS_CACHE


def _rootfs_ready(marker: Path) -> bool:
    try:
        recipe = marker.read_text().strip()
    except FileNotFoundError:
        return False
    return recipe == _rootfs_recipe() and (ROOTFS_CACHE / "usr/bin/python3").exists()


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    mounts = []
    with open("/proc/self/mounts") as table:
        for line in table:
            point = line.split()[1].encode().decode("unicode_escape")
            if point.startswith(prefix) or point == prefix[:-1]:
                mounts.append(point)
    return sorted(mounts, key=len, reverse=True)


def _remove_tree(path: Path) -> None:
    """Remove a (partial) root file system; first unmount what an interrupted debootstrap left
    mounted in it (never delete through a mounted /proc, /sys or /dev)."""
    if not path.exists():
        return
    for point in _mounts_under(path):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:
        raise ServerUnavailable(f"cannot remove {path}: still mounted: {left}")
    shutil.rmtree(path)


def _du(path: Path) -> str:
    result = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True, check=False)
    return result.stdout.split()[0] if result.stdout else "?"


def _dockerfile() -> str:
    env = " ".join(f"{key}={value}" for key, value in IMAGE_ENV.items())
    return (
        f"FROM {ROOTFS_IMAGE}\n"
        f"COPY ca-certificates.crt {IMAGE_CA_BUNDLE}\n"
        f"ENV {env}\n"
        'CMD ["python3"]\n'
    )


def _recipe_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def _label_of(client: Any, name: str) -> str | None:
    import docker.errors

    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    labels: dict[str, str] = image.labels or {}
    return labels.get(RECIPE_LABEL)


def python_base_image(daemon: DockerDaemon, progress: Progress = print_progress) -> str:
    """The name of a Python base image in ``daemon``, built if missing (module docstring)."""
    if not HOST_CA_BUNDLE.is_file():
        raise ServerUnavailable(f"the host CA bundle {HOST_CA_BUNDLE} is missing")
    rootfs_recipe = _recipe_hash(
        _rootfs_recipe().encode(), json.dumps([TAR_EXCLUDES, IMPORT_CHANGES]).encode()
    )
    dockerfile = _dockerfile()
    recipe = _recipe_hash(rootfs_recipe.encode(), dockerfile.encode(), HOST_CA_BUNDLE.read_bytes())
    client = daemon.client()
    try:
        if _label_of(client, BASE_IMAGE) == recipe:
            return BASE_IMAGE
        with file_lock(DOCKER_CACHE / "base-image.lock", "Python base image", progress):
            if _label_of(client, BASE_IMAGE) == recipe:
                return BASE_IMAGE
            began = time.monotonic()
            progress(f"building {BASE_IMAGE} in {daemon.data_root}")
            if _label_of(client, ROOTFS_IMAGE) != rootfs_recipe:
                rootfs = ensure_rootfs(progress)
                step = time.monotonic()
                _import_rootfs(daemon, rootfs, rootfs_recipe)
                progress(f"docker import of {rootfs} done in {time.monotonic() - step:.1f} s")
            step = time.monotonic()
            _build_base(client, dockerfile, recipe)
            progress(f"docker build of {BASE_IMAGE} done in {time.monotonic() - step:.1f} s")
            version = client.containers.run(
                BASE_IMAGE,
                [
                    "python",
                    "-c",
                    "import pip, ssl, sys; print(sys.version.split()[0], pip.__version__)",
                ],
                network_mode="none",
                remove=True,
            )
            progress(
                f"{BASE_IMAGE} ready in {time.monotonic() - began:.1f} s "
                f"(python, pip: {version.decode().strip()})"
            )
            return BASE_IMAGE
    finally:
        client.close()


def _python3_only_dockerfile(base: str) -> str:
    return (
        f"FROM {base}\n"
        # Debian's own python3 package: no `python` command (python-is-python3 adds it) ...
        "RUN dpkg --purge python-is-python3 && ! command -v python\n"
        # ... and a pip that refuses system-wide installs (PEP 668). An ENV cannot be unset:
        # 0 switches the base image's PIP_BREAK_SYSTEM_PACKAGES=1 off again.
        "ENV PIP_BREAK_SYSTEM_PACKAGES=0\n"
        'CMD ["python3"]\n'
    )


def python3_only_image(daemon: DockerDaemon, progress: Progress = print_progress) -> str:
    """``prefect-storage-test/python:bookworm-python3-only``: the base image as Debian ships
    its Python, ``/usr/bin/python3`` only (no ``python`` on PATH) and pip refusing system-wide
    installs (PEP 668). Built FROM ``python_base_image`` offline in ~2 s, kept like it and
    rebuilt when that image changes."""
    base = python_base_image(daemon, progress)
    client = daemon.client()
    try:
        dockerfile = _python3_only_dockerfile(base)
        recipe = _recipe_hash(client.images.get(base).id.encode(), dockerfile.encode())
        if _label_of(client, PYTHON3_ONLY_IMAGE) != recipe:
            with tempfile.TemporaryDirectory(prefix="prefect-storage-python3-only-") as context:
                (Path(context) / "Dockerfile").write_text(dockerfile)
                build_image(
                    client,
                    context,
                    PYTHON3_ONLY_IMAGE,
                    labels={RECIPE_LABEL: recipe},
                    network_mode="none",
                )
            progress(f"built {PYTHON3_ONLY_IMAGE}")
        return PYTHON3_ONLY_IMAGE
    finally:
        client.close()


def _import_rootfs(daemon: DockerDaemon, rootfs: Path, recipe: str) -> None:
    docker_cli = shutil.which("docker", path=_sbin_path())
    if docker_cli is None:
        raise ServerNotInstalled("the docker client is not installed (apt-get install docker.io)")
    tar_command = ["tar", "-C", str(rootfs), "--numeric-owner", "-c"]
    tar_command += [f"--exclude={pattern}" for pattern in TAR_EXCLUDES] + ["."]
    import_command = [docker_cli, "-H", daemon.host, "import"]
    for change in [*IMPORT_CHANGES, f"LABEL {RECIPE_LABEL}={recipe}"]:
        import_command += ["--change", change]
    import_command += ["-", ROOTFS_IMAGE]
    with tempfile.TemporaryDirectory(prefix="prefect-storage-import-") as scratch:
        env = {**os.environ, "DOCKER_CONFIG": scratch}  # not the user's ~/.docker
        tar = subprocess.Popen(tar_command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            result = subprocess.run(
                import_command, stdin=tar.stdout, capture_output=True, env=env, check=False
            )
        finally:
            tar.stdout.close()
            tar_err = tar.stderr.read() if tar.stderr else b""
            tar.wait()
    if tar.returncode != 0 or result.returncode != 0:
        raise ServerUnavailable(
            f"importing {rootfs} failed: tar exit {tar.returncode} "
            f"({tar_err.decode(errors='replace').strip()[-500:]}), docker import exit "
            f"{result.returncode} ({result.stderr.decode(errors='replace').strip()[-500:]})"
        )


def _build_base(client: Any, dockerfile: str, recipe: str) -> None:
    with tempfile.TemporaryDirectory(prefix="prefect-storage-base-image-") as context:
        shutil.copyfile(HOST_CA_BUNDLE, Path(context) / "ca-certificates.crt")
        (Path(context) / "Dockerfile").write_text(dockerfile)
        build_image(client, context, BASE_IMAGE, labels={RECIPE_LABEL: recipe})


def build_image(client: Any, context: str | Path, tag: str, **options: Any) -> list[str]:
    """``docker build`` with the low-level API, raising ``RuntimeError`` with the build output
    when a step fails; returns the output lines. ``options`` go to ``APIClient.build`` (e.g.
    ``network_mode="host"`` for a ``RUN pip install``, ``buildargs``, ``labels``)."""
    lines: list[str] = []
    for chunk in client.api.build(
        path=str(context), tag=tag, rm=True, forcerm=True, decode=True, **options
    ):
        if "stream" in chunk:
            lines.extend(chunk["stream"].rstrip("\n").splitlines())
        if "error" in chunk:
            output = "\n".join(lines[-40:])
            raise RuntimeError(f"docker build of {tag} failed: {chunk['error']}\n{output}")
    return lines


# -- this package as a wheel -------------------------------------------------------------------
SOURCE_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")


def build_wheel(repo_root: Path, out_dir: Path) -> Path:
    """Build this package's wheel into ``out_dir``; returns its path.

    Runs ``python -m pip wheel --no-deps -w OUT SOURCE`` on a copy of the packaging files and
    ``prefect_storage/`` (a build in the checkout would write ``build/`` and ``*.egg-info``
    there, racing with other sessions and editors).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prefect-storage-wheel-") as scratch:
        source = Path(scratch) / "src"
        source.mkdir()
        for name in SOURCE_FILES:
            if (repo_root / name).is_file():
                shutil.copy2(repo_root / name, source / name)
        shutil.copytree(
            repo_root / "prefect_storage",
            source / "prefect_storage",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
        )
        built = Path(scratch) / "wheel"
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
        command += ["--disable-pip-version-check", "-w", str(built), str(source.resolve())]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(built.glob("*.whl")) if built.is_dir() else []
        if result.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(
                f"building the wheel failed (exit {result.returncode}, {' '.join(command)}):\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
        target = out_dir / wheels[0].name
        shutil.move(str(wheels[0]), target)
    return target


# -- command line: warm the caches -------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m tests.servers.docker rootfs``: only the debootstrap tree (no daemon);
    ``python -m tests.servers.docker warm``: start a daemon, build the base image, stop."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["rootfs"]:
        ensure_rootfs()
        return 0
    if args == ["warm"]:
        began = time.monotonic()
        daemon = DockerDaemon().start()
        try:
            print_progress(f"dockerd (slot {daemon.slot}) ready in {daemon.startup_seconds:.1f} s")
            python_base_image(daemon)
        finally:
            daemon.stop()
        print_progress(f"warm-up done in {time.monotonic() - began:.1f} s")
        return 0
    print("usage: python -m tests.servers.docker rootfs|warm", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
