"""Sample grids from fixed inputs, so grids of successive steps are comparable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import save_image

from gankit.data.base import DataInfo
from gankit.models.base import Generator


@dataclass
class PreviewInputs:
    z: Tensor
    labels: Tensor | None
    columns: int


def preview_inputs(generator: Generator, info: DataInfo, seed: int, device: torch.device) -> PreviewInputs:
    """Fixed latents and labels: one row per class of the first attribute; with two or more
    attributes, rows are the first attribute's values and columns the second's."""
    g = torch.Generator(device=device).manual_seed(seed)
    if not info.attributes:
        rows, columns, labels = 10, 10, None
    elif len(info.attributes) == 1:
        rows, columns = info.num_classes[0], 10
        labels = torch.arange(rows, device=device).repeat_interleave(columns).unsqueeze(1)
    else:
        rows, columns = info.num_classes[0], info.num_classes[1]
        first = torch.arange(rows, device=device).repeat_interleave(columns)
        second = torch.arange(columns, device=device).repeat(rows)
        rest = [torch.randint(k, (rows * columns,), generator=g, device=device) for k in info.num_classes[2:]]
        labels = torch.stack([first, second, *rest], dim=1)
    z = generator.sample_latent(rows * columns, g, device)
    return PreviewInputs(z, labels, columns)


@torch.inference_mode()
def save_preview(generator: Generator, inputs: PreviewInputs, path: Path) -> None:
    images = generator(inputs.z, inputs.labels).float()
    if images.dim() != 4:
        return  # vector data has its own pictures
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    save_image(images, tmp, nrow=inputs.columns, normalize=True, value_range=(-1, 1), padding=2)
    tmp.replace(path)
