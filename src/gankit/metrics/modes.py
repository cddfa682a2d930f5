"""Mode metrics for the toy distributions, whose modes and density are known exactly.

Modes (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): each generated sample is
assigned to the nearest mixture centre. It is *high quality* when it lies within 3 standard
deviations of that centre (Euclidean distance <= 3 std). A mode is *captured* when at least
``min_count`` (default 20) high-quality samples are assigned to it. VEEGAN and PacGAN count a
mode from a single sample (``min_count=1``); 20 out of the usual 2,500 samples asks the
generator to put real mass on the mode, not a stray point.

1-D (the GAN paper, Goodfellow et al. 2014): for fixed G the optimal discriminator is
D*(x) = p_data(x) / (p_data(x) + p_g(x)), and at D* the minimax objective
V(D, G) = E_data[log D(x)] + E_g[log(1 - D(G(z)))] equals -log 4 + 2 JSD(p_data || p_g):
its optimum -log 4 is reached only when p_g = p_data. D is read through its loss's ``belief``
(models/losses.py): least squares has the same D*; hinge's optimal D is +1 where p_data > p_g
and -1 where p_data < p_g, a belief of 1 or 0, drawn but not scored: it jumps wherever the two
density estimates cross, so its gap to D would measure their noise. V(D, G) is the cross-entropy
losses' objective, so it is reported for them only; its value at D* measures G for any loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import xlogy
from scipy.stats import gaussian_kde
from torch import nn

from gankit.data.toy import GaussianMixture
from gankit.models.losses import LOSSES

MINIMAX_OPTIMUM = -math.log(4.0)


@dataclass(frozen=True)
class ModeReport:
    counts: np.ndarray  # high-quality samples assigned to each mode
    high_quality: float  # fraction of all samples that are high quality
    min_count: int

    @property
    def modes(self) -> int:
        return int((self.counts >= self.min_count).sum())

    @property
    def total_modes(self) -> int:
        return len(self.counts)


def nearest_centres(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each point's nearest centre and the distance to it."""
    distances = np.sqrt(((points[:, None, :] - centres[None]) ** 2).sum(-1))
    nearest = distances.argmin(1)
    return nearest, distances[np.arange(len(points)), nearest]


def mode_report(samples: np.ndarray, mixture: GaussianMixture, min_count: int = 20,
                within_stds: float = 3.0) -> ModeReport:
    """Modes captured and high-quality fraction of ``samples`` (N, d), by the rule above."""
    nearest, distance = nearest_centres(np.asarray(samples, dtype=np.float64), mixture.centres)
    good = distance <= within_stds * mixture.std
    counts = np.bincount(nearest[good], minlength=len(mixture.centres))
    return ModeReport(counts, float(good.mean()), min_count)


CROSS_ENTROPY_LOSSES = ("nonsaturating", "minimax")  # the losses whose D plays V(D, G)


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray, loss: str = "nonsaturating") -> np.ndarray:
    """D*(x) as a belief in [0, 1]: p_data / (p_data + p_g) (cross-entropy and least squares), or
    for hinge 1 where p_data > p_g and 0 where p_data < p_g; 1/2 where they are equal."""
    if loss == "hinge":
        return 0.5 + 0.5 * np.sign(p_data - p_g)
    total = p_data + p_g
    return np.divide(p_data, total, out=np.full_like(total, 0.5), where=total > 0)


def discriminator_gap(d: np.ndarray, d_star: np.ndarray, p_data: np.ndarray, p_g: np.ndarray) -> float:
    """Mean |D - D*| under the mixture (p_data + p_g) / 2: the gap where samples actually fall."""
    weight = p_data + p_g
    return float((np.abs(d - d_star) * weight).sum() / weight.sum())


def minimax_value(real_logits: np.ndarray, fake_logits: np.ndarray) -> float:
    """V(D, G) estimated from D's logits on data and generated samples."""
    # log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l), stable for any l.
    return float(-np.logaddexp(0, -real_logits).mean() - np.logaddexp(0, fake_logits).mean())


