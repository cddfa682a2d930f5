"""CGAN: the label-conditioned MLP GAN (seed 000, Mirza & Osindero 2014; Keras-GAN cgan.py).

G: noise multiplied element-wise by a label embedding of the noise's size, then gan's MLP
generator. D: the flat image multiplied by a label embedding of the image's size, then Dense
512 x3 with LeakyReLU(0.2) and Dropout(0.4). ``conditioning=concat`` instead concatenates the
one-hot labels with the noise and with the image, as in the CGAN paper (seed 002).
Several attributes work too: one embedding each, multiplied together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gankit.data.base import DataInfo
from gankit.errors import GankitError
from gankit.models.gan import IMAGE_TRAIN, MLPConfig, MLPDiscriminator, MLPGenerator
from gankit.models.base import GANFamily, Generator, changed_settings
from gankit.models.layers import Conditioning, one_hot_labels
from gankit.models.registry import register


@dataclass
class CGANConfig(MLPConfig):
    d_hidden: tuple[int, ...] = (512, 512, 512)
    d_dropout: float = 0.4
    conditioning: Literal["multiply", "concat"] = "multiply"
    # Learning-rate multipliers of D's and of G's label embeddings, falling linearly to 1 over the
    # first embedding_lr_mult_steps steps (0: held for the whole run); the comment above class CGAN
    # says why. conditioning=concat has no embeddings, so it refuses them (EMBEDDING_SETTINGS).
    d_embedding_lr_mult: float = 10.0
    g_embedding_lr_mult: float = 3.0
    embedding_lr_mult_steps: int = 2000

    def validate(self) -> None:
        super().validate()
        for name in ("d_embedding_lr_mult", "g_embedding_lr_mult"):
            if getattr(self, name) <= 0:
                raise GankitError(f"model.{name} must be positive (1 trains the label embeddings at the "
                                  f"network's learning rate), not {getattr(self, name)}.")
        if self.embedding_lr_mult_steps < 0:
            raise GankitError(f"model.embedding_lr_mult_steps must be 0 (multipliers held) or a number of steps, "
                              f"not {self.embedding_lr_mult_steps}.")


EMBEDDING_SETTINGS = ("d_embedding_lr_mult", "g_embedding_lr_mult", "embedding_lr_mult_steps")


class MultiplyByEmbedding(Conditioning):
    """x * emb(label): one embedding of x's width per attribute."""

    def __init__(self, width: int, num_classes: tuple[int, ...]):
        super().__init__()
        self.out_dim = width
        self.embeddings = nn.ModuleList(nn.Embedding(k, width) for k in num_classes)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        for i, embedding in enumerate(self.embeddings):
            x = x * embedding(labels[:, i])
        return x


class ConcatOneHot(Conditioning):
    """[x, one_hot(label)] for every attribute."""

    def __init__(self, width: int, num_classes: tuple[int, ...]):
        super().__init__()
        self.num_classes = num_classes
        self.out_dim = width + sum(num_classes)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return torch.cat([x, one_hot_labels(labels, self.num_classes).to(x.dtype)], dim=1)


CONDITIONINGS = {"multiply": MultiplyByEmbedding, "concat": ConcatOneHot}


