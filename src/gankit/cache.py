"""Where gankit keeps what it can recompute: ``$GANKIT_CACHE`` or ``~/.cache/gankit``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """The cache folder for one kind of data (``images``, ``reference``, ``mnist``)."""
    return Path(os.environ.get("GANKIT_CACHE") or "~/.cache/gankit").expanduser() / kind
