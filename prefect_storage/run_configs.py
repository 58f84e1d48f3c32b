"""Run configurations: where and how an agent runs a flow, and the labels it must carry."""

from __future__ import annotations

from typing import Any

from .exceptions import StorageConfigError

__all__ = ["DockerRun", "LocalRun", "RunConfig", "UniversalRun"]


class RunConfig:
    """Base: environment variables for the run and the labels an agent must have."""

    def __init__(self, env: dict[str, str] | None = None, labels: list[str] | None = None) -> None:
        if labels is not None and (
            isinstance(labels, str) or not all(isinstance(label, str) for label in labels)
        ):
            raise TypeError("`labels` must be a list of str")
        self.env = dict(env or {})
        self.labels: set[str] = set(labels or ())

    def __getstate__(self) -> dict[str, Any]:
        # Sorted, so a flow pickles to the same bytes under any hash seed.
        return {**self.__dict__, "labels": sorted(self.labels)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, labels=set(state["labels"]))

    def serialize(self) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        fields["labels"] = sorted(self.labels)
        return {"type": type(self).__name__, **fields}

    @staticmethod
    def deserialize(payload: dict[str, Any]) -> RunConfig:
        """The run config :meth:`serialize` described; a bad payload is a
        :class:`StorageConfigError` naming what is wrong."""
        kinds = {cls.__name__: cls for cls in (UniversalRun, LocalRun, DockerRun)}
        name = payload.get("type") if isinstance(payload, dict) else None
        kind = kinds.get(name) if isinstance(name, str) else None
        if kind is None:
            raise StorageConfigError(
                f"Unknown run config type {name!r}; known types: {', '.join(sorted(kinds))}."
            )
        fields = {key: value for key, value in payload.items() if key != "type"}
        try:
            return kind(**fields)
        except TypeError as exc:  # a field the class does not take, or of the wrong type
            raise StorageConfigError(f"Bad {name} payload: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(labels={sorted(self.labels)!r})"


class UniversalRun(RunConfig):
    """Runs on any agent whose labels cover the flow's."""


class LocalRun(RunConfig):
    """Runs as a local process, optionally in ``working_dir``."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        working_dir: str | None = None,
        labels: list[str] | None = None,
    ) -> None:
        super().__init__(env=env, labels=labels)
        self.working_dir = working_dir


class DockerRun(RunConfig):
    """Runs in a container from ``image`` (Docker storage provides its own image)."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        image: str | None = None,
        labels: list[str] | None = None,
    ) -> None:
        super().__init__(env=env, labels=labels)
        self.image = image
