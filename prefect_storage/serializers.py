"""Serializers turn task results into bytes and back (used by every Result)."""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Callable
from typing import Any

__all__ = ["CompressedSerializer", "JSONSerializer", "PickleSerializer", "Serializer"]


class Serializer:
    """Base class: ``serialize(value) -> bytes`` and ``deserialize(bytes) -> value``."""

    def serialize(self, value: Any) -> bytes:
        raise NotImplementedError

    def deserialize(self, value: bytes) -> Any:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PickleSerializer(Serializer):
    """cloudpickle, so results may hold lambdas and locally defined classes."""

    def serialize(self, value: Any) -> bytes:
        import cloudpickle

        return cloudpickle.dumps(value)

    def deserialize(self, value: bytes) -> Any:
        import cloudpickle

        try:
            return cloudpickle.loads(value)
        except Exception as exc:
            # Prefect 1 Core < 0.7 stored results base64-encoded; accept those too.
            try:
                return cloudpickle.loads(base64.b64decode(value, validate=True))
            except Exception:
                raise exc from None


class JSONSerializer(Serializer):
    """JSON text, for results other programs will read."""

    def serialize(self, value: Any) -> bytes:
        return json.dumps(value).encode()

    def deserialize(self, value: bytes) -> Any:
        return json.loads(value)


class CompressedSerializer(Serializer):
    """Wraps another serializer and compresses its bytes.

    Give either ``format`` (a module with ``compress``/``decompress``, e.g. ``"gzip"``,
    ``"bz2"``, ``"lzma"``, ``"zlib"``) or both ``compress`` and ``decompress`` callables.
    """

    def __init__(
        self,
        serializer: Serializer,
        format: str | None = None,
        compress: Callable[..., bytes] | None = None,
        decompress: Callable[..., bytes] | None = None,
        compress_kwargs: dict[str, Any] | None = None,
        decompress_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(serializer, Serializer):
            raise TypeError(f"`serializer` must be a Serializer, got {type(serializer).__name__}")
        if format is not None and (compress or decompress):
            raise ValueError("Pass either `format` or `compress`/`decompress`, not both.")
        if format is not None:
            try:
                module = importlib.import_module(format)
            except ImportError as exc:
                raise ImportError(
                    f"Compression format {format!r} could not be imported; common choices "
                    "are 'gzip', 'bz2', 'lzma' and 'zlib'."
                ) from exc
            compress = getattr(module, "compress", None)
            decompress = getattr(module, "decompress", None)
            if compress is None or decompress is None:
                raise ValueError(
                    f"Module {format!r} has no `compress`/`decompress` functions; "
                    "pass them directly instead."
                )
        elif compress is None or decompress is None:
            raise ValueError("Pass `format`, or both `compress` and `decompress`.")
        self.serializer = serializer
        self.format = format
        self._compress = compress
        self._decompress = decompress
        self.compress_kwargs = dict(compress_kwargs or {})
        self.decompress_kwargs = dict(decompress_kwargs or {})

    def serialize(self, value: Any) -> bytes:
        return self._compress(self.serializer.serialize(value), **self.compress_kwargs)

    def deserialize(self, value: bytes) -> Any:
        return self.serializer.deserialize(self._decompress(value, **self.decompress_kwargs))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CompressedSerializer)
            and self.serializer == other.serializer
            and self._compress == other._compress
            and self._decompress == other._decompress
            and self.compress_kwargs == other.compress_kwargs
            and self.decompress_kwargs == other.decompress_kwargs
        )

    def __hash__(self) -> int:
        return hash((type(self), self.format))

    def __repr__(self) -> str:
        return f"CompressedSerializer({self.serializer!r}, format={self.format!r})"
