"""The layers of ``prefect_storage`` point one way (ARCHITECTURE.md), checked on the source.

cli -> agents -> registry -> backends -> core. Every import counts, including those inside
functions (they run at some point); only ``if TYPE_CHECKING:`` blocks are skipped.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "prefect_storage"

LAYERS = ("core", "backends", "registry", "agents", "cli")
"""Lowest first: a module may import its own layer and the layers before it."""

BACKEND_MODULES = ("backends", "storage", "results", "healthcheck")
"""Top-level names under ``prefect_storage`` that make up the backends layer."""

ALLOWED_UPWARD = {
    ("prefect_storage.engine.flow", "prefect_storage.registry.registration"),
    ("prefect_storage.engine.flow", "prefect_storage.registry"),  # its package, run first
}
"""``Flow.register`` is the user's door to the registry: the one import that points up."""


def layer(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in BACKEND_MODULES:
        return "backends"
    return top if top in ("registry", "agents", "cli") else "core"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except what sits under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The ``prefect_storage`` modules ``path`` imports (``from x import name`` counts
    ``x.name`` when that is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    # Importing a module runs its parent packages' ``__init__`` first: they count too.
    found |= {".".join(m.split(".")[:i]) for m in found for i in range(2, m.count(".") + 1)}
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


GRAPH = import_graph()


def test_the_graph_sees_the_package() -> None:
    # A walk that found nothing would make every test below pass.
    assert "prefect_storage.backends.local.storage" in GRAPH
    assert "prefect_storage.backends.base" in GRAPH["prefect_storage.backends.local.storage"]


def test_layers_point_down() -> None:
    upward = sorted(
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if LAYERS.index(layer(target)) > LAYERS.index(layer(module))
        and (module, target) not in ALLOWED_UPWARD
    )
    assert upward == []


def test_no_backend_imports_agents_registry_or_cli() -> None:
    # The same rule as above, said the way the issue says it, for the backends alone.
    reached = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if layer(module) == "backends"
        for target in targets
        if layer(target) in ("registry", "agents", "cli")
    )
    assert reached == []


def test_the_envelope_imports_no_backend() -> None:
    assert not {t for t in GRAPH["prefect_storage.envelope"] if layer(t) != "core"}
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, prefect_storage.serialization\n"
            "print(' '.join(m for m in sys.modules if m.startswith('prefect_storage.')))",
        ],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "prefect_storage.envelope" in loaded
    assert [m for m in loaded if layer(m) != "core"] == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_but_flow_register() -> None:
    graph = {m: set(t) for m, t in GRAPH.items()}
    for module, target in ALLOWED_UPWARD:
        graph[module].discard(target)
    # A package importing its own submodules is no cycle: Python finishes them first.
    for module, targets in graph.items():
        targets -= {t for t in targets if module.startswith(t + ".")}
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_backend_table_names_the_public_classes() -> None:
    import prefect_storage.storage as storage
    from prefect_storage.backends import BACKEND_PATHS, BACKENDS, backend_class

    for kind, path in BACKEND_PATHS.items():
        cls = backend_class(kind)
        assert cls.__name__ == kind and BACKENDS[kind] is cls
        assert getattr(storage, kind) is cls and kind in storage.__all__
        assert path.partition(":")[0].split(".")[:2] == ["prefect_storage", "backends"]
    assert sorted(BACKENDS) == sorted(BACKEND_PATHS)


@pytest.mark.parametrize("facade", ["storage", "results"])
def test_the_facades_type_hints_match_their_tables(facade: str) -> None:
    # Type checkers read the façade's TYPE_CHECKING imports; the runtime reads its table.
    import importlib

    module = importlib.import_module(f"prefect_storage.{facade}")
    tree = ast.parse((PACKAGE / facade / "__init__.py").read_text())
    hinted = {
        alias.name: f"prefect_storage.{node.module}:{alias.name}"
        for block in tree.body
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert hinted == module._PATHS
    for name in module.__all__:
        assert getattr(module, name) is not None


OLD_PATHS = {
    "prefect_storage.storage.azure": "Azure",
    "prefect_storage.storage.bitbucket": "Bitbucket",
    "prefect_storage.storage.codecommit": "CodeCommit",
    "prefect_storage.storage.docker": "Docker",
    "prefect_storage.storage.gcs": "GCS",
    "prefect_storage.storage.git": "Git",
    "prefect_storage.storage.github": "GitHub",
    "prefect_storage.storage.gitlab": "GitLab",
    "prefect_storage.storage.local": "Local",
    "prefect_storage.storage.module": "Module",
    "prefect_storage.storage.s3": "S3",
    "prefect_storage.storage.webhook": "Webhook",
    "prefect_storage.storage.base": "Storage",
    "prefect_storage.results.azure": "AzureResult",
    "prefect_storage.results.gcs": "GCSResult",
    "prefect_storage.results.local": "LocalResult",
    "prefect_storage.results.s3": "S3Result",
    "prefect_storage.results.base": "Result",
}
"""Module paths that flow pickles registered before the backends moved still name."""


@pytest.mark.parametrize(("path", "name"), sorted(OLD_PATHS.items()))
def test_old_pickle_paths_resolve(path: str, name: str) -> None:
    import importlib

    import prefect_storage.results as results
    import prefect_storage.storage as storage

    public = getattr(storage, name, None) or getattr(results, name)
    assert getattr(importlib.import_module(path), name) is public


@pytest.mark.parametrize(
    "kind", sorted(__import__("prefect_storage.backends").backends.BACKEND_PATHS)
)
def test_each_backend_imports_first_in_a_fresh_process(kind: str) -> None:
    # A payload is often the first thing a run process loads: no backend may need another
    # module imported before it (that is how an import circle shows itself).
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from prefect_storage.backends import backend_class as b; b({kind!r})",
        ],
        cwd=PACKAGE.parent,
        check=True,
        capture_output=True,
    )
