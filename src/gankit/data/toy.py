"""Toy distributions: low-dimensional data whose density and modes are known exactly.

``toy:gauss1d`` is the 1-D Gaussian of the GAN paper's Figure 1; ``toy:ring8`` the 8 Gaussians
on a circle (radius 2, std 0.02, as in VEEGAN); ``toy:grid25`` the 5x5 grid of Gaussians
(means -4..4 in steps of 2, std 0.05, as in PacGAN); ``toy:spiral`` a noisy spiral arm with no
discrete modes. Options follow the name: ``toy:ring8,radius=3,std=0.05``; every toy also takes
``n`` (samples held in memory, default 100,000) and ``seed`` (default 0), so a spec always
yields the same data. ``toy_distribution(spec)`` rebuilds the distribution from the spec, which
is how metrics and pictures learn the mixture behind a ``TensorData``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from gankit.config import DataConfig
from gankit.data.base import DataInfo, TensorData, refuse_repeated
from gankit.data.registry import register
from gankit.errors import GankitError

Params = dict[str, float]
COMMON_DEFAULTS: Params = {"n": 100_000, "seed": 0}


@dataclass(frozen=True)
class GaussianMixture:
    """Equally weighted isotropic Gaussians sharing one standard deviation."""

    centres: np.ndarray  # (K, d)
    std: float

    @property
    def dim(self) -> int:
        return self.centres.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        which = rng.integers(len(self.centres), size=n)
        return self.centres[which] + self.std * rng.standard_normal((n, self.dim))

    def density(self, x: np.ndarray) -> np.ndarray:
        """p(x) for points (N, d)."""
        sq = ((x[:, None, :] - self.centres[None]) ** 2).sum(-1) / self.std**2
        norm = (2 * math.pi * self.std**2) ** (self.dim / 2)
        return np.exp(-0.5 * sq).mean(1) / norm


@dataclass(frozen=True)
class Spiral:
    """One arm turning ``turns`` times out to ``radius``, blurred by Gaussian noise; no modes."""

    turns: float
    radius: float
    std: float

    dim = 2

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # sqrt spreads the points evenly along the arm, whose length grows with the radius.
        t = np.sqrt(rng.uniform(0.02, 1.0, size=n))
        angle = 2 * math.pi * self.turns * t
        arm = self.radius * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        return arm + self.std * rng.standard_normal((n, 2))


Distribution = GaussianMixture | Spiral


def gauss1d(p: Params) -> GaussianMixture:
    return GaussianMixture(np.array([[p["mean"]]]), p["std"])


def ring(p: Params) -> GaussianMixture:
    angles = 2 * math.pi * np.arange(int(p["modes"])) / p["modes"]
    return GaussianMixture(p["radius"] * np.stack([np.cos(angles), np.sin(angles)], 1), p["std"])


def grid(p: Params) -> GaussianMixture:
    size = int(p["size"])
    axis = p["spacing"] * (np.arange(size) - (size - 1) / 2)
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    return GaussianMixture(np.stack([xs.ravel(), ys.ravel()], 1), p["std"])


def spiral(p: Params) -> Spiral:
    return Spiral(p["turns"], p["radius"], p["std"])


@dataclass(frozen=True)
class ToyKind:
    build: Callable[[Params], Distribution]
    defaults: Params  # an int default makes the option an integer


TOYS: dict[str, ToyKind] = {
    "gauss1d": ToyKind(gauss1d, {"mean": 4.0, "std": 0.5}),
    "ring8": ToyKind(ring, {"modes": 8, "radius": 2.0, "std": 0.02}),
    "grid25": ToyKind(grid, {"size": 5, "spacing": 2.0, "std": 0.05}),
    "spiral": ToyKind(spiral, {"turns": 2.0, "radius": 4.0, "std": 0.05}),
}
# Options that must be above zero; mean is the only one that may be anything.
POSITIVE = ("std", "radius", "spacing", "turns", "modes", "size", "n")
# Upper bounds, so a typo cannot ask for more memory than a machine has or hang the sampler.
LIMITS = {"n": 10_000_000, "modes": 10_000, "size": 100}


def parse_option(kind: str, item: str, defaults: Params) -> tuple[str, float]:
    key, sep, text = (part.strip() for part in item.partition("="))
    if key not in defaults:
        raise GankitError(f"toy:{kind} has no option {key!r}; its options are {', '.join(defaults)}.")
    if not sep:
        raise GankitError(f"toy:{kind} option {item!r} needs a value, such as {key}={defaults[key]}.")
    integer = isinstance(defaults[key], int)
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = math.nan
    too_small = value <= 0 if key in POSITIVE else key == "seed" and value < 0
    if not math.isfinite(value) or too_small:
        raise GankitError(f"toy:{kind} option {key} must be {requirement(key, integer)}, not {text!r}.")
    if value > LIMITS.get(key, math.inf):
        raise GankitError(f"toy:{kind} option {key} must be at most {LIMITS[key]:,}, not {text!r}.")
    return key, value


def requirement(key: str, integer: bool) -> str:
    if key == "seed":
        return "a non-negative integer"
    if key in POSITIVE:
        return "a positive integer" if integer else "a positive number"
    return "a number"


def parse_toy_spec(argument: str | None) -> tuple[str, Params]:
    """``ring8,radius=3`` -> ("ring8", every option with its value, defaults filled in)."""
    kind, *items = [part.strip() for part in (argument or "").split(",")]
    if kind not in TOYS:
        raise GankitError(f"Unknown toy distribution {kind!r}; use toy:NAME with NAME among {', '.join(TOYS)}.")
    params = {**TOYS[kind].defaults, **COMMON_DEFAULTS}
    refuse_repeated(f"toy:{kind}", items)
    params.update(parse_option(kind, item, params) for item in items if item)
    return kind, params


def toy_distribution(spec: str) -> Distribution | None:
    """The distribution behind a dataset spec such as ``toy:ring8,std=0.05``; None if not a toy."""
    source, sep, argument = spec.partition(":")
    if source.strip() != "toy" or not sep:
        return None
    kind, params = parse_toy_spec(argument)
    return TOYS[kind].build(params)


@register(
    "toy",
    summary="Toy distributions with known modes (vectors): gauss1d, ring8, grid25, spiral.",
    usage="toy:gauss1d[,mean=4,std=0.5] | toy:ring8[,modes=8,radius=2,std=0.02] | "
          "toy:grid25[,size=5,spacing=2,std=0.05] | toy:spiral[,turns=2,radius=4,std=0.05]; all take n=, seed=",
    vectors=True,
)
def load_toy(argument: str | None, options: DataConfig) -> TensorData:
    if options.image_size or options.channels:
        raise GankitError("toy data are vectors, not images; drop data.image_size and data.channels.")
    kind, params = parse_toy_spec(argument)
    distribution = TOYS[kind].build(params)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below, in one sentence, not numpy's warnings
        points = distribution.sample(int(params["n"]), np.random.default_rng(int(params["seed"])))
        samples = torch.from_numpy(points.astype(np.float32))
    if not bool(torch.isfinite(samples).all()):  # e.g. mean=1e39, past float32's 3.4e38
        raise GankitError(f"toy:{argument} gives points beyond float32's range (about 3.4e38); use smaller "
                          "means, radii or scales.")
    return TensorData(samples, None, DataInfo((distribution.dim,)), f"toy:{argument}")
