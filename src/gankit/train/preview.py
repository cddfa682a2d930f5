"""Pictures of training from fixed inputs, so pictures of successive steps are comparable.

Images: a sample grid. Vector data: the GAN paper's 1-D figure (densities, D and D*) or 2-D
samples over D's output, one PNG per call plus ``training.gif`` over all of them; on toy data
the same samples also give the mode metrics that ``save_preview`` returns for metrics.jsonl.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.utils import save_image

from gankit.atomic import atomic_write_encoded, image_format
from gankit.data.base import DataInfo, TensorData
from gankit.data.toy import GaussianMixture, toy_distribution
from gankit.metrics.modes import logits_at, one_dimensional, toy_metrics
from gankit.models.base import Generator, Preview
from gankit.viz import figure_1d, figure_2d, plot_window, save_png, write_gif

# Generated points per vector picture: the 2,500 samples VEEGAN and PacGAN count modes with.
VECTOR_SAMPLES = 2500


def preview_inputs(generator: Generator, info: DataInfo, seed: int, device: torch.device) -> Preview:
    """Fixed latents and labels: one row per class of the first attribute; with two or more
    attributes, rows are the first attribute's values and columns the second's. Unlabelled
    vector data get one row of VECTOR_SAMPLES latents, drawn as points."""
    g = torch.Generator(device=device).manual_seed(seed)
    if not info.is_image and not info.attributes:
        rows, columns, labels = 1, VECTOR_SAMPLES, None
    elif not info.attributes:
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
    return Preview(z, labels, columns)


@torch.inference_mode()
def save_preview(generator: Generator, inputs: Preview, path: Path, discriminator: nn.Module | None = None,
                 data: TensorData | None = None, loss: str = "nonsaturating") -> dict[str, float]:
    """Save the picture of this step at ``path``; return toy data's mode metrics ({} otherwise).

    Vector data need ``discriminator`` (trained with ``loss``) and ``data`` for their pictures, and
    get none without them.
    """
    samples = generator(inputs.z, inputs.labels).float()
    if inputs.beside is not None:  # one row per output: left | output | right
        left, right = (images.float() for images in inputs.beside)
        samples = torch.stack([left, samples, right], dim=1).flatten(0, 1)
    if samples.dim() == 4:
        save_grid(samples, inputs.columns, path)
        return {}
    if discriminator is None or data is None or samples.shape[1] > 2:
        return {}
    return save_vector_preview(samples.cpu().numpy(), discriminator, data, path, loss)


def save_grid(images: Tensor, columns: int, path: Path) -> None:
    atomic_write_encoded(path, lambda f: save_image(images, f, format=image_format(path), nrow=columns,
                                                    normalize=True, value_range=(-1, 1), padding=2))


def save_vector_preview(fake: np.ndarray, discriminator: nn.Module, data: TensorData, path: Path,
                        loss: str) -> dict[str, float]:
    """The 1-D or 2-D picture at ``path``, ``training.gif`` beside it, and the mode metrics."""
    real = data.take(slice(VECTOR_SAMPLES)).cpu().numpy()
    distribution = toy_distribution(data.name)
    mixture = distribution if isinstance(distribution, GaussianMixture) else None
    metrics = toy_metrics(fake, real, mixture, discriminator, loss=loss) if mixture is not None else {}
    title = " - ".join([path.stem, *describe(metrics)])
    if fake.shape[1] == 1:
        curves = one_dimensional(discriminator, fake, real, mixture, loss)
        figure = figure_1d(curves.x, curves.p_data, curves.p_g, curves.d, curves.d_star, title)
    else:
        grid_x, grid_y = plot_window(real)
        logits = logits_at(discriminator, np.stack([grid_x.ravel(), grid_y.ravel()], 1))
        figure = figure_2d(fake, real, grid_x, grid_y, logits.reshape(grid_x.shape), title)
    save_png(figure, path)
    write_gif(sorted(path.parent.glob("step-*.png")), path.parent / "training.gif")
    return metrics


def describe(metrics: dict[str, float]) -> list[str]:
    """The headline metrics as short phrases for a picture's title."""
    if not metrics:
        return []
    phrases = [f"{metrics['modes']}/{metrics['modes_total']} modes", f"{metrics['high_quality']:.0%} high quality"]
    if "d_star_gap" in metrics:
        phrases.append(f"|D-D*| {metrics['d_star_gap']:.3f}")
    return phrases
