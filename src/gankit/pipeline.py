"""Sampling from a trained generator: ``gankit.load(run_dir).sample(n, labels=...)``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from gankit.artifacts import load_generator
from gankit.config import require_whole
from gankit.data.base import DataInfo
from gankit.device import resolve_device
from gankit.errors import GankitError
from gankit.models.base import Generator, random_labels

MAX_SAMPLES = 1_000_000
MAX_VALUES = 2**30  # float32 values one call may return (4 GiB): MAX_SAMPLES MNIST digits fit, large images do not
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes 64-bit seeds


class GeneratorPipeline:
    """A loaded generator with the knowledge of its data (shape, attributes and their values)."""

    def __init__(self, generator: Generator, meta: dict):
        self.generator = generator
        self.meta = meta
        self.info: DataInfo = generator.info
        self.family: str = meta["family"]

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def to(self, device: str | torch.device) -> "GeneratorPipeline":
        self.generator.to(resolve_device(device))
        return self

    def labels_tensor(self, n: int, labels: Sequence | Tensor | None, generator: torch.Generator) -> Tensor | None:
        """Labels for ``n`` samples as (n, A): given per sample, one for all, or random."""
        if not self.info.attributes:
            if labels is not None:
                raise GankitError(f"This {self.family} model is unconditional; drop --label/--labels.")
            return None
        if labels is None:
            return random_labels(self.info, n, generator, generator.device)
        attrs = self.info.attributes
        try:
            raw = torch.as_tensor(labels)
        except (ValueError, TypeError, RuntimeError):  # ragged lists, text, None inside
            raw = torch.empty(0)
        if raw.dtype == torch.bool or raw.is_floating_point() and not bool((raw == raw.round()).all()):
            raise GankitError(f"Labels must be whole class numbers, not {labels!r:.60}.")  # 7.5, NaN, True
        y = raw.to(torch.int64)
        if y.numel() == 0 or y.numel() % len(attrs):
            raise GankitError(f"Labels must give one integer per attribute ({', '.join(a.name for a in attrs)}) "
                              f"for each sample, not {labels!r:.60}.")
        y = y.reshape(-1, len(attrs))
        if len(y) == 1:
            y = y.expand(n, -1)
        if len(y) != n:
            raise GankitError(f"Got {len(y)} labels for {n} samples; give one label or exactly n of them.")
        for i, a in enumerate(attrs):
            bad = y[:, i][(y[:, i] < 0) | (y[:, i] >= a.num_classes)]
            if len(bad):
                raise GankitError(f"Label {int(bad[0])} is outside {a.name!r}, whose classes are 0-{a.num_classes - 1}.")
        return y.to(self.device)

    @torch.inference_mode()
    def generate(self, n: int, labels: Sequence | Tensor | None = None, seed: int | None = None,
                 batch_size: int = 1000) -> tuple[Tensor, Tensor | None]:
        """``n`` samples in [-1, 1] (images: (n, C, H, W)) on the CPU, and their (n, A) labels."""
        n = require_whole(n, "The number of samples", 1, MAX_SAMPLES)
        per_sample = math.prod(self.info.shape)
        if n * per_sample > MAX_VALUES:
            raise GankitError(f"{n:,} samples of shape {tuple(self.info.shape)} would take {n * per_sample * 4 / 2**30:.0f} "
                              f"GiB of memory; ask for at most {MAX_VALUES // per_sample:,} at a time, with another "
                              "seed for each batch.")
        batch_size = require_whole(batch_size, "batch_size", 1, MAX_SAMPLES)
        g = torch.Generator(device=self.device)
        g.manual_seed(require_whole(seed, "The seed", 0, MAX_SEED) if seed is not None else torch.seed())
        y = self.labels_tensor(n, labels, g)
        z = self.generator.sample_latent(n, g, self.device)
        chunks = [self.generator(z[i:i + batch_size], None if y is None else y[i:i + batch_size]).float().cpu()
                  for i in range(0, n, batch_size)]
        return torch.cat(chunks), None if y is None else y.cpu()

    def sample(self, n: int, labels: Sequence | Tensor | None = None, seed: int | None = None) -> Tensor:
        """``n`` samples in [-1, 1], float32 on the CPU."""
        return self.generate(n, labels, seed)[0]

    # --- latent tools (the DCGAN paper's walks and vector arithmetic) -------------------------
    def latents(self, n: int, seed: int = 0) -> Tensor:
        n = require_whole(n, "The number of latents", 1, MAX_SAMPLES)
        g = torch.Generator(device=self.device).manual_seed(require_whole(seed, "The seed", 0, MAX_SEED))
        return self.generator.sample_latent(n, g, self.device)

    @torch.inference_mode()
    def decode(self, z: Tensor, labels: Sequence | Tensor | None = None) -> Tensor:
        """Samples for given latents (and labels: one for all, or one per latent)."""
        g = torch.Generator(device=self.device).manual_seed(0)
        y = self.labels_tensor(len(z), labels, g)
        return self.generator(z.to(self.device), y).float().cpu()

    def interpolate(self, steps: int, seed: int = 0, labels: Sequence | Tensor | None = None) -> Tensor:
        """``steps`` samples along the great circle between two random latents."""
        steps = require_whole(steps, "An interpolation's number of steps", 2, 64)
        a, b = self.latents(2, seed)
        return self.decode(slerp(a, b, torch.linspace(0, 1, steps, device=a.device)), labels)

    @staticmethod
    def arithmetic(plus: Tensor, minus: Tensor, plus_too: Tensor) -> Tensor:
        """mean(plus) - mean(minus) + mean(plus_too): e.g. smiling woman - neutral woman + neutral man."""
        return (plus.mean(0) - minus.mean(0) + plus_too.mean(0)).unsqueeze(0)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation: Gaussian latents live near a sphere, and a straight line between
    two of them passes through the low-norm middle the generator rarely saw (White 2016)."""
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:  # (nearly) the same direction: a straight line is exact
        return torch.lerp(a, b, t[:, None])
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> GeneratorPipeline:
    """Load the generator of a run folder (or of a folder with generator.json + .safetensors)."""
    generator, meta = load_generator(Path(run_dir))
    return GeneratorPipeline(generator, meta).to(device)
