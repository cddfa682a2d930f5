"""Adversarial losses, each a few lines, all taking raw discriminator outputs (logits for the
cross-entropy losses, scores for least squares and hinge).

``d(real, fake, real_target)`` is the discriminator's loss; ``real_target`` is 1, or a tensor
of targets in [1-s, 1] for one-sided label smoothing. ``g(fake)`` is the generator's loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Target = Tensor | float


def _bce_real(real: Tensor, target: Target) -> Tensor:
    # BCE(sigmoid(l), t) = t * softplus(-l) + (1 - t) * softplus(l), stable for any logit.
    if isinstance(target, float) and target == 1.0:  # unsmoothed: the second term is 0, and 8 operations a step
        return F.softplus(-real).mean()
    return (target * F.softplus(-real) + (1 - target) * F.softplus(real)).mean()


def bce_d(real: Tensor, fake: Tensor, target: Target = 1.0) -> Tensor:
    """The GAN paper's discriminator loss: -log D(x) - log(1 - D(G(z)))."""
    return _bce_real(real, target) + F.softplus(fake).mean()


def minimax_g(fake: Tensor) -> Tensor:
    """The paper's original generator loss, log(1 - D(G(z))): saturates when D wins."""
    return -F.softplus(fake).mean()


def nonsaturating_g(fake: Tensor) -> Tensor:
    """The paper's practical generator loss, -log D(G(z))."""
    return F.softplus(-fake).mean()


def lsgan_d(real: Tensor, fake: Tensor, target: Target = 1.0) -> Tensor:
    """Least squares (Mao et al. 2017): D regresses real to 1 and fake to 0."""
    return 0.5 * ((real - target) ** 2).mean() + 0.5 * (fake**2).mean()


def lsgan_g(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1) ** 2).mean()


def hinge_d(real: Tensor, fake: Tensor, target: Target = 1.0) -> Tensor:
    """Hinge loss (Lim & Ye 2017; SAGAN). Label smoothing does not apply, so target is unused."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def least_squares_belief(output: Tensor) -> Tensor:
    return output.clamp(0, 1)  # D regresses real to 1 and fake to 0


def hinge_belief(output: Tensor) -> Tensor:
    return (output.clamp(-1, 1) + 1) / 2  # D's margins are +1 (real) and -1 (fake)


@dataclass(frozen=True)
class AdversarialLoss:
    d: Callable[..., Tensor]
    g: Callable[[Tensor], Tensor]
    smoothable: bool  # whether one-sided label smoothing means anything for it
    # D's output read as its belief that a sample is real, in [0, 1], 0.5 undecided: what the
    # log reports as D(x) and D(G(z)), and the side of 0.5 on which adaptive augmentation counts.
    belief: Callable[[Tensor], Tensor] = torch.sigmoid


LOSSES: dict[str, AdversarialLoss] = {
    "nonsaturating": AdversarialLoss(bce_d, nonsaturating_g, True),
    "minimax": AdversarialLoss(bce_d, minimax_g, True),
    "lsgan": AdversarialLoss(lsgan_d, lsgan_g, True, least_squares_belief),
    "hinge": AdversarialLoss(hinge_d, hinge_g, False, hinge_belief),
}


def real_targets(n: int, smoothing: float, generator: torch.Generator, device: torch.device) -> Target:
    """Targets for real samples: 1, or uniform in [1 - smoothing, 1]. One-sided (Salimans et al.
    2016): seed 001 smooths the fakes' 0 too, which rewards D for calling fakes a little real."""
    if smoothing == 0:
        return 1.0
    return 1 - smoothing * torch.rand(n, 1, generator=generator, device=device)
