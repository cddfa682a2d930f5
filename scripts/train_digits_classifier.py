"""Train the ``digits`` feature extractor and write the weights that ship with gankit.

Trains ``gankit.metrics.digits.DigitsNet`` on the 5,000 embedded MNIST digits minus a
held-out set of 100 per class, with light augmentation (small random rotations, scalings and
shifts), reports the held-out accuracy and writes ``src/gankit/weights/digits.safetensors``
plus ``digits.json`` (sha256, held-out accuracy, settings). Everything is seeded:

    python scripts/train_digits_classifier.py [--epochs 20] [--seed 0] [--out src/gankit/weights]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from classifier_training import WEIGHTS, fit, seeded_generator, write_weights
from gankit.data import load_dataset
from gankit.metrics.digits import DigitsNet

HELD_OUT_PER_CLASS = 100


def stratified_split(labels: Tensor, per_class: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """(train indices, held-out indices): ``per_class`` random samples of each class held out."""
    held = []
    for c in labels.unique():
        idx = (labels == c).nonzero().squeeze(1)
        held.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    held_out = torch.cat(held)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held_out] = False
    return mask.nonzero().squeeze(1), held_out


def augment(x: Tensor, g: torch.Generator) -> Tensor:
    """Random rotation (+-12 degrees), scale (0.9-1.1) and shift (+-2 pixels), one per image."""
    n = len(x)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(12)
    scale = 0.9 + torch.rand(n, generator=g) * 0.2
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 / 14)  # grid units: 14 pixels per unit
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # The background is -1: pad with it, not with zeros (mid-grey in [-1, 1]).
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


@torch.no_grad()
def accuracy(net: DigitsNet, x: Tensor, y: Tensor) -> float:
    net.eval()
    return float((net(x)[1].argmax(1) == y).float().mean())


def digit_loss(net: DigitsNet, x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(net(x)[1], y, label_smoothing=0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()

    g = seeded_generator(args.seed)
    data = load_dataset("mnist")
    x, y = data.samples, data.labels[:, 0]
    train_idx, held_idx = stratified_split(y, HELD_OUT_PER_CLASS, g)
    net = DigitsNet()
    start = time.perf_counter()
    fit(net, x[train_idx], y[train_idx], args.epochs, g, digit_loss, augment)
    held_out = accuracy(net, x[held_idx], y[held_idx])
    print(f"held-out accuracy {held_out:.4f} on {len(held_idx)} digits; trained in {time.perf_counter() - start:.0f} s")

    write_weights(args.out, "digits", net, {
        "held_out_accuracy": round(held_out, 4), "held_out": len(held_idx), "train": len(train_idx),
        "data": "mnist (embedded, 5,000 digits)", "epochs": args.epochs, "seed": args.seed,
    })


if __name__ == "__main__":
    main()
