"""Names for stored flows: slugs and the default ``<flow>/<timestamp>`` keys."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime, timezone

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by ``-``: ``"My Flow!"`` -> ``"my-flow"``.

    A name with no ASCII letters or digits (``"!!!"``, ``"流程"``) gets a short digest
    instead of an empty slug, so its keys stay valid and distinct.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NON_ALNUM.sub("-", ascii_text.lower()).strip("-")
    return slug or "flow-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def utc_timestamp_slug(now: datetime | None = None) -> str:
    """Slug of the current UTC ISO time, e.g. ``2026-11-22t01-28-28-918957-00-00``."""
    return slugify((now or datetime.now(timezone.utc)).isoformat())


def timestamp_key(flow_name: str) -> str:
    """The default location of a flow: ``<slug(name)>/<slug(UTC ISO timestamp)>``."""
    return f"{slugify(flow_name)}/{utc_timestamp_slug()}"
