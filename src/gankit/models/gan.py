"""GAN: the original MLP generative adversarial network (seed 003, Goodfellow et al. 2014).

G: z (100-d Gaussian) -> Dense 256/512/1024, each LeakyReLU(0.2) + BatchNorm -> Dense + tanh.
D: flattened sample -> Dense 512/256 with LeakyReLU(0.2) -> 1 logit.
On vector data (the toy distributions) the same networks end in a linear layer instead of tanh.

Toy data (``--data toy:...``) gets its own defaults (``TOY_MODEL``, ``TOY_TRAIN`` below): small
equal networks, a 2-d latent, no BatchNorm in G, PacGAN packing of 2, batch 512, lr 5e-4, 5,000
steps; the 25-mode grid needs a 64-d latent and 80,000 steps at lr 2e-4 (``GRID_MODEL``,
``GRID_TRAIN``). Stabiliser options for any data: ``model.d_spectral_norm``, ``model.pack``,
``model.activation`` (the seed networks keep LeakyReLU, no spectral norm, no packing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn

from gankit.data.base import DataInfo
from gankit.errors import GankitError
from gankit.models.base import GANConfig, GANFamily, Generator, StepContext
from gankit.models.layers import (DROPOUT_RANGE, Conditioning, mlp_discriminator_body, mlp_generator_body,
                                  with_activation, with_spectral_norm)
from gankit.models.registry import register


@dataclass
class MLPConfig(GANConfig):
    g_hidden: tuple[int, ...] = (256, 512, 1024)
    d_hidden: tuple[int, ...] = (512, 256)
    d_dropout: float = 0.0
    g_batchnorm: bool = True  # the seeds' BatchNorm in G; toy data is more precise without it
    activation: Literal["leaky_relu", "relu"] = "leaky_relu"  # hidden layers of G and D (seeds: LeakyReLU 0.2)
    d_spectral_norm: bool = False  # spectral normalisation on every layer of D (Miyato et al. 2018)
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges this many samples concatenated; 1 is off

    def validate(self) -> None:
        super().validate()
        if self.pack < 1:
            raise GankitError(f"model.pack must be at least 1, not {self.pack}.")
        for key, widths in (("g_hidden", self.g_hidden), ("d_hidden", self.d_hidden)):
            if not widths or min(widths) < 1:
                raise GankitError(f"model.{key} must list one or more layer widths of at least 1, e.g. 256,512, "
                                  f"not {','.join(map(str, widths)) or 'nothing'}.")
        if self.d_dropout != 0 and not DROPOUT_RANGE[0] <= self.d_dropout <= DROPOUT_RANGE[1]:
            raise GankitError(f"model.d_dropout must be 0 (off) or between {DROPOUT_RANGE[0]} and {DROPOUT_RANGE[1]} "
                              f"(it is rounded to a multiple of 1/256), not {self.d_dropout}.")


class MLPGenerator(Generator):
    def __init__(self, latent_dim: int, info: DataInfo, hidden: tuple[int, ...],
                 condition: Conditioning | None = None, batchnorm: bool = True,
                 activation: str = "leaky_relu"):
        super().__init__()
        self.latent_dim, self.info, self.condition = latent_dim, info, condition
        in_dim = condition.out_dim if condition is not None else latent_dim
        self.net = with_activation(mlp_generator_body(in_dim, hidden, math.prod(info.shape), batchnorm), activation)
        if not info.is_image:
            self.net[-1] = nn.Identity()  # vector data is not confined to [-1, 1]

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.condition(z, labels) if self.condition is not None else z
        # z.shape[0], not len(z): len() must return a plain int, which would freeze the batch size
        # of an exported (traced) graph.
        return self.net(h).view(z.shape[0], *self.info.shape)


class MLPDiscriminator(nn.Module):
    """Dense layers to one logit; optionally spectrally normalised, optionally packed.

    With ``pack`` m > 1 (PacGAN) D's input is m samples side by side, (N/m, m * d), which the
    family builds from a batch (``GAN.pack``); D then sees the spread of a group and can punish
    a generator whose samples all look alike. Given single samples (N, d) a packed D scores
    each one as a pack of m copies of itself: one logit per point, for the pictures and metrics.
    """

    def __init__(self, info: DataInfo, hidden: tuple[int, ...], dropout: float = 0.0,
                 condition: Conditioning | None = None, spectral_norm: bool = False, pack: int = 1,
                 activation: str = "leaky_relu"):
        super().__init__()
        if pack > 1 and condition is not None:
            raise GankitError("model.pack does not work with a conditional discriminator; set it to 1.")
        self.condition, self.pack = condition, pack
        self.sample_dim = math.prod(info.shape)
        in_dim = condition.out_dim if condition is not None else self.sample_dim * pack
        self.net = with_activation(mlp_discriminator_body(in_dim, hidden, dropout), activation)
        if spectral_norm:
            with_spectral_norm(self.net)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = x.flatten(1)
        if self.pack > 1 and h.shape[1] == self.sample_dim:
            h = h.repeat(1, self.pack)
        if self.condition is not None:
            h = self.condition(h, labels)
        return self.net(h)


@register
class GAN(GANFamily):
    name = "gan"
    summary = "MLP GAN (seed 003): unconditional, images or vector data."
    Config = MLPConfig
    generator_settings = ("activation",)  # the same weights through ReLU are another generator

    @classmethod
    def default_config(cls, data_spec: str) -> MLPConfig:
        if is_toy(data_spec):
            # 2-D data: the image-sized networks over-fit the noise and collapse; small equal
            # networks with a 2-d latent (as in the VEEGAN/PacGAN toy experiments) cover the modes.
            return MLPConfig(**{**TOY_MODEL, **(GRID_MODEL if is_grid(data_spec) else {})})
        return MLPConfig(**GAN_IMAGE_MODEL)

    @classmethod
    def default_train(cls, data_spec: str) -> dict[str, Any]:
        if is_toy(data_spec):
            return dict(GRID_TRAIN) if is_grid(data_spec) else dict(TOY_TRAIN)
        return dict(GAN_IMAGE_TRAIN)

    @classmethod
    def build_generator(cls, cfg: MLPConfig, info: DataInfo) -> Generator:
        return MLPGenerator(cfg.latent_dim, info, cfg.g_hidden, batchnorm=cfg.g_batchnorm,
                            activation=cfg.activation)

    @classmethod
    def build_discriminator(cls, cfg: MLPConfig, info: DataInfo) -> nn.Module:
        return MLPDiscriminator(info, cfg.d_hidden, cfg.d_dropout, spectral_norm=cfg.d_spectral_norm,
                                pack=cfg.pack, activation=cfg.activation)

    # --- PacGAN: D's losses on packs of m samples --------------------------------------------
    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.cfg.pack:
            raise GankitError(f"train.batch_size ({batch_size}) must be a multiple of model.pack ({self.cfg.pack}).")

    def pack(self, x: Tensor) -> Tensor:
        """(N, ...) samples as (N/m, m * d) packs of m consecutive ones; unchanged when m is 1."""
        m = self.cfg.pack
        if m == 1:
            return x
        self.check_batch(len(x))
        return x.reshape(len(x) // m, -1)

    def d_loss(self, real: Tensor, real_labels: Tensor | None, fake: Tensor,
               fake_labels: Tensor | None, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        return super().d_loss(self.pack(real), real_labels, self.pack(fake), fake_labels, ctx)

    def g_loss(self, fake: Tensor, fake_labels: Tensor | None, ctx: StepContext) -> Tensor:
        return super().g_loss(self.pack(fake), fake_labels, ctx)


def is_toy(data_spec: str) -> bool:
    return data_spec.strip().startswith("toy:")


def is_grid(data_spec: str) -> bool:
    return data_spec.strip().partition(",")[0] == "toy:grid25"


# The toy defaults, tuned on toy:ring8 (benchmarks/modes.py). Seeds 0/1/2: 8/8 modes each, 82.2%,
# 83.4%, 78.5% high quality, 38-40 s of one busy CPU core each. How we got there, seed 0, 2,500 EMA samples:
#   BatchNorm in G off: 30% -> 52% high quality (BN's batch statistics blur the modes);
#   batch 512 and lr 5e-4 instead of 256 and 2e-4: 52% -> 63%; 3,000 steps: 70% (but 6/8 modes);
#   PacGAN packing of 2: all 8 modes back and 76% at 3,000 steps, 80% at 4,000, 82% at 5,000.
#   No help: ReLU (dead units: 0 modes), betas (0, 0.9), lr_d 4x lr_g, latent 8, spectral norm,
#   hinge or lsgan, d_steps 2 or 5, pack 4, widths 256. EMA sampling is most of the precision:
#   the live generator of the same run scores far lower (often 13-40%).
TOY_MODEL: dict[str, Any] = {"latent_dim": 2, "g_hidden": (128, 128, 128), "d_hidden": (128, 128, 128),
                             "g_batchnorm": False, "pack": 2}
# Images (MNIST): the seeds train at batch 64 with lr 2e-4. At equal wall-clock time a larger
# batch with a larger learning rate learns faster here (bf16 matrix products amortise better):
# after 90 s on 2 CPU cores, cgan reached FID 19.6 / 89% digit accuracy at batch 64 / 2e-4,
# 10.7 / 94% at 256 / 4e-4 and 8.7 / 96% at 256 / 6e-4 (12.6 / 94% at 512 / 6e-4).
# 5,000 steps take about 3.5 minutes there. train.lr_decay=0.5 was measured and left off: it
# slowed the first minutes and did not stop the unconditional gan's FID rising after ~2 minutes
# (the gan's own default below uses it, with augmentation against that rise).
IMAGE_TRAIN: dict[str, Any] = {"batch_size": 256, "lr_g": 6e-4, "lr_d": 6e-4, "steps": 5000}
# The unconditional gan on images: a smaller batch at a higher learning rate falling to 0 over the
# last half of the budget, the hinge loss, adaptive translation of what D sees (ADA, target 0.4;
# models/augment.py), and Adam without momentum (beta1 0, beta2 0.99; SAGAN, BigGAN and StyleGAN2
# also train with beta1 0). FID (digits features, 5,000 samples) on 2 CPU cores, benchmarks/quality.py.
#   Adam (session 8, results/gan_adam_betas.json). At a fixed 3,200 steps (seeds 30-32, means):
#   betas (0.5, 0.999) at lr 4e-4, the previous default, 23.3; (0, 0.999) 20.0; (0, 0.99) 18.7;
#   (0, 0.9) 18.2; then with (0, 0.99): lr 3e-4 23.6, 6e-4 15.3, 8e-4 16.6, 1e-3 19.0. With
#   momentum 0.8 the game diverged (FID 88-191 after one minute). At one minute (seeds 20-24, run
#   one after another on a day when a minute gave 2,600-3,700 steps, not 3,700-4,300): (0.5, 0.999)
#   at 4e-4 mean 25.3, (0, 0.999) 21.2, (0, 0.99) 20.7. The default, (0, 0.99) at 6e-4: 16.7, 11.7,
#   13.6, 13.7, 15.5, 15.8 at 1 minute (seeds 0, 20-24, 2,958-4,067 steps; mean 14.5) against the
#   plain loop's 18.0, 19.9, 17.4 at 5 minutes that day; 10.0 at 2 minutes (seed 0); 7.1 and 7.1 at 5
#   (seeds 0, 1), where lr 4e-4 with the same betas gave 5.6 and 6.0: the higher rate buys the first
#   minutes with a little of the long run.
#   With betas (0.5, 0.999) and lr 4e-4 (the default before session 8): 20.1, 17.5, 17.6, 16.1, 23.9
#   at 1 minute (seeds 0-4; the last run made 3,102 steps, the others about 4,000), 19.4, 18.3, 19.5,
#   24.7, 24.1 a day later (2,975-3,912 steps) and 19.0, 19.0, 19.3 later that day (seeds 10-12),
#   against the plain loop's 18.1, 15.4, 18.5 at 5 minutes (results/gan_one_minute_seeds.json); 10.4
#   at 2 minutes, 6.0 and 5.6 at 5 minutes (seeds 0, 1).
#   With those betas, no better on seeds 10-12: no augmentation (mean 18.4 against 19.1), lr 5e-4
#   (18.7), lr 6e-4 (20.4); far worse: PacGAN packing of 2 (51.1 and 47.3, seeds 0 and 1).
#   The EMA's horizon is right for one minute: scoring averages of one run side by side, the live
#   generator scored 28.0 against the EMA's 22.5, and averages whose mean age is 5%, 25% or 50% of
#   the steps so far (the EMA's warm-up makes it about 11%) scored 27.2, 24.0 and 30.6 against its
#   24.5. Its BatchNorm statistics, copied from the live G, will do: recomputed from the average's
#   own weights they moved one run from 24.9 to 24.5.
#   The previous default (batch 256, lr 3e-4, BCE, no augmentation): 28.9 / 37.1 at 1 minute, 8.5 at 5.
# How we got there. At 6e-4 and batch 256 the FID peaked near 5,000 steps, then rose (quick FID every
# 500 steps: 9.4 at 5,000, 10.5-12.3 by 8,000); 3e-4 kept improving to 7.4 at 8,500. One-minute budgets
# favour smaller batches at higher rates (1-minute FID: batch 256 lr 6e-4 + lr_decay 0.5 23.2; batch 64
# lr 3e-4 + decay 21.7; batch 512 lr 1e-3 + decay 61.6; batch 128 + decay: lr 3e-4 25.2, 4e-4 15.8-20.9
# over 4 runs, 6e-4 17.7, + hinge 16.2-19.6 (mean 18.1 over 4 runs); no help from beta2 0.99 or D
# dropout 0.3). Those recipes degrade in longer runs: batch 128 + decay + hinge reached 31.1 at 5
# minutes. Quick FID every 1,000 steps of that run showed why: the best FID (7.5) came at 11,000 steps,
# when E[sign(D(real))] had climbed back to 0.66 from 0.15; it then rose to 19.1 by 17,000 steps with
# E[sign(D(real))] at 0.81. D learns the 5,000 digits by heart. Translating every image D sees fixed
# the long run (9.3 at 5 minutes) but slowed the first minute (39.0); adaptive translation keeps the
# early speed: target 0.6 gave 23.1 / 10.4 / 13.9 at 1 / 2 / 5 minutes, 0.4 20.1 / 6.0 at 1 / 5;
# translation + cutout at target 0.6: 14.8 / 18.7. Repeated one-minute runs of one setting differ by up
# to 5 FID points, and their step counts by about 15%.
GAN_IMAGE_MODEL: dict[str, Any] = {"loss": "hinge", "augment": "translation", "augment_target": 0.4}
GAN_IMAGE_TRAIN: dict[str, Any] = {"batch_size": 128, "lr_g": 6e-4, "lr_d": 6e-4, "lr_decay": 0.5, "steps": 20000,
                                   "beta1": 0.0, "beta2": 0.99}
TOY_TRAIN: dict[str, Any] = {"batch_size": 512, "lr_g": 5e-4, "lr_d": 5e-4, "steps": 5000}
# toy:grid25 needs many more steps than ring8, not another architecture. With the ring8 recipe
# every setting tried (packing 1 or 2, BatchNorm, widths up to 512, lr 2e-4..1e-3, latent 2..256,
# lr_g 1e-3 with lr_d 1e-4, 2,000-5,000 steps, lsgan) ended with 0-1 of 25 modes and 1-4% high
# quality: samples spread over the square while D stays almost flat. A wider D with 5 D-steps
# reached 6 modes and 52% in 3,000 steps. What works is time: a 64-d latent, batch 256, lr 2e-4
# (seed 0, one busy core): 0 modes at 10,000 steps, 8 at 20,000 (samples on the grid's lines),
# 16 at 30,000, 23 at 50,000, all 25 with 68% high quality at 60,000 (5 minutes). Over 5 seeds
# (benchmarks/modes.py) 60,000 steps gave 24/20/25/25/25 modes (mean 23.8); 80,000 steps (about
# 6 minutes) brought seed 1 from 20 to 25 modes.
GRID_MODEL: dict[str, Any] = {"latent_dim": 64}
GRID_TRAIN: dict[str, Any] = {"batch_size": 256, "lr_g": 2e-4, "lr_d": 2e-4, "steps": 80000,
                              "sample_every": 10000, "checkpoint_every": 10000}
