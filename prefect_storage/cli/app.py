"""The ``prefect-storage`` command group and what its commands share; each command module
adds its commands to :func:`main` (and imports nothing else from the package's ``cli``)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..exceptions import FlowStorageError


class _Main(click.Group):
    """Turns our typed errors into one-line messages and a non-zero exit; anything else is a
    bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlowStorageError as exc:
            raise click.ClickException(one_line(exc)) from None


def one_line(exc: BaseException) -> str:
    """An error's message on one line (click prints it after ``Error:``)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or repr(exc)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="prefect-storage")
def main() -> None:
    """Store flow definitions durably and load exactly those flows back at run time."""


def parse_parameters(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are JSON when they parse (``n=3`` is the number 3)."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-p")
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    return parameters


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, default=str, indent=2))


__all__ = ["echo_json", "main", "one_line", "parse_parameters"]
