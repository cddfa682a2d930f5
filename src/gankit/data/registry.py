"""The dataset registry: ``name`` or ``name:argument`` specs mapped to loader functions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gankit.config import DataConfig
from gankit.data.base import TensorData
from gankit.errors import GankitError


@dataclass(frozen=True)
class Source:
    name: str
    # takes the text after "name:" (or None) and the data settings (image size, channels)
    loader: Callable[[str | None, DataConfig], TensorData]
    summary: str
    usage: str
    # How much of the argument names a file or folder: "" none, "all" of it, "first" (up to a comma: options follow)
    path: str = ""
    vectors: bool = False  # samples are points, not images: commands that read images refuse it by name


_SOURCES: dict[str, Source] = {}


def register(name: str, summary: str, usage: str, path: str = "", vectors: bool = False):
    """Decorator: make ``loader(argument, options)`` available as dataset ``name[:argument]``."""

    def add(loader: Callable[[str | None, DataConfig], TensorData]):
        _SOURCES[name] = Source(name, loader, summary, usage, path, vectors)
        return loader

    return add


def absolute_spec(spec: str) -> str:
    """``spec`` with its PATH made absolute (``anime:data`` -> ``anime:/home/me/data``): a run saves
    its spec, and eval, probe and resume must find the data from any working directory."""
    name, sep, argument = spec.partition(":")
    source = _SOURCES.get(name.strip())
    if not (sep and argument and source and source.path):
        return spec
    path, comma, rest = argument.partition(",") if source.path == "first" else (argument, "", "")
    if not path.strip():
        return spec  # the loader names what is missing
    return f"{name}:{Path(path).expanduser().absolute()}{comma}{rest}"


def holds_vectors(spec: str) -> bool:
    """Whether ``spec`` names a source of points rather than images (the toy distributions)."""
    source = _SOURCES.get(spec.partition(":")[0].strip())
    return source is not None and source.vectors


def sources() -> list[Source]:
    return sorted(_SOURCES.values(), key=lambda s: s.name)


def load_dataset(spec: str, options: DataConfig | None = None) -> TensorData:
    """Load a dataset from a spec such as ``mnist`` or ``mnist:/data/mnist.npz``."""
    name, sep, argument = spec.partition(":")
    source = _SOURCES.get(name.strip())
    if source is None:
        known = ", ".join(s.name for s in sources())
        raise GankitError(f"Unknown dataset {spec!r}; known datasets are {known} (see `gankit datasets`).")
    options = options or DataConfig(spec)
    options.validate()
    return source.loader(argument if sep else None, options)
