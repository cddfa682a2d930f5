"""GAN: the original MLP generative adversarial network (seed 003, Goodfellow et al. 2014).

G: z (100-d Gaussian) -> Dense 256/512/1024, each LeakyReLU(0.2) + BatchNorm -> Dense + tanh.
D: flattened sample -> Dense 512/256 with LeakyReLU(0.2) -> 1 logit.
On vector data (the toy distributions) the same networks end in a linear layer instead of tanh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from gankit.data.base import DataInfo
from gankit.models.base import GANConfig, GANFamily, Generator
from gankit.models.layers import mlp_discriminator_body, mlp_generator_body
from gankit.models.registry import register


@dataclass
class MLPConfig(GANConfig):
    g_hidden: tuple[int, ...] = (256, 512, 1024)
    d_hidden: tuple[int, ...] = (512, 256)
    d_dropout: float = 0.0


class Conditioning(nn.Module):
    """Combines a vector with labels; ``out_dim`` is the width of the result."""

    out_dim: int

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class MLPGenerator(Generator):
    def __init__(self, latent_dim: int, info: DataInfo, hidden: tuple[int, ...],
                 condition: Conditioning | None = None):
        super().__init__()
        self.latent_dim, self.info, self.condition = latent_dim, info, condition
        in_dim = condition.out_dim if condition is not None else latent_dim
        self.net = mlp_generator_body(in_dim, hidden, math.prod(info.shape))
        if not info.is_image:
            self.net[-1] = nn.Identity()  # vector data is not confined to [-1, 1]

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.condition(z, labels) if self.condition is not None else z
        return self.net(h).view(len(z), *self.info.shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, info: DataInfo, hidden: tuple[int, ...], dropout: float = 0.0,
                 condition: Conditioning | None = None):
        super().__init__()
        self.condition = condition
        in_dim = condition.out_dim if condition is not None else math.prod(info.shape)
        self.net = mlp_discriminator_body(in_dim, hidden, dropout)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = x.flatten(1)
        if self.condition is not None:
            h = self.condition(h, labels)
        return self.net(h)


@register
class GAN(GANFamily):
    name = "gan"
    summary = "MLP GAN (seed 003): unconditional, images or vector data."
    Config = MLPConfig

    @classmethod
    def default_config(cls, data_spec: str) -> MLPConfig:
        if data_spec.strip().startswith("toy:"):
            # 2-D data: the image-sized networks over-fit the noise and collapse; small equal
            # networks with a 2-d latent (as in the VEEGAN/PacGAN toy experiments) cover the modes.
            return MLPConfig(latent_dim=2, g_hidden=(128, 128, 128), d_hidden=(128, 128, 128))
        return MLPConfig()

    @classmethod
    def build_generator(cls, cfg: MLPConfig, info: DataInfo) -> Generator:
        return MLPGenerator(cfg.latent_dim, info, cfg.g_hidden)

    @classmethod
    def build_discriminator(cls, cfg: MLPConfig, info: DataInfo) -> nn.Module:
        return MLPDiscriminator(info, cfg.d_hidden, cfg.d_dropout)
