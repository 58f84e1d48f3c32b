"""Checks run inside a freshly built Docker image (``"$PY" -m prefect_storage.healthcheck``,
with the image's ``python3``, else ``python``; that module runs :func:`main` here).

Arguments: a JSON list of flow locations in the image, a JSON object with the registering
``python`` version and ``stored_as_script``. A failing check prints ``HEALTHCHECK FAILED:``
with its reason and exits 1, which fails the ``docker build``.
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...engine.flow import Flow

FAILED = "HEALTHCHECK FAILED:"


def main(argv: list[str]) -> int:
    locations, info = json.loads(argv[0]), json.loads(argv[1])
    print("Beginning health checks...")
    print(f"Python: {sys.executable} {platform.python_version()}")
    built = tuple(info["python"].split(".")[:2])
    running = tuple(platform.python_version().split(".")[:2])
    if built != running:
        warnings.warn(
            f"The image runs Python {'.'.join(running)} but the flow was built with "
            f"{'.'.join(built)}; pickled flows may fail to load.",
            UserWarning,
            stacklevel=1,
        )
    else:
        print("System Version check: OK")
    flows = []
    try:
        for location in locations:
            flows.append(_load(location, info["stored_as_script"]))
    except Exception as exc:  # the reason is the check's whole output
        print(f"{FAILED} flow at {location} does not load: {type(exc).__name__}: {exc}")
        return 1
    print("Flow load check: OK")
    from ..base import warn_missing_results

    warn_missing_results(flows)
    print("Result check: OK")
    print("All health checks passed.")
    return 0


def _load(location: str, stored_as_script: bool) -> Flow:
    from ...envelope import flow_from_bytes_pickle
    from ...loading import extract_flow_from_file

    if stored_as_script:
        return extract_flow_from_file(file_path=location)
    with open(location, "rb") as file:
        return flow_from_bytes_pickle(file.read(), strict=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