def embeddings_apart(network: nn.Module, params: list[nn.Parameter], lr_mult: float,
                     fade_steps: int) -> list[dict[str, Any]]:
    """Optimizer groups for ``params``: the label embeddings of ``network`` in a group of their own
    whose learning rate is ``lr_mult`` times the others', falling to 1x over ``fade_steps`` steps when
    that is not 0 (one group when ``lr_mult`` is 1 or there are no embeddings)."""
    embeddings = {id(p) for m in network.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    if lr_mult == 1 or not embeddings:
        return [{"params": params}]
    return [{"params": [p for p in params if id(p) not in embeddings]},
            {"params": [p for p in params if id(p) in embeddings], "lr_mult": lr_mult, "lr_mult_steps": fade_steps}]


# Faster label embeddings, at first. They start as random N(0, 1) vectors, and at lr 6e-4 Adam needs
# about a thousand steps to move them by their own scale, so D learns late what each digit looks like.
# So D's embeddings learn at 10x train.lr_d and G's at 3x train.lr_g, falling linearly to 1x over the
# first 2,000 steps (benchmarks/results/cgan_embedding_lr.json has every run).
#   At a fixed 1,300 steps (seeds 0 and 1), digit accuracy / FID / recall: 1x 90.8% / 88.8%, 16.2 /
#   19.1, 0.335 / 0.347; D 10x 92.9% / 92.6%, 11.9 / 12.8; D 10x + G 3x + least squares 95.8% / 94.6%,
#   9.0 / 8.2, 0.332 / 0.362. G's multiplier alone trades diversity for accuracy (10x: recall 0.19-0.20),
#   as does a matching-aware D (Reed et al. 2016; recall 0.22-0.29).
#   Held for the whole run with least squares (session 9), the multipliers cost long runs: FID 11.2
#   after 5 minutes against 7.2 at 1x. FID every 900 of 8,100 steps (seed 0), falling over 4,000 steps:
#   with least squares 6.8 at 2,700 rising to 10.9, with BCE 6.3 at 2,700 rising to 8.5 (seed 1: 8.4);
#   falling over 2,000 steps with BCE, 5.2 at 2,700 and 6.8 at the end (1x: 7.5).


@register
class CGAN(GANFamily):
    name = "cgan"
    summary = "Label-conditioned MLP GAN (seed 000): one image per requested class."
    Config = CGANConfig
    generator_settings = ("activation",)
    conditional = True

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        if not info.attributes:
            raise GankitError("cgan needs labelled data; choose a dataset with labels (e.g. mnist) or model gan.")

    @classmethod
    def ignored_settings(cls, cfg: CGANConfig) -> dict[str, list[str]]:
        reasons = super().ignored_settings(cfg)
        unused = changed_settings(cfg, CGANConfig(), EMBEDDING_SETTINGS) if cfg.conditioning == "concat" else []
        if unused:
            reasons["model.conditioning=concat has no label embeddings"] = unused
        elif cfg.d_embedding_lr_mult == cfg.g_embedding_lr_mult == 1 and \
                (unused := changed_settings(cfg, CGANConfig(), ("embedding_lr_mult_steps",))):
            reasons["both label-embedding multipliers are 1, so there is nothing to fade"] = unused
        return reasons

    @classmethod
    def default_train(cls, data_spec: str) -> dict[str, Any]:
        # Without gan's augmentation: adaptive translation (target 0.4) lowered the 5-minute FID
        # from 7.2 to 6.1 but the digit accuracy from 99.1% to 95.6% (benchmarks/quality.py, before the
        # embedding multipliers).
        return dict(IMAGE_TRAIN)

    @classmethod
    def build_generator(cls, cfg: CGANConfig, info: DataInfo) -> Generator:
        condition = CONDITIONINGS[cfg.conditioning](cfg.latent_dim, info.num_classes)
        return MLPGenerator(cfg.latent_dim, info, cfg.g_hidden, condition, cfg.g_batchnorm, cfg.activation)

    def generator_param_groups(self) -> list[dict[str, Any]]:
        return embeddings_apart(self.generator, self.generator_parameters(), self.cfg.g_embedding_lr_mult,
                                self.cfg.embedding_lr_mult_steps)

    def discriminator_param_groups(self) -> list[dict[str, Any]]:
        return embeddings_apart(self.discriminator, self.discriminator_parameters(), self.cfg.d_embedding_lr_mult,
                                self.cfg.embedding_lr_mult_steps)

    @classmethod
    def build_discriminator(cls, cfg: CGANConfig, info: DataInfo) -> nn.Module:
        condition = CONDITIONINGS[cfg.conditioning](math.prod(info.shape), info.num_classes)
        return MLPDiscriminator(info, cfg.d_hidden, cfg.d_dropout, condition, cfg.d_spectral_norm, cfg.pack,
                                cfg.activation)
