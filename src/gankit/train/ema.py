"""An exponential moving average of the generator's weights.

Sampling from the average instead of the live generator is one of the cheapest quality gains
in GAN training (Yazici et al. 2019; StyleGAN's G_ema): it smooths the oscillation of the
adversarial game. Buffers (BatchNorm statistics) are copied from the live generator.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = [b for b in self.model.buffers() if b.dtype.is_floating_point]

    @torch.no_grad()
    def update(self, live: nn.Module, step: int) -> None:
        # A short warm-up: early weights are noise, so the average starts by following closely.
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self._params, list(live.parameters()), 1 - decay)
        if self._buffers:  # BatchNorm statistics, when the generator has any
            torch._foreach_copy_(self._buffers, [b for b in live.buffers() if b.dtype.is_floating_point])
