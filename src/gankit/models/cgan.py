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
from gankit.models.gan import IMAGE_TRAIN, Conditioning, MLPConfig, MLPDiscriminator, MLPGenerator
from gankit.models.base import GANFamily, Generator
from gankit.models.layers import one_hot_labels
from gankit.models.registry import register


@dataclass
class CGANConfig(MLPConfig):
    d_hidden: tuple[int, ...] = (512, 512, 512)
    d_dropout: float = 0.4
    conditioning: Literal["multiply", "concat"] = "multiply"
    # Multiply the learning rate of D's and of G's label embeddings (multiply conditioning); the
    # comment above class CGAN says when raising them pays.
    d_embedding_lr_mult: float = 1.0
    g_embedding_lr_mult: float = 1.0

    def validate(self) -> None:
        super().validate()
        for name in ("d_embedding_lr_mult", "g_embedding_lr_mult"):
            if getattr(self, name) <= 0:
                raise GankitError(f"model.{name} must be positive (1 trains the label embeddings at the "
                                  f"network's learning rate), not {getattr(self, name)}.")
            if self.conditioning == "concat" and getattr(self, name) != 1:
                raise GankitError(f"model.{name} acts on label embeddings, which model.conditioning=concat does "
                                  f"not have; set it to 1 or use conditioning=multiply.")


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


def embeddings_apart(network: nn.Module, params: list[nn.Parameter], lr_mult: float) -> list[dict[str, Any]]:
    """Optimizer groups for ``params``: the label embeddings of ``network`` in a group of their own
    whose learning rate is ``lr_mult`` times the others' (one group when that is 1 or there are none)."""
    embeddings = {id(p) for m in network.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    if lr_mult == 1 or not embeddings:
        return [{"params": params}]
    return [{"params": [p for p in params if id(p) not in embeddings]},
            {"params": [p for p in params if id(p) in embeddings], "lr_mult": lr_mult}]


# Faster label embeddings (configs/cgan-one-minute.toml): D's at 10x train.lr_d, G's at 3x
# train.lr_g, and the least-squares loss (as PyTorch-GAN's cgan.py) learn the conditioning sooner.
# The embeddings start as random N(0, 1) vectors, and at lr 6e-4 Adam needs about a thousand steps to
# move them by their own scale. At a fixed 1,300 steps (batch 256, seeds 0 and 1;
# benchmarks/results/cgan_embedding_lr.json), digit accuracy / FID / recall: the defaults 90.8% / 88.8%,
# 16.2 / 19.1, 0.335 / 0.347; D 10x 92.9% / 92.6%, 11.9 / 12.8, 0.357 / 0.376 (30x about the same,
# 100x no better than 1x); + least squares 93.1% / 92.8%, 11.2 / 11.2, 0.390 / 0.419; + G 3x (the
# recipe) 95.8% / 94.6%, 9.0 / 8.2, 0.332 / 0.362. G's multiplier alone trades diversity for accuracy
# (10x: recall 0.19-0.20, a learnt truncation), and so does a matching-aware D (Reed et al. 2016: real
# images with wrong labels shown to D as fakes; recall 0.22-0.29). Timed (benchmarks/quality.py), the
# recipe after 1 minute: 97.2% / 96.0%, FID 8.2 / 7.8 (the defaults 92.9% / 94.0%, 13.5 / 12.1). But it
# costs the long run, so it is not the default: after 5 minutes 96.3%, FID 11.2 against 99.1%, 7.2
# (with train.lr_decay=0.5 93.3%, 24.4; D 10x alone with BCE 98.2%, 10.6).


@register
class CGAN(GANFamily):
    name = "cgan"
    summary = "Label-conditioned MLP GAN (seed 000): one image per requested class."
    Config = CGANConfig
    conditional = True

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        if not info.attributes:
            raise GankitError("cgan needs labelled data; choose a dataset with labels (e.g. mnist) or model gan.")

    @classmethod
    def default_train(cls, data_spec: str) -> dict[str, Any]:
        # Without gan's augmentation: adaptive translation (target 0.4) lowered the 5-minute FID
        # from 7.2 to 6.1 but the digit accuracy from 99.1% to 95.6% (benchmarks/quality.py).
        return dict(IMAGE_TRAIN)

    @classmethod
    def build_generator(cls, cfg: CGANConfig, info: DataInfo) -> Generator:
        condition = CONDITIONINGS[cfg.conditioning](cfg.latent_dim, info.num_classes)
        return MLPGenerator(cfg.latent_dim, info, cfg.g_hidden, condition, cfg.g_batchnorm, cfg.activation)

    def generator_param_groups(self) -> list[dict[str, Any]]:
        return embeddings_apart(self.generator, self.generator_parameters(), self.cfg.g_embedding_lr_mult)

    def discriminator_param_groups(self) -> list[dict[str, Any]]:
        return embeddings_apart(self.discriminator, self.discriminator_parameters(), self.cfg.d_embedding_lr_mult)

    @classmethod
    def build_discriminator(cls, cfg: CGANConfig, info: DataInfo) -> nn.Module:
        condition = CONDITIONINGS[cfg.conditioning](math.prod(info.shape), info.num_classes)
        return MLPDiscriminator(info, cfg.d_hidden, cfg.d_dropout, condition, cfg.d_spectral_norm, cfg.pack,
                                cfg.activation)
