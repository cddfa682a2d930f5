"""Train the ``faces`` feature extractor (hair and eye colour) and write the weights gankit ships.

Trains ``gankit.metrics.attributes.FacesNet`` on the embedded ``faces`` set minus a random
held-out tenth, with light augmentation (horizontal flips, shifts of up to 2 pixels and a
little pixel noise, so that slightly imperfect generated faces still read), reports the
held-out accuracy of each attribute and writes ``src/gankit/weights/faces.safetensors`` plus
``faces.json`` (sha256, held-out accuracies, settings). Everything is seeded:

    python scripts/train_attribute_classifier.py [--epochs 3] [--seed 0] [--out src/gankit/weights]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from classifier_training import WEIGHTS, fit, seeded_generator, write_weights
from gankit.data import load_dataset
from gankit.metrics.attributes import ATTRIBUTES, FacesNet
from gankit.metrics.features import split_by_attribute

HELD_OUT_FRACTION = 0.1
MAX_SHIFT = 2
NOISE = 0.05


def split(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """(train indices, held-out indices) from one seeded permutation."""
    order = torch.randperm(n, generator=g)
    held = int(n * HELD_OUT_FRACTION)
    return order[held:], order[:held]


def augment(x: Tensor, g: torch.Generator) -> Tensor:
    """One random flip and shift for the batch (the faces vary in position), plus pixel noise."""
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(3)
    dy, dx = (torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=g)).tolist()
    # Replicate padding: a shifted face keeps its background colour at the border.
    padded = F.pad(x, (MAX_SHIFT,) * 4, mode="replicate")
    top, left = MAX_SHIFT + dy, MAX_SHIFT + dx
    x = padded[..., top:top + x.shape[2], left:left + x.shape[3]]
    return x + NOISE * torch.randn(x.shape, generator=g)


def loss_of(net: FacesNet, x: Tensor, y: Tensor) -> Tensor:
    logits = split_by_attribute(net(x)[1], ATTRIBUTES).values()
    return sum(F.cross_entropy(scores, y[:, i], label_smoothing=0.05) for i, scores in enumerate(logits))


@torch.no_grad()
def accuracies(net: FacesNet, x: Tensor, y: Tensor) -> dict[str, float]:
    net.eval()
    logits = split_by_attribute(torch.cat([net(x[i:i + 1000])[1] for i in range(0, len(x), 1000)]), ATTRIBUTES)
    return {name: float((scores.argmax(1) == y[:, i]).float().mean())
            for i, (name, scores) in enumerate(logits.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()

    g = seeded_generator(args.seed)
    data = load_dataset("faces")
    x, y = data.samples, data.labels
    train_idx, held_idx = split(len(x), g)
    net = FacesNet()
    start = time.perf_counter()
    fit(net, x[train_idx], y[train_idx], args.epochs, g, loss_of, augment)
    held_out = accuracies(net, x[held_idx], y[held_idx])
    print(f"held-out accuracy {held_out} on {len(held_idx)} faces; trained in {time.perf_counter() - start:.0f} s")

    write_weights(args.out, "faces", net, {
        "held_out_accuracy": {k: round(v, 4) for k, v in held_out.items()}, "held_out": len(held_idx),
        "train": len(train_idx), "data": f"faces (embedded, {len(x):,} faces)", "epochs": args.epochs,
        "seed": args.seed,
    })


if __name__ == "__main__":
    main()
