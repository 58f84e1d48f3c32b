"""Rigs: one entry in :data:`RIGS` per backend configuration the contract suite runs against.

A rig builds storages for the shared :data:`FLOW_SCRIPT` and *declares* what its backend
supports (capability flags, and hooks that are ``None`` where the backend cannot do it).
The contract tests read those declarations; they never look at a storage's class.

Adding a backend: one module here with a factory ``(RigContext) -> Rig`` and its
``RIGS`` list of :class:`RigSpec`; :data:`RIGS` collects every module's. A factory that
needs a server asks for its fixture with ``ctx.fixture(name)``, so rigs that do not need it
never start it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from prefect_storage import Flow
from prefect_storage.loading import extract_flow_from_file
from prefect_storage.results import Result
from prefect_storage.storage import Storage

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
    required_fields: frozenset[str] = frozenset()
    """Payload fields without which ``deserialize`` must refuse the payload, naming them."""

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
def flow_loader(script: Path) -> Callable[[str], Flow]:
    """Flows as ``register`` would load them from the script (pickled by value)."""
    cache: dict[str, Flow] = {}

    def load(name: str) -> Flow:
        if name not in cache:
            cache[name] = extract_flow_from_file(file_path=script, flow_name=name)
        return cache[name]

    return load


def read_file(storage: Storage, location: str) -> bytes:
    return Path(location).read_bytes()


def write_file(storage: Storage, location: str, data: bytes) -> None:
    Path(location).write_bytes(data)


def remove_file(storage: Storage, location: str) -> None:
    os.remove(location)


SCRIPT_KEY = "flows/contract_flows.py"
FIXED_KEY = "fixed/one.flow"


def script_kwargs(script: Path, key_argument: str, **extra: Any) -> dict[str, Any]:
    return {
        "stored_as_script": True,
        "local_script_path": str(script),
        key_argument: SCRIPT_KEY,
        **extra,
    }


def rebuilt(make: Callable[..., Storage], storage: Storage, **kwargs: Any) -> Storage:
    """A storage like ``storage`` (same flows and locations) made by ``make(**kwargs)``."""
    twin = make(**kwargs)
    twin.flows = dict(storage.flows)
    return twin


def _collect() -> list[RigSpec]:
    """Every rig module's ``RIGS``, in module-name order (``_``-prefixed ones are helpers)."""
    import importlib
    import pkgutil

    specs: list[RigSpec] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            specs += importlib.import_module(f"{__name__}.{module.name}").RIGS
    return specs


RIGS: list[RigSpec] = _collect()
"""Every backend configuration the contract suite runs against."""
