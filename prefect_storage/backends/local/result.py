"""``LocalResult``: task results as files under a directory (default ``<home>/results``)."""

from __future__ import annotations

import os
from typing import Any

from ...config import home_dir
from ...keys import utc_timestamp_slug
from ..result import Result
from .transport import LocalFiles


class LocalResult(Result):
    """Results stored as files in ``dir``.

    A ``dir`` of ``None``, or one inside the prefect-storage home, means ``<home>/results``:
    the default ``Local`` storage (``<home>/flows``) therefore pairs with ``<home>/results``.
    """

    def __init__(self, dir: str | None = None, validate_dir: bool = True, **kwargs: Any) -> None:
        home = str(home_dir())
        if dir is None or _is_within(home, str(dir)):
            dir = os.path.join(home, "results")
        if validate_dir:
            dir = os.path.abspath(os.path.expanduser(dir))
            os.makedirs(dir, exist_ok=True)
        self.dir = dir
        super().__init__(**kwargs)

    @property
    def default_location(self) -> str:
        return os.path.join(self.dir, "prefect-result-" + utc_timestamp_slug())

    def _make_transport(self) -> LocalFiles:
        return LocalFiles()

    def _locate(self, location: str) -> str:
        return os.path.join(self.dir, location)  # an absolute location wins the join


def _is_within(parent: str, child: str) -> bool:
    try:
        parent = os.path.abspath(parent)
        return os.path.commonpath([parent, os.path.abspath(os.path.expanduser(child))]) == parent
    except ValueError:  # different Windows drives
        return False
