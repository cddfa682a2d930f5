"""Differentiable augmentation of what D sees (DiffAugment, Zhao et al. 2020).

With few training images D learns them by heart and its feedback to G stops being useful; the
usual sign is a FID that improves for a while and then gets worse. DiffAugment transforms real
and generated images alike, every time D sees them (in D's update and in G's), so D cannot
memorise the real ones, and G is not pushed to produce the transformations, because its fakes are
judged after the same transformations as the reals. Each transform is differentiable in the
image, so G's gradient passes through it.

Policies, combined with commas (``model.augment = "translation,cutout"``):
- ``translation``: shift each image by up to 1/8 of its side, edges repeated into the gap;
- ``cutout``: replace a random square of half the side by 0 (mid-grey in [-1, 1]);
- ``color``: random brightness and contrast, and saturation on colour images.
Draws use the train step's noise stream, so a seeded run repeats exactly.

Adaptive (``model.augment_target`` > 0, ADA: Karras et al. 2020): each transform is applied to
each image with probability p, which starts at 0 and follows D's over-fitting. After every D
update, r = E[sign(D(real))] (1 when D scores every real image as real) moves p up by
(batch / ``model.augment_ramp``) when r is above the target (ADA's 0.6), down when below. Short
runs, where D has not yet learnt the training images, then train at full speed; long ones get
the augmentation when they need it. On the embedded digits always augmenting slowed the first
minute (models/gan.py).
"""

from __future__ import annotations

from typing import Callable

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError

SHIFT = 1 / 8  # largest translation, as a fraction of the side (DiffAugment's default)
CUTOUT = 1 / 2  # side of the cut-out square, as a fraction of the image's side


def _uniform(x: Tensor, g: torch.Generator | None, low: float, high: float) -> Tensor:
    """One number per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(len(x), 1, 1, 1, generator=g, device=x.device, dtype=x.dtype) * (high - low) + low


def translation(x: Tensor, g: torch.Generator | None) -> Tensor:
    n, c, h, w = x.shape
    py, px = max(1, round(h * SHIFT)), max(1, round(w * SHIFT))
    dy = torch.randint(-py, py + 1, (n, 1, 1), generator=g, device=x.device)
    dx = torch.randint(-px, px + 1, (n, 1, 1), generator=g, device=x.device)
    padded = F.pad(x, (px, px, py, py), mode="replicate")
    rows = torch.arange(h, device=x.device).view(1, h, 1) + py + dy
    cols = torch.arange(w, device=x.device).view(1, 1, w) + px + dx
    index = (rows * (w + 2 * px) + cols).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)


def cutout(x: Tensor, g: torch.Generator | None) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = max(1, round(h * CUTOUT)), max(1, round(w * CUTOUT))
    top = torch.randint(-(sy // 2), h - sy // 2, (n, 1, 1), generator=g, device=x.device)
    left = torch.randint(-(sx // 2), w - sx // 2, (n, 1, 1), generator=g, device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + sy) & (xs >= left) & (xs < left + sx)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def color(x: Tensor, g: torch.Generator | None) -> Tensor:
    # DiffAugment's ranges, which it applies to images in [-1, 1], as gankit's are.
    x = x + _uniform(x, g, -0.5, 0.5)  # brightness
    if x.shape[1] > 1:
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * _uniform(x, g, 0.0, 2.0) + grey  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, g, 0.5, 1.5) + mean  # contrast


AUGMENTATIONS: dict[str, Callable[[Tensor, torch.Generator | None], Tensor]] = {
    "translation": translation, "cutout": cutout, "color": color}


def parse_policy(policy: str) -> list[str]:
    """"translation, cutout" -> ["translation", "cutout"]; "" -> []. Unknown names are an error."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    for name in names:
        if name not in AUGMENTATIONS:
            raise GankitError(f"model.augment has an unknown augmentation {name!r}; use a comma-separated list of "
                              f"{', '.join(AUGMENTATIONS)}, or \"\" for none.")
    return names


def augment(x: Tensor, names: list[str], g: torch.Generator | None, p: Tensor | None = None) -> Tensor:
    """``x`` (N, C, H, W) after each named transform, drawn independently per image; with a
    probability ``p`` (a 0-d tensor) each transform reaches each image with that probability."""
    for name in names:
        transform = AUGMENTATIONS[name]
        if p is None:
            x = transform(x, g)
        else:  # a CPU transforms only the chosen images (p is often small); a GPU masks rather than
            # wait for the host to learn which images were chosen
            x = with_probability(transform, x, g, p, by_index=x.device.type == "cpu")
    return x


def with_probability(transform: Callable[[Tensor, torch.Generator | None], Tensor], x: Tensor,
                     g: torch.Generator | None, p: Tensor, by_index: bool) -> Tensor:
    """``transform`` applied to each image of ``x`` with probability ``p``: to the chosen images
    alone (``by_index``), or to all of them and then masked."""
    chosen = torch.rand(len(x), generator=g, device=x.device) < p
    if not by_index:
        return torch.where(chosen.view(-1, 1, 1, 1), transform(x, g).to(x.dtype), x)
    index = chosen.nonzero().squeeze(1)
    return x.index_put((index,), transform(x[index], g).to(x.dtype)) if len(index) else x


def random_affine(x: Tensor, degrees: float, g: torch.Generator | None, scale: float = 0.1,
                  shift: float = 0.07) -> Tensor:
    """``x`` (N, C, H, W) moved by a random affine map per image: rotated by up to ``degrees``,
    scaled by up to 1 +- ``scale`` and shifted by up to ``shift`` of the side (2 pixels of 28),
    edges repeated into the gaps; differentiable in ``x``. Returns float32. InfoGAN uses it to
    ask for codes that survive a change of pose (models/infogan.py)."""
    u = torch.rand(len(x), 4, generator=g, device=x.device) * 2 - 1
    angle, zoom = u[:, 0] * math.radians(degrees), 1 + scale * u[:, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    move = 2 * shift * u[:, 2:]  # affine_grid's coordinates span 2 per side
    theta = torch.stack([torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, padding_mode="border", align_corners=False)


def adapt_probability(p: Tensor, real_sign: Tensor, images: int, target: float, ramp: float) -> Tensor:
    """ADA's step: p moved by images / ramp towards more augmentation when r = E[sign(D(real))]
    is above ``target``, towards less when below; kept in [0, 1]. Tensors throughout, so a GPU
    run does not wait for the host."""
    return (p + torch.sign(real_sign - target) * (images / ramp)).clamp(0.0, 1.0)