def optimal_value(x: np.ndarray, p_data: np.ndarray, p_g: np.ndarray) -> float:
    """C(G) = V(D*, G) on an even 1-D grid ``x``: -log 4 + 2 JSD(p_data || p_g)."""
    total = np.where(p_data + p_g > 0, p_data + p_g, 1.0)
    # xlogy(0, .) = 0: where a density vanishes its term does, even where log D* is -inf.
    terms = xlogy(p_data, p_data / total) + xlogy(p_g, p_g / total)
    return float(terms.sum() * (x[1] - x[0]))


def sample_density(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """p_g on the points ``x`` (N, 1), by a Gaussian kernel density estimate of 1-D samples."""
    values = np.asarray(samples, dtype=np.float64).ravel()
    if np.ptp(values) == 0:  # a collapsed generator: the KDE's bandwidth would be zero
        values = values + 1e-3 * np.random.default_rng(0).standard_normal(len(values))
    return gaussian_kde(values)(x.ravel())


def density_grid(real: np.ndarray, fake: np.ndarray, points: int = 400) -> np.ndarray:
    """An even 1-D grid over the data and the generated samples, 10% wider each side, as (points, 1)."""
    low, high = min(real.min(), fake.min()), max(real.max(), fake.max())
    pad = 0.1 * (high - low) + 1e-3
    return np.linspace(low - pad, high + pad, points)[:, None]


@torch.inference_mode()
def logits_at(discriminator: nn.Module, points: np.ndarray) -> np.ndarray:
    """D's raw output at ``points`` (N, d), as float64 numpy."""
    device = next(discriminator.parameters()).device
    x = torch.as_tensor(points, dtype=torch.float32, device=device)
    return discriminator(x).float().view(-1).cpu().double().numpy()


@dataclass(frozen=True)
class OneDimensional:
    """Everything the GAN paper's Figure 1 shows, on an even grid ``x``."""

    x: np.ndarray  # (P, 1)
    p_data: np.ndarray
    p_g: np.ndarray
    d: np.ndarray  # the trained D, as its belief that a point is real (see the module's docstring)
    d_star: np.ndarray


def one_dimensional(discriminator: nn.Module, fake: np.ndarray, real: np.ndarray,
                    mixture: GaussianMixture | None = None, loss: str = "nonsaturating") -> OneDimensional:
    """Densities, D and D* on a grid; p_data is exact given the mixture, else estimated from ``real``."""
    x = density_grid(real, fake)
    p_data = mixture.density(x) if mixture is not None else sample_density(real, x)
    p_g = sample_density(fake, x)
    d = LOSSES[loss].belief(torch.from_numpy(logits_at(discriminator, x))).numpy()
    return OneDimensional(x, p_data, p_g, d, optimal_discriminator(p_data, p_g, loss))


def toy_metrics(fake: np.ndarray, real: np.ndarray, mixture: GaussianMixture, discriminator: nn.Module | None = None,
                min_count: int = 20, loss: str = "nonsaturating") -> dict[str, float]:
    """Flat metrics for ``metrics.jsonl``: modes and quality; on 1-D data also D vs D* (D trained with
    ``loss``) and, for the cross-entropy losses, V vs -log 4."""
    report = mode_report(fake, mixture, min_count)
    out = {"modes": report.modes, "modes_total": report.total_modes, "high_quality": round(report.high_quality, 4)}
    if mixture.dim == 1 and discriminator is not None:
        curves = one_dimensional(discriminator, fake, real, mixture, loss)
        if loss != "hinge":
            out["d_star_gap"] = round(discriminator_gap(curves.d, curves.d_star, curves.p_data, curves.p_g), 4)
        if loss in CROSS_ENTROPY_LOSSES:
            value = minimax_value(logits_at(discriminator, real), logits_at(discriminator, fake))
            out["minimax_value"] = round(value, 4)
        out["minimax_at_d_star"] = round(optimal_value(curves.x[:, 0], curves.p_data, curves.p_g), 4)
        out["minimax_optimum"] = round(MINIMAX_OPTIMUM, 4)
    return out
