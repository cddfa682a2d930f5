"""The model registry: family names mapped to their classes."""

from __future__ import annotations

from gankit.errors import GankitError

_FAMILIES: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make a family available under ``cls.name``."""
    _FAMILIES[cls.name] = cls
    return cls


def families() -> list[type]:
    return sorted(_FAMILIES.values(), key=lambda c: c.name)


def get_family(name: str) -> type:
    family = _FAMILIES.get(name)
    if family is None:
        known = ", ".join(c.name for c in families())
        raise GankitError(f"Unknown model {name!r}; known models are {known} (see `gankit models`).")
    return family
