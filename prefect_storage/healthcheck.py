"""Checks run inside a freshly built Docker image (``python -m prefect_storage.healthcheck``).

Arguments: a JSON list of flow locations in the image, a JSON object with the registering
``python`` version and ``stored_as_script``. A failing check prints ``HEALTHCHECK FAILED:``
with its reason and exits 1, which fails the ``docker build``.
"""

from __future__ import annotations

import json
import platform
import sys
import warnings

FAILED = "HEALTHCHECK FAILED:"


def main(argv: list[str]) -> int:
    locations, info = json.loads(argv[0]), json.loads(argv[1])
    print("Beginning health checks...")
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
    try:
        for location in locations:
            _load(location, info["stored_as_script"])
    except Exception as exc:  # the reason is the check's whole output
        print(f"{FAILED} flow at {location} does not load: {type(exc).__name__}: {exc}")
        return 1
    print("Flow load check: OK")
    print("All health checks passed.")
    return 0


def _load(location: str, stored_as_script: bool) -> None:
    from .loading import extract_flow_from_file
    from .serialization import flow_from_bytes_pickle

    if stored_as_script:
        extract_flow_from_file(file_path=location)
    else:
        with open(location, "rb") as file:
            flow_from_bytes_pickle(file.read(), strict=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
