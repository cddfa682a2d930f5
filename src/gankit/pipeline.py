"""Sampling from a trained generator: ``gankit.load(run_dir).sample(n, labels=...)``."""

from __future__ import annotations

import math
import numbers
import os
import secrets
from pathlib import Path
from typing import Sequence, Union

import torch
from torch import Tensor

from gankit.artifacts import load_generator
from gankit.config import require_whole
from gankit.data.base import Attribute, DataInfo, labels_outside
from gankit.device import resolve_device
from gankit.errors import GankitError
from gankit.models.base import Generator, random_labels
from gankit.models.infogan import codes_of

MAX_SAMPLES = 1_000_000
MAX_INTERPOLATION = 64  # images in one interpolation strip
MAX_VALUES = 2**30  # float32 values one call may return (4 GiB): MAX_SAMPLES MNIST digits fit, large images do not
SAMPLE_SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes 64-bit seeds


# Labels as the pipeline takes them: one row per sample, one row for all, a dict fixing some
# attributes by name to a class or a value name ({"hair": 3}, {"hair": "blue"}; the others
# random), or None (all random).
Labels = Union[Sequence, Tensor, dict[str, Union[int, str]], None]


def fixed_label(attribute: Attribute, value: object) -> int:
    """The class a label dict gives ``attribute``: a value name (as `--attr hair=blue` takes) or a
    whole class number (7.0 too, as in a label list); assigned into an integer tensor as they come,
    7.9 or True would pass as 7 or 1."""
    if isinstance(value, str):
        return attribute.index(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise GankitError(f"The label of {attribute.name!r} must be a whole class number or one of its values "
                          f"({', '.join(attribute.values)}), not {value!r:.60}.")
    if not 0 <= value < attribute.num_classes:  # checked here: 2**70 or 1e20 does not fit the int64 tensor
        raise GankitError(f"Label {value!r:.60} is outside {attribute.name!r}, whose classes are "
                          f"0-{attribute.num_classes - 1}.")
    return int(value)


def y_outside_int64(raw: Tensor) -> bool:
    """Whether label values given as floats or unsigned integers lie beyond int64 (inf, 1e20, 2**64 - 1)."""
    if raw.numel() == 0 or not (raw.is_floating_point() or not raw.dtype.is_signed):  # (torch.uint64 is 2.3's)
        return False
    values = raw.double()
    return bool(((values < -2.0**63) | (values >= 2.0**63)).any())


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

    def labels_tensor(self, n: int, labels: Labels, generator: torch.Generator) -> Tensor | None:
        """Labels for ``n`` samples as (n, A): given per sample, one for all, random (None), or
        some attributes fixed and the rest random (a dict of attribute name -> class)."""
        if not self.info.attributes:
            if labels is not None:
                raise GankitError(f"This {self.family} model is unconditional; drop --label/--labels.")
            return None
        if labels is None or isinstance(labels, dict):
            return self.draw_labels(n, labels or {}, generator)
        attrs = self.info.attributes
        try:
            raw = torch.as_tensor(labels)
        except (ValueError, TypeError, RuntimeError):  # ragged lists, text, None inside
            raw = torch.empty(0)
        if raw.dtype == torch.bool or raw.is_floating_point() and not bool((raw == raw.round()).all()):
            raise GankitError(f"Labels must be whole class numbers, not {labels!r:.60}.")  # 7.5, NaN, True
        if y_outside_int64(raw):  # the cast below would wrap them into other numbers (1e20 into -2**63)
            raise GankitError(f"Labels must be class numbers of this model, not {labels!r:.60}.")
        y = raw.to(torch.int64)
        if y.numel() == 0 or y.numel() % len(attrs):
            raise GankitError(f"Labels must give one integer per attribute ({', '.join(a.name for a in attrs)}) "
                              f"for each sample, not {labels!r:.60}.")
        y = y.reshape(-1, len(attrs))
        if len(y) == 1:
            y = y.expand(n, -1)
        if len(y) != n:
            raise GankitError(f"Got {len(y)} labels for {n} samples; give one label or exactly n of them.")
        outside = labels_outside(y, attrs)
        if outside is not None:
            a, bad = outside
            raise GankitError(f"Label {int(bad[0])} is outside {a.name!r}, whose classes are 0-{a.num_classes - 1}.")
        return y.to(self.device)

    def draw_labels(self, n: int, fixed: dict[str, int | str], generator: torch.Generator) -> Tensor:
        """(n, A) labels: the attributes in ``fixed`` set to their class, the others drawn
        uniformly from ``generator``. Nothing is drawn when all are fixed, so that the latents that
        follow are those of labels given outright: `gankit sample`, the page and this API agree."""
        attrs = self.info.attributes
        names = [a.name for a in attrs]
        for name in fixed:
            if name not in names:
                raise GankitError(f"Unknown attribute {name!r}; this model's attributes are {', '.join(names)}.")
        if len(fixed) == len(attrs):
            y = torch.zeros(n, len(attrs), dtype=torch.int64, device=generator.device)
        else:
            y = random_labels(self.info, n, generator, generator.device)
        for i, a in enumerate(attrs):
            if a.name in fixed:
                y[:, i] = fixed_label(a, fixed[a.name])
        return self.labels_tensor(n, y, generator)  # checks each class is in range

    @torch.inference_mode()
    def generate(self, n: int, labels: Labels = None, seed: int | None = None,
                 batch_size: int = 1000, codes: dict[str, int | float] | None = None) -> tuple[Tensor, Tensor | None]:
        """``n`` samples on the CPU (images: (n, C, H, W) in [-1, 1]; a toy run's points: (n, d),
        unbounded), and their (n, A) labels (see ``labels_tensor`` for ``labels``);
        ``codes`` fixes InfoGAN codes (``{"c1": 3, "c2": 0.5}``), the rest of z staying random."""
        n = require_whole(n, "The number of samples", 1, MAX_SAMPLES)
        per_sample = math.prod(self.info.shape)
        if n * per_sample > MAX_VALUES:
            raise GankitError(f"{n:,} samples of shape {tuple(self.info.shape)} would take "
                              f"{n * per_sample * 4 / 2**30:.0f} GiB of memory; ask for at most "
                              f"{MAX_VALUES // per_sample:,} at a time, with another seed for each batch.")
        batch_size = require_whole(batch_size, "batch_size", 1, MAX_SAMPLES)
        z, y = self.inputs(n, labels, seed, codes)
        samples = torch.empty((n, *self.info.shape))  # filled in place: chunks and their concatenation would be 2x
        for i in range(0, n, batch_size):
            samples[i:i + batch_size] = self.generator(z[i:i + batch_size], None if y is None else y[i:i + batch_size])
        return samples, None if y is None else y.cpu()

    def inputs(self, n: int, labels: Labels = None, seed: int | None = None,
               codes: dict[str, int | float] | None = None) -> tuple[Tensor, Tensor | None]:
        """The latents and labels ``generate`` draws for these arguments (a seed of None: a random one)."""
        g = torch.Generator(device=self.device)
        # No seed: one from the system's entropy, not torch.seed(), which would also reseed the caller's
        # global stream (a script that seeded torch would lose its order by sampling).
        g.manual_seed(require_whole(seed, "The seed", 0, SAMPLE_SEED_MAX) if seed is not None
                      else secrets.randbelow(SAMPLE_SEED_MAX + 1))
        y = self.labels_tensor(n, labels, g)
        if codes is not None and not isinstance(codes, dict):
            raise GankitError(f"codes must be a dict of code name to value, such as {{'c1': 3}}, not {codes!r:.60}.")
        z = codes_of(self.generator).latent_with_codes(n, codes, g, self.device) if codes \
            else self.generator.sample_latent(n, g, self.device)
        return z, y

    def code_values(self, n: int, seed: int, codes: dict[str, int | float] | None = None) -> dict[str, Tensor]:
        """An InfoGAN's codes in the samples ``generate(n, seed=seed, codes=codes)`` draws, by name, on the
        CPU: category indices (int64) or continuous values."""
        z, _ = self.inputs(n, None, seed, codes)
        return {name: values.cpu() for name, values in codes_of(self.generator).code_values(z).items()}

    def sample(self, n: int, labels: Labels = None, seed: int | None = None) -> Tensor:
        """``n`` samples, float32 on the CPU (see ``generate``)."""
        return self.generate(n, labels, seed)[0]

    # --- latent tools (the DCGAN paper's walks and vector arithmetic) -------------------------
    def latents(self, n: int, seed: int = 0) -> Tensor:
        n = require_whole(n, "The number of latents", 1, MAX_SAMPLES)
        g = torch.Generator(device=self.device).manual_seed(require_whole(seed, "The seed", 0, SAMPLE_SEED_MAX))
        return self.generator.sample_latent(n, g, self.device)

    @torch.inference_mode()
    def decode(self, z: Tensor, labels: Labels = None) -> Tensor:
        """Samples for given latents (and labels: one for all, or one per latent)."""
        width = self.generator.latent_dim
        if not isinstance(z, Tensor) or z.is_complex() or z.dtype == torch.bool:
            kind = f"a {z.dtype} tensor" if isinstance(z, Tensor) else type(z).__name__
            raise GankitError(f"The latents must be a tensor of real numbers of shape (n, {width}), as latents() draws "
                              f"them, not {kind}.")
        if z.dim() != 2 or z.shape[1] != width or len(z) == 0:
            raise GankitError(f"The latents have shape {tuple(z.shape)}; this generator takes (n, {width}) with n at "
                              "least 1, as latents() draws them.")
        g = torch.Generator(device=self.device).manual_seed(0)
        y = self.labels_tensor(len(z), labels, g)
        return self.generator(z.to(self.device, torch.float32), y).float().cpu()

    def walk(self, za: Tensor, zb: Tensor, steps: int) -> Tensor:
        """``steps`` latents from ``za`` to ``zb`` (each (1, D)), by ``interpolate_latents`` over
        this generator's layout of z (InfoGAN's: noise, one-hot codes, continuous codes)."""
        G = self.generator
        for name, z in (("za", za), ("zb", zb)):
            if not isinstance(z, Tensor) or tuple(z.shape) != (1, G.latent_dim):
                shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
                raise GankitError(f"walk's {name} must be one latent of shape (1, {G.latent_dim}), as latents(1) "
                                  f"draws it, not {shape}.")
        steps = require_whole(steps, "A walk's number of steps", 2, MAX_INTERPOLATION)
        codes = getattr(G, "codes", None)
        categorical_dims = sum(code.width for code in codes.categorical) if codes is not None else 0
        return interpolate_latents(za, zb, getattr(G, "noise_dim", G.latent_dim), steps, categorical_dims)

    @torch.inference_mode()
    def interpolate(self, steps: int, seed: int = 0, labels: Labels = None) -> Tensor:
        """``steps`` samples walking between two random latents (``walk``), all with one label row:
        the one given, or one drawn with ``seed``."""
        steps = require_whole(steps, "An interpolation's number of steps", 2, MAX_INTERPOLATION)
        z = self.latents(2, seed)
        y = self.labels_tensor(1, labels, torch.Generator(device=self.device).manual_seed(seed))
        z = self.walk(z[:1], z[1:], steps)
        return self.generator(z, None if y is None else y.expand(steps, -1)).float().cpu()

    @staticmethod
    def arithmetic(plus: Tensor, minus: Tensor, plus_too: Tensor) -> Tensor:
        """mean(plus) - mean(minus) + mean(plus_too): e.g. smiling woman - neutral woman + neutral man."""
        return (plus.mean(0) - minus.mean(0) + plus_too.mean(0)).unsqueeze(0)


def interpolate_latents(za: Tensor, zb: Tensor, gaussian_dims: int, steps: int, categorical_dims: int = 0) -> Tensor:
    """``steps`` latents from ``za`` to ``zb`` (each (1, D)): spherical over the Gaussian
    columns; the next ``categorical_dims`` (InfoGAN's one-hot codes) switch from A's to B's half
    way, since a blend of two categories is no category G has seen; linear over the rest
    (InfoGAN's continuous codes, whose priors are uniform)."""
    t = torch.linspace(0, 1, steps, device=za.device)
    noise = slerp(za[0, :gaussian_dims], zb[0, :gaussian_dims], t)
    split = gaussian_dims + categorical_dims
    categorical = torch.where(t[:, None] < 0.5, za[:, gaussian_dims:split], zb[:, gaussian_dims:split])
    continuous = torch.lerp(za[:, split:], zb[:, split:], t[:, None])
    return torch.cat([noise, categorical, continuous], dim=1)


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
    if not isinstance(run_dir, (str, os.PathLike)):
        raise GankitError(f"gankit.load takes the path of a run folder, not {run_dir!r:.60}.")
    generator, meta = load_generator(Path(run_dir).expanduser())  # "~/runs/x", as the data specs take it
    return GeneratorPipeline(generator, meta).to(device)
