"""Old home of the in-image health check: every Dockerfile Docker storage writes runs
``python -m prefect_storage.healthcheck``, so this module still runs it."""

import sys

from .backends.docker.healthcheck import FAILED, main

__all__ = ["FAILED", "main"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
