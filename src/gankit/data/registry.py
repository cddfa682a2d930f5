"""The dataset registry: ``name`` or ``name:argument`` specs mapped to loader functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gankit.data.base import TensorData
from gankit.errors import GankitError


@dataclass(frozen=True)
class Source:
    name: str
    loader: Callable[[str | None], TensorData]  # takes the text after "name:", or None
    summary: str
    usage: str


_SOURCES: dict[str, Source] = {}


def register(name: str, summary: str, usage: str):
    """Decorator: make ``loader(argument)`` available as dataset ``name[:argument]``."""

    def add(loader: Callable[[str | None], TensorData]):
        _SOURCES[name] = Source(name, loader, summary, usage)
        return loader

    return add


def sources() -> list[Source]:
    return sorted(_SOURCES.values(), key=lambda s: s.name)


def load_dataset(spec: str) -> TensorData:
    """Load a dataset from a spec such as ``mnist`` or ``mnist:/data/mnist.npz``."""
    name, sep, argument = spec.partition(":")
    source = _SOURCES.get(name.strip())
    if source is None:
        known = ", ".join(s.name for s in sources())
        raise GankitError(f"Unknown dataset {spec!r}; known datasets are {known} (see `gankit datasets`).")
    return source.loader(argument if sep else None)
