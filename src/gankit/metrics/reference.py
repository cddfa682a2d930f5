"""Reference statistics of the real data, computed once per dataset and extractor and cached.

The features of the real data do not change between evaluations, so their mean and covariance
(for FID) and a sample of them (for KID and precision/recall) are written to
``$GANKIT_CACHE/reference/<key>.safetensors`` (default ``~/.cache/gankit/reference``). The key
hashes everything that affects them, as StyleGAN's metric cache does: the dataset spec, a
fingerprint of the samples, the extractor's fingerprint and the limits below. Safetensors holds
only arrays, so reading a cache file runs no code; an unreadable file is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from gankit.atomic import atomic_write_bytes
from gankit.data.base import TensorData
from gankit.cache import cache_dir
from gankit.errors import GankitError
from gankit.metrics.features import FeatureExtractor
from gankit.metrics.scores import mean_and_covariance

FORMAT = "gankit-reference/1"
MAX_REAL = 50_000  # real samples behind the mean and covariance (FID50k's convention)
MAX_SAMPLE = 10_000  # real features kept for KID and precision/recall
FINGERPRINT_ROWS = 4096  # rows projected at a time to recognise the data


@dataclass
class ReferenceStats:
    mean: np.ndarray  # (F,) float64
    cov: np.ndarray  # (F, F) float64
    features: torch.Tensor  # (M, F) float32, a seeded sample of the real features
    count: int  # real samples behind mean and cov


def reference_dir() -> Path:
    return cache_dir("reference")


def data_fingerprint(real: TensorData) -> str:
    """An identity of the samples: their shape and two random projections of every row, so that a
    change to any pixel of any sample (a folder whose images were replaced) gives another key.
    Projecting reads the data at memory speed; hashing every byte took seconds on large sets."""
    shape = tuple(real.stored.shape)
    probe = torch.randn(math.prod(shape[1:]), 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # On the CPU in float64, then rounded: a GPU's float32 sums (or another order of summing) moved
    # about 1% of the rounded values, and so the key, between training and `gankit eval`.
    projections = torch.cat([real.take(slice(i, i + FINGERPRINT_ROWS)).flatten(1).cpu().double() @ probe
                             for i in range(0, len(real), FINGERPRINT_ROWS)]) if len(real) else probe[:0]
    digest = hashlib.sha256(repr(shape).encode())
    digest.update(projections.numpy().round(3).tobytes())
    return digest.hexdigest()[:16]


def reference_key(real: TensorData, extractor: FeatureExtractor) -> str:
    identity = [FORMAT, real.name, data_fingerprint(real), extractor.name, extractor.fingerprint,
                MAX_REAL, MAX_SAMPLE]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]


def seeded_subset(n: int, limit: int, seed: int = 0) -> torch.Tensor:
    """Indices of at most ``limit`` of ``n`` items, the same on every call."""
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def compute_reference(real: TensorData, extractor: FeatureExtractor) -> ReferenceStats:
    samples = real.take(seeded_subset(len(real), MAX_REAL).to(real.stored.device))
    features = extractor.features(samples)
    mean, cov = mean_and_covariance(features)
    return ReferenceStats(mean, cov, features[seeded_subset(len(features), MAX_SAMPLE, seed=1)], len(samples))


def read_reference(path: Path) -> ReferenceStats | None:
    """The cached statistics, or None when the file is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        t = load_file(path)
        return ReferenceStats(t["mean"].numpy(), t["cov"].numpy(), t["features"], int(t["count"]))
    except Exception:  # a damaged file: safetensors, torch and a missing key raise different types
        return None


def write_reference(path: Path, stats: ReferenceStats, real: TensorData, extractor: FeatureExtractor) -> None:
    tensors = {"mean": torch.from_numpy(stats.mean), "cov": torch.from_numpy(stats.cov),
               "features": stats.features.contiguous(), "count": torch.tensor(stats.count)}
    metadata = {"format": FORMAT, "dataset": real.name, "extractor": f"{extractor.name}@{extractor.fingerprint}"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, save(tensors, metadata))
    except (OSError, GankitError):
        raise GankitError(f"Cannot write the reference statistics to {path.parent}; set GANKIT_CACHE "
                          "to a writable folder.") from None


def reference_stats(real: TensorData, extractor: FeatureExtractor, cache: Path | None = None) -> ReferenceStats:
    """The real data's statistics under ``extractor``, from the cache when it holds them."""
    path = (cache or reference_dir()) / f"{reference_key(real, extractor)}.safetensors"
    stats = read_reference(path)
    if stats is None:
        stats = compute_reference(real, extractor)
        write_reference(path, stats, real, extractor)
    return stats
