"""Datasets: every source returns a ``TensorData`` through one registry."""

from gankit.data import mnist, toy  # noqa: F401  (register their sources)
from gankit.data import anime, celeba, faces, folder, photos  # noqa: F401  (register their sources)
from gankit.data.base import Attribute, DataInfo, EpochBatches, TensorData
from gankit.data.registry import load_dataset, sources

__all__ = ["Attribute", "DataInfo", "EpochBatches", "TensorData", "load_dataset", "sources"]
