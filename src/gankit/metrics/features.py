"""Feature extractors: the networks whose features the metrics compare, registered by name.

An extractor has a ``name``, a ``fingerprint`` (a hash of its weights, so that cached reference
statistics belong to exactly one network), ``features(images) -> (N, F)`` and, when it is a
classifier, ``logits(images) -> (N, K)`` plus ``attributes``, the data attributes whose classes
its logits are, concatenated (none for Inception, whose ImageNet classes are no attribute).
``digits`` and ``inception`` register themselves here; a family can add its own (a faces
attribute classifier, say) with ``@register_extractor("name")``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from gankit.data.base import Attribute, DataInfo
from gankit.data.faces import is_faces_spec
from gankit.data.mnist import is_mnist_spec
from gankit.errors import GankitError

FINGERPRINT_CHARS = 16


def fingerprint_bytes(data: bytes) -> str:
    """A short identity of a network's weights file."""
    return hashlib.sha256(data).hexdigest()[:FINGERPRINT_CHARS]


def split_by_attribute(logits: Tensor, attributes: tuple[Attribute, ...]) -> dict[str, Tensor]:
    """Logits of several attributes side by side (N, sum of their classes) -> {attribute name: (N, k)}."""
    parts = logits.split([a.num_classes for a in attributes], dim=1) if attributes else ()
    return {a.name: part for a, part in zip(attributes, parts)}


class FeatureExtractor:
    """A frozen network whose forward returns ``(features, logits or None)`` for a batch.

    Subclasses say which samples they read (``check_shape``) and how images in [-1, 1] become
    the network's input (``prepare``); batching, the device and inference mode live here once.
    """

    def __init__(self, name: str, network: nn.Module, fingerprint: str,
                 attributes: tuple[Attribute, ...] = (), batch_size: int = 500):
        # The attributes it classifies, in the order their logits are concatenated; none for a
        # network whose logits are not about the data's labels (Inception's ImageNet classes).
        self.name, self.fingerprint, self.attributes = name, fingerprint, attributes
        self.network = network.eval().requires_grad_(False)
        self.batch_size = batch_size

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: str | torch.device) -> "FeatureExtractor":
        self.network.to(device)
        return self

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise GankitError when samples of this shape (without the batch) cannot be read."""

    def prepare(self, images: Tensor) -> Tensor:
        """Images in [-1, 1], already on the device, as the network's input."""
        return images

    @torch.inference_mode()
    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Features (N, F) and logits (N, K) or None, float32 on the CPU, in one pass."""
        self.check_shape(tuple(images.shape[1:]))
        features, logits = [], []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size].to(self.device, torch.float32)
            f, scores = self.network(self.prepare(batch))
            features.append(f.float().cpu())
            if scores is not None:
                logits.append(scores.float().cpu())
        return torch.cat(features), torch.cat(logits) if logits else None

    def split_logits(self, logits: Tensor) -> dict[str, Tensor]:
        """Concatenated logits -> {attribute name: (N, k) logits}; none for a network whose logits
        are about no attribute of the data (Inception's ImageNet classes)."""
        return split_by_attribute(logits, self.attributes)

    def features(self, images: Tensor) -> Tensor:
        return self.features_and_logits(images)[0]

    def logits(self, images: Tensor) -> Tensor:
        logits = self.features_and_logits(images)[1]
        if logits is None:
            raise GankitError(f"The {self.name} features do not classify; use an extractor with classes, e.g. digits.")
        return logits


Loader = Callable[[Path | None], FeatureExtractor]
_EXTRACTORS: dict[str, Loader] = {}


def register_extractor(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make ``loader(weights_path or None)`` available as extractor ``name``."""

    def add(loader: Loader) -> Loader:
        _EXTRACTORS[name] = loader
        return loader

    return add


def extractor_names() -> list[str]:
    return sorted(_EXTRACTORS)


def load_extractor(name: str, weights: str | Path | None = None,
                   device: str | torch.device = "cpu") -> FeatureExtractor:
    """The extractor ``name`` on ``device``; ``weights`` replaces its default weights file."""
    loader = _EXTRACTORS.get(name)
    if loader is None:
        raise GankitError(f"Unknown feature extractor {name!r}; choose one of {', '.join(extractor_names())}.")
    return loader(Path(weights).expanduser() if weights else None).to(device)


def default_extractor(info: DataInfo, data_spec: str) -> str:
    """The feature space gankit scores data of this kind in: its own digits classifier for MNIST
    (the embedded digits or an MNIST file), the faces attribute classifier for the embedded faces,
    else Inception. Other 28x28 grayscale data (faces made grey, a folder of letters) go to
    Inception too: the digits classifier would file them all under one digit."""
    if tuple(info.shape) == (1, 28, 28) and is_mnist_spec(data_spec):
        return "digits"
    if "faces" in _EXTRACTORS and is_faces_spec(data_spec) and info.shape[0] == 3:  # an RGB classifier
        return "faces"
    return "inception"
