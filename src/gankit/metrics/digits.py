"""``digits``: gankit's own MNIST classifier, a small CNN whose 128-d layer gives the features.

Inception was trained on photographs and reads 28x28 digits poorly; a classifier trained on
digits separates them far better, and its logits give the MNIST score and the accuracy of
conditional models (tensorflow/gan's MNIST metrics work this way). The weights ship in
``gankit/weights/digits.safetensors`` beside ``digits.json`` (their sha256 and held-out
accuracy); ``scripts/train_digits_classifier.py`` makes both.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gankit.atomic import sha256_bytes
from gankit.data.mnist import DIGIT
from gankit.errors import GankitError
from gankit.metrics.features import FeatureExtractor, fingerprint_bytes, register_extractor

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "digits.safetensors"
FEATURES = 128


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DigitsNet(nn.Module):
    """1x28x28 in [-1, 1] -> (128-d features, 10 logits)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            conv_block(1, 32), nn.MaxPool2d(2),          # 14x14
            conv_block(32, 64), nn.MaxPool2d(2),         # 7x7
            conv_block(64, 64), nn.MaxPool2d(2, ceil_mode=True),  # 4x4
            nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURES), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURES, DIGIT.num_classes))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(x)
        return features, self.head(features)


def fold_batchnorm(net: DigitsNet) -> DigitsNet:
    """The same function with each BatchNorm folded into its convolution, for inference:
    one pass less over the largest activations, a quarter faster on a CPU."""
    net.eval()
    for block in net.body:
        if isinstance(block, nn.Sequential):
            block[0], block[1] = fuse_conv_bn_eval(block[0], block[1]), nn.Identity()
    return net


class DigitsExtractor(FeatureExtractor):
    def check_shape(self, shape: tuple[int, ...]) -> None:
        if shape != (1, 28, 28):
            raise GankitError(f"The digits features read 1x28x28 digits, not samples of shape {shape}; "
                              "use --features inception for other images.")

    def prepare(self, images: Tensor) -> Tensor:
        # Channels-last convolutions and pooling run almost twice as fast on a CPU.
        return images.contiguous(memory_format=torch.channels_last)


def read_verified(weights: Path, script: str) -> bytes:
    """The weights file's bytes, checked against the sha256 in the JSON beside it; ``script``
    is the one that makes the file, named in the error messages."""
    meta_path = weights.with_suffix(".json")
    try:
        raw = weights.read_bytes()
        expected = json.loads(meta_path.read_text())["sha256"]
    except FileNotFoundError as e:
        raise GankitError(f"{e.filename} is missing; reinstall gankit or rerun {script}.") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GankitError(f"{meta_path} does not hold the weights' sha256 ({e}); reinstall gankit.") from None
    if sha256_bytes(raw) != expected:
        raise GankitError(f"{weights} does not match the sha256 in {meta_path.name}; reinstall gankit "
                          f"or rerun {script}.")
    return raw


@register_extractor("digits")
def load_digits(weights: Path | None = None) -> DigitsExtractor:
    raw = read_verified(weights or WEIGHTS, "scripts/train_digits_classifier.py")
    network = DigitsNet()
    network.load_state_dict(load_safetensors(raw))
    network = fold_batchnorm(network).to(memory_format=torch.channels_last)
    return DigitsExtractor("digits", network, fingerprint_bytes(raw), attributes=(DIGIT,))
