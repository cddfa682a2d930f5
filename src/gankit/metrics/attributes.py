"""``faces``: gankit's hair- and eye-colour classifier for the face images, and their FID space.

A small CNN trained on the embedded ``faces`` set, with one head per attribute on a shared
128-d layer whose activations are the features. It measures what an ACGAN is asked for: how
often a generated face shows the requested hair and eye colour (the renderer is clean, so on
held-out real faces it is right almost always). Its logits are the heads' logits concatenated
in attribute order and ``attributes`` names them; ``attribute_logits`` splits the logits per
attribute. Images of any square size are resized to the 32x32 it was trained on. The weights
(``gankit/weights/faces.safetensors`` and ``faces.json`` with their sha256 and held-out
accuracy) come from ``scripts/train_attribute_classifier.py``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from torch import Tensor, nn

from gankit.data.anime import EYES, HAIR
from gankit.data.base import Attribute
from gankit.errors import GankitError
from gankit.metrics.digits import conv_block, fold_batchnorm, read_verified
from gankit.metrics.features import FeatureExtractor, fingerprint_bytes, register_extractor
from gankit.metrics.scores import conditional_accuracy

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "faces.safetensors"
ATTRIBUTES = (HAIR, EYES)
SIDE = 32
FEATURES = 128


class FacesNet(nn.Module):
    """3x32x32 in [-1, 1] -> (128-d features, logits of every attribute concatenated)."""

    def __init__(self, attributes: tuple[Attribute, ...] = ATTRIBUTES):
        super().__init__()
        self.body = nn.Sequential(
            conv_block(3, 32), nn.MaxPool2d(2),    # 16x16
            conv_block(32, 64), nn.MaxPool2d(2),   # 8x8
            conv_block(64, 128), nn.MaxPool2d(2),  # 4x4
            nn.Flatten(), nn.Linear(128 * 4 * 4, FEATURES), nn.ReLU(),
        )
        self.heads = nn.ModuleList(nn.Linear(FEATURES, a.num_classes) for a in attributes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(x)
        return features, torch.cat([head(features) for head in self.heads], dim=1)


class FacesExtractor(FeatureExtractor):
    def check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2]:
            raise GankitError(f"The faces features read square RGB faces, not samples of shape {shape}; "
                              "use --features inception for other images.")

    def prepare(self, images: Tensor) -> Tensor:
        if images.shape[-1] != SIDE:
            # Area averaging is how the renderer reduces its drawings, so resized faces look drawn at 32.
            mode = "area" if images.shape[-1] > SIDE else "bilinear"
            images = F.interpolate(images, size=(SIDE, SIDE), mode=mode)
        return images.contiguous(memory_format=torch.channels_last)

    def attribute_logits(self, images: Tensor) -> dict[str, Tensor]:
        """{attribute name: (N, k) logits} for images in [-1, 1]."""
        return self.split_logits(self.logits(images))


def attribute_accuracy(logits: dict[str, Tensor], labels: Tensor) -> dict[str, float]:
    """For each attribute, the fraction of samples classified as the value in its label column."""
    return {name: conditional_accuracy(labels[:, i].cpu(), scores.argmax(1).cpu(), scores.shape[1]).overall
            for i, (name, scores) in enumerate(logits.items())}


@register_extractor("faces")
def load_faces(weights: Path | None = None) -> FacesExtractor:
    raw = read_verified(weights or WEIGHTS, "scripts/train_attribute_classifier.py")
    network = FacesNet()
    network.load_state_dict(load_safetensors(raw))
    network = fold_batchnorm(network).to(memory_format=torch.channels_last)
    return FacesExtractor("faces", network, fingerprint_bytes(raw), attributes=ATTRIBUTES)
