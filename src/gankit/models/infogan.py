"""InfoGAN: codes the generator learns to express without labels (seed 002, Chen et al. 2016).

G's input is 62-d Gaussian noise followed by the codes c: one-hot categorical codes (default one
with 10 values) and continuous codes uniform in [-1, 1] (default 2). Codes are named c1, c2, ...
numbered through the categorical codes first, then the continuous ones; with the defaults c1 is
the 10-valued code and c2, c3 the continuous ones. ``sample_latent`` returns the whole input,
so the codes can always be read back from a latent (``code_values``).

Networks (the paper's MNIST architecture): G: dense 1024 -> dense 128 x H/4 x W/4 (BatchNorm +
ReLU) -> 4x4 transposed convolution to 64 channels (stride 2, BatchNorm + ReLU) -> 4x4
transposed convolution to the image (stride 2), tanh. D: 4x4 conv 64, stride 2, LeakyReLU(0.1)
-> 4x4 conv 128 + BatchNorm -> dense 1024 + BatchNorm, then two heads on that one body pass:
D's real/fake logit and Q's (dense 128 + BatchNorm -> the codes' logits, means and log-variances).

The information loss L_I: cross-entropy on Q's logits for each categorical code, and for each
continuous code the Gaussian negative log-likelihood without its constant, 0.5 (log var + (c -
mean)^2 / var) with a mean and a log-variance from Q (``learn_variance``, the default), or 0.5 (c -
mean)^2 with unit variance (the paper's code's ``fix_std``); summed over codes, averaged over the
batch, weighed by lambda_cat and lambda_cont. The paper weighs continuous codes by a smaller lambda
because their L_I "involves differential entropy": a Gaussian whose variance Q learns. With unit
variance, lambda_cont 0.1 is too weak for G to use the continuous codes at all (``continuous_r2``
below 0.04 in five runs); with the learnt variance Q reads 85-95% of each code's variance back, one
code showing the slant and the other the width. G's loss adds L_I, and G and Q minimise it together
in G's update, as in the paper's min_{G,Q} max_D V(D, G) - lambda L_I: Q's head belongs to G's optimizer
(``trained_with_generator``), and D's body and real/fake head learn the adversarial loss alone
(``q_update="g"``).

G's update adds one term the paper does not have (``q_augment``, on by default): the categorical
part of L_I again, on a moved copy of each fake (rotated by up to 20 degrees, zoomed by up to 10%
and shifted by up to 2 pixels of 28, per image: ``augment.random_affine``). Without it, runs often
settled on codes that split digits by pose: two codes each drew both 7s and 9s, told apart by
slant, while the noise chose the digit. A code that must survive a change of pose cannot live in
the pose, so it takes the digit; the continuous codes are left out of the term, as they are meant
to hold the pose. On the AMX Xeon, 4,000 steps with it (and unit variance) gave code recovery of
99.9-100% and Q accuracy of 95.9-97.0% for seeds 0-5, against 10-99.9% and 18-94% without it, at
about a quarter more time per step; with the learnt variance (the default), 98.7-100% and 94.9-96.7%
for seeds 0-4 and 93.2% / 89.4% for seed 5 (README, ACGAN and InfoGAN). ``model.q_augment=0`` trains
the paper's objective alone.

``q_update="d"`` is the scheme of the paper's released code, and was gankit's until measured: D's
loss adds L_I on the fakes, so Q learns at D's learning rate and D's body learns to read the codes
off fakes too. On the embedded digits (batch 64, one thread, seed 0) it left the categorical code
far from the digit class: code recovery 57% and Q's accuracy on real digits 58% after 2,000 steps,
against 86% and 82% with "g". Training Q in both updates was worse than either (26% at 1,500 steps).
A likely reason (not proven): a body trained on L_I can read the codes from any mark G leaves on its
fakes, not only from the digit's shape, so the code need not become the digit. In single runs, bf16
autocast did no harm (fp32: 55% at 1,000 steps against 73%, at 1.8x the step time), nor did the EMA
generator (within 3 points of the live one), and lambda_cat 2 learnt slower than 1 (52% at 1,500
steps against 85%). The default run (4,000 steps, 14.6 minutes on one thread) reached 90.0% code
recovery and 85.4% Q accuracy: better than the 38.8% before, short of the paper's 95%. Training on
to 6,500 steps gave 90.6% and 86.7%: the code's assignment of digits settles early. Batch 128
(the default since) reached 99.9% code recovery and 93.6% Q accuracy in 4,000 steps for seed 0, but
95.7% / 88.5% for seed 1 and 86.1% / 81.8% for seed 2, where two codes share two digits (7 and 9; 0
and 8). No better: a learning-rate decay over the last half (seed 0: 99.8% / 92.5%), batch 256 (seed 1:
73.2% / 70.8% in the 2,040 steps that fit in 15 minutes). lambda_cat 2 helped seed 2 a little
(88.8% / 83.7%) but hurt seed 1 (85.5% / 80.3%). Translating what D sees (``model.augment=translation``,
seed 0) gave 99.0% / 90.4%, though D's features probed better (89.4% / 96.2% with 100 / 1,000 labels,
against 86.1% / 95.2%). Fitting Q's head alone to a finished generator (1,000 more steps, D's body
frozen) left Q's accuracy on real digits where it was (92.5%), so Q's errors on real digits come
from what G draws for each class, not from Q lagging behind G. Nor can a label-free score pick the
good runs among restarts: over 7 finished runs, Q's mean confidence on real digits (0.952-0.973)
and the balance of its clusters did not rank them by Q accuracy (70.8-92.5%). Two D steps per G
step were worse (seed 2: 75.1% / 73.4% in 3,930 steps), and so was dropping the continuous codes
(seed 2: 82.7% / 79.3%): they are not what splits the digits between codes. Nor did Q's head
at its own learning rate help (seed 2: 85.4% / 81.1% at 2e-4, 81.8% / 75.8% at 3e-3).
Which seed wins depends on the machine: on an AMX Xeon, whose bf16 kernels round differently,
seeds 0/1/2 gave 78.4% / 74.3%, 99.9% / 94.1% and 81.7% / 77.7%. There, 8,000 steps (seed 1: 96.9% /
91.5%), noise with standard deviation 0.1 (seeds 1/2: 79.5% / 73.8%, 69.1% / 69.0%) and the DCGAN
initialisation (89.5% / 82.7%, 90.0% / 86.0%) were no better (README, ACGAN and InfoGAN).
Seeds 3-5 there gave 10.0% / 18.0% (a failed game: G drew a checkerboard from the start and D won),
88.8% / 82.2% and 80.4% / 75.8%. lambda_cont 1, the weight the paper's code gives every code, made
seeds 0-5 steadier (83-92% / 78-87%, means 88.1% / 83.1% against 73.2% / 70.4%) with no failed game
but no run as good as seed 1's; the default stays at the issue's 0.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.data.base import DataInfo
from gankit.errors import GankitError
from gankit.models.augment import random_affine
from gankit.models.base import GANConfig, GANFamily, Generator, StepContext, changed_settings
from gankit.models.layers import conv_down_block, conv_up_block
from gankit.models.registry import register

TRAVERSE_RANGE = (-2.0, 2.0)  # the paper sweeps continuous codes past their [-1, 1] prior
UNCATEGORISED_ROWS = 10  # rows of a continuous traversal when there is no categorical code
SLOPE = 0.1  # InfoGAN's LeakyReLU


@dataclass
class InfoGANConfig(GANConfig):
    latent_dim: int = 62  # the noise only; G's input adds the codes' width
    categorical: tuple[int, ...] = (10,)  # number of values of each categorical code
    continuous: int = 2  # continuous codes, uniform in [-1, 1]
    lambda_cat: float = 1.0
    lambda_cont: float = 0.1
    learn_variance: bool = True  # Q predicts a log-variance per continuous code (False: variance 1)
    dense: int = 1024  # the dense layers of G and D
    channels: int = 64  # the larger conv map's channels; the smaller has twice as many
    q_hidden: int = 128
    # Which update trains Q on L_I: "g" (default) G's, at G's learning rate, D's body and head
    # staying adversarial only; "d" D's, at D's learning rate, with D's body trained on L_I too.
    q_update: Literal["g", "d"] = "g"
    # Q must also read each categorical code off a moved copy of every fake in G's update: rotated
    # by up to this many degrees, scaled by up to 10% and shifted by up to 2 pixels of 28. 0: off.
    q_augment: float = 20.0

    def validate(self) -> None:
        super().validate()
        if not self.categorical and self.continuous == 0:
            raise GankitError("InfoGAN needs at least one code; set model.categorical or model.continuous.")
        if self.lambda_cat == 0 and self.lambda_cont == 0:
            raise GankitError("model.lambda_cat and model.lambda_cont are both 0, so nothing ties the codes to the "
                              "images; give one a positive weight, or train dcgan for a GAN without codes.")
        for k in self.categorical:
            if k < 2:
                raise GankitError(f"model.categorical values must each be at least 2, not {k}.")
        non_negative = {"continuous": self.continuous, "lambda_cat": self.lambda_cat,
                        "lambda_cont": self.lambda_cont}
        for key, value in non_negative.items():
            if value < 0:
                raise GankitError(f"model.{key} must not be negative, not {value}.")
        if not 0 <= self.q_augment <= 180:
            raise GankitError("model.q_augment is a rotation in degrees between 0 (off) and 180, not "
                              f"{self.q_augment}.")
        for key, value in {"dense": self.dense, "channels": self.channels, "q_hidden": self.q_hidden}.items():
            if value < 1:
                raise GankitError(f"model.{key} must be at least 1, not {value}.")


# --- the codes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Code:
    name: str
    start: int  # its first column in the code vector (and in Q's output)
    values: int  # the number of values of a categorical code; 0 for a continuous one

    @property
    def categorical(self) -> bool:
        return self.values > 0

    @property
    def width(self) -> int:
        return self.values or 1

    def describe(self) -> str:
        return f"{self.name} (categorical, 0-{self.values - 1})" if self.categorical else f"{self.name} (continuous)"


CODE_LIMIT = 1e6  # continuous codes given by hand; far outside the prior, G's output means nothing anyway


class LatentCodes:
    """The layout of the code vector [one-hot categorical codes..., continuous codes...].

    Q's output has the same layout, with logits in place of one-hot codes and means in place of
    continuous codes, followed by the log-variances when ``learn_variance``.
    """

    def __init__(self, categorical: tuple[int, ...], continuous: int, learn_variance: bool = False):
        self.learn_variance = learn_variance
        self.codes: list[Code] = []
        start = 0
        for k in (*categorical, *[0] * continuous):
            self.codes.append(Code(f"c{len(self.codes) + 1}", start, k))
            start += self.codes[-1].width
        self.width = start
        self.categorical = [c for c in self.codes if c.categorical]
        self.continuous = [c for c in self.codes if not c.categorical]
        self.q_width = self.width + (len(self.continuous) if learn_variance else 0)

    def lookup(self, name: str) -> Code:
        for code in self.codes:
            if code.name == name.strip():
                return code
        listing = ", ".join(c.describe() for c in self.codes)
        raise GankitError(f"Unknown code {name!r}; this model's codes are {listing}.")

    def value(self, name: str, value: str | int | float) -> int | float:
        """``value`` (a number or its text) checked against code ``name``'s range."""
        code = self.lookup(name)
        text = str(value).strip()
        if code.categorical:
            try:
                index = int(text)
            except ValueError:
                index = -1
            if not 0 <= index < code.values:
                raise GankitError(f"Code {code.name} is categorical with values 0-{code.values - 1}, "
                                  f"not {value!r}; give one of those integers.")
            return index
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not abs(number) <= CODE_LIMIT:  # NaN too; float32 holds no more than about 3e38
            raise GankitError(f"Code {code.name} is continuous and needs a number between -{CODE_LIMIT:,.0f} and "
                              f"{CODE_LIMIT:,.0f} such as 0.5 (its prior is -1 to 1), not {value!r}.")
        return number

    def sample(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        """n code vectors drawn from the prior: uniform categories, continuous codes uniform in [-1, 1]."""
        parts = [F.one_hot(torch.randint(c.values, (n,), generator=generator, device=device), c.values).float()
                 for c in self.categorical]
        parts.append(torch.rand(n, len(self.continuous), generator=generator, device=device) * 2 - 1)
        return torch.cat(parts, dim=1)

    @staticmethod
    def assign(codes: Tensor, code: Code, value: int | float) -> None:
        """Set ``code`` to ``value`` in every vector of ``codes`` (..., width), in place."""
        if code.categorical:
            codes[..., code.start:code.start + code.values] = 0
            codes[..., code.start + int(value)] = 1
        else:
            codes[..., code.start] = value

    def values(self, codes: Tensor) -> dict[str, Tensor]:
        """Each code's values in ``codes`` (N, width): category indices or continuous values."""
        return {c.name: codes[:, c.start:c.start + c.values].argmax(1) if c.categorical else codes[:, c.start]
                for c in self.codes}

    def categorical_loss(self, q: Tensor, codes: Tensor) -> Tensor:
        """The categorical codes' part of L_I, unweighted: cross-entropy on Q's logits themselves
        (no softmax first), summed over the categorical codes."""
        loss = q.new_zeros(())
        for c in self.categorical:
            target = codes[:, c.start:c.start + c.values].argmax(1)
            loss = loss + F.cross_entropy(q[:, c.start:c.start + c.values], target)
        return loss

    def info_loss(self, q: Tensor, codes: Tensor, lambda_cat: float, lambda_cont: float) -> Tensor:
        """lambda-weighted L_I of Q's output ``q`` (N, q_width) for the codes G was given (N, width)."""
        loss = lambda_cat * self.categorical_loss(q, codes)
        if self.continuous:
            first, m = self.continuous[0].start, len(self.continuous)
            mean, target = q[:, first:first + m], codes[:, first:first + m]
            variance = q[:, first + m:first + 2 * m].exp() if self.learn_variance else torch.ones_like(mean)
            loss = loss + lambda_cont * gaussian_nll(mean, target, variance).sum(1).mean()
        return loss


def gaussian_nll(mean: Tensor, target: Tensor, variance: Tensor, eps: float = 1e-6) -> Tensor:
    """``F.gaussian_nll_loss(..., reduction="none")`` without its constant, written out: torch's
    checks that no variance is negative, which reads a value back from a GPU twice a step.
    The variance is clamped at ``eps`` for the value only, as torch does, so its gradient is kept."""
    variance = variance.clone()
    with torch.no_grad():
        variance.clamp_(min=eps)
    return 0.5 * (variance.log() + (mean - target).square() / variance)


def latent_codes(cfg: InfoGANConfig) -> LatentCodes:
    return LatentCodes(cfg.categorical, cfg.continuous, cfg.learn_variance)


# --- the networks ----------------------------------------------------------------------------
def dense_block(c_in: int, c_out: int, activation: nn.Module) -> list[nn.Module]:
    # No bias before BatchNorm: its shift would be subtracted again.
    return [nn.Linear(c_in, c_out, bias=False), nn.BatchNorm1d(c_out), activation]


def smallest_map(info: DataInfo) -> tuple[int, int]:
    """The side of the map two stride-2 layers away from the image."""
    return info.shape[1] // 4, info.shape[2] // 4


class InfoGenerator(Generator):
    """[noise, codes] -> image in [-1, 1]; ``latent_dim`` is the whole input's width."""

    def __init__(self, cfg: InfoGANConfig, info: DataInfo):
        super().__init__()
        self.info, self.codes = info, latent_codes(cfg)
        self.noise_dim = cfg.latent_dim
        self.latent_dim = cfg.latent_dim + self.codes.width
        h, w = smallest_map(info)
        wide = 2 * cfg.channels
        self.net = nn.Sequential(
            *dense_block(self.latent_dim, cfg.dense, nn.ReLU(inplace=True)),
            *dense_block(cfg.dense, wide * h * w, nn.ReLU(inplace=True)),
            nn.Unflatten(1, (wide, h, w)),
            *conv_up_block(wide, cfg.channels),
            nn.ConvTranspose2d(cfg.channels, info.shape[0], 4, 2, 1), nn.Tanh(),
        )

    def sample_latent(self, n: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> Tensor:
        noise = torch.randn(n, self.noise_dim, generator=generator, device=device)
        return torch.cat([noise, self.codes.sample(n, generator, device)], dim=1)

    def code_values(self, z: Tensor) -> dict[str, Tensor]:
        """The codes held in latents ``z``: category indices (int64) or continuous values."""
        return self.codes.values(z[:, self.noise_dim:])

    def latent_with_codes(self, n: int, codes: dict[str, int | float | str], generator: torch.Generator | None = None,
                          device: torch.device | str = "cpu") -> Tensor:
        """n latents with the given codes fixed (e.g. {"c1": 3, "c2": 0.5}); the rest drawn from the prior."""
        z = self.sample_latent(n, generator, device)
        for name, value in codes.items():
            self.codes.assign(z[:, self.noise_dim:], self.codes.lookup(name), self.codes.value(name, value))
        return z

    def traverse(self, name: str, steps: int = 10, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> Tensor:
        """Latents (rows, columns, latent_dim) for a picture of what code ``name`` controls.

        Continuous code: columns sweep it from -2 to 2 in ``steps``; one row per value of the first
        categorical code (10 random rows without one). Categorical code: columns are its values,
        ``steps`` rows. Each row keeps its own random noise; the other continuous codes are 0.
        """
        code = self.codes.lookup(name)
        if not 2 <= steps <= 64:  # the grid holds rows x steps images; a typo must not fill the memory
            raise GankitError(f"A traversal needs between 2 and 64 steps (--steps), not {steps}.")
        row_code = None if code.categorical or not self.codes.categorical else self.codes.categorical[0]
        if code.categorical:
            rows, column_values = steps, list(range(code.values))
        else:
            rows = row_code.values if row_code else UNCATEGORISED_ROWS
            column_values = torch.linspace(*TRAVERSE_RANGE, steps).tolist()
        z = self.sample_latent(rows, generator, device)
        row_codes = z[:, self.noise_dim:]
        for other in self.codes.continuous:
            self.codes.assign(row_codes, other, 0.0)
        if row_code is not None:
            for r in range(rows):
                self.codes.assign(row_codes[r], row_code, r)
        grid = z.unsqueeze(1).repeat(1, len(column_values), 1)
        for j, value in enumerate(column_values):
            self.codes.assign(grid[:, j, self.noise_dim:], code, value)
        return grid

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        # The train step hands G the codes it drew (fake_labels); they replace those in z.
        if labels is not None:
            z = torch.cat([z[:, :self.noise_dim], labels.to(z.dtype)], dim=1)
        return self.net(z)


class InfoDiscriminator(nn.Module):
    """Image -> (real/fake logit (N, 1), Q's output (N, q_width)) from one pass through the body."""

    def __init__(self, cfg: InfoGANConfig, info: DataInfo):
        super().__init__()
        h, w = smallest_map(info)
        wide = 2 * cfg.channels
        self.body = nn.Sequential(
            *conv_down_block(info.shape[0], cfg.channels, batchnorm=False, slope=SLOPE),
            *conv_down_block(cfg.channels, wide, batchnorm=True, slope=SLOPE),
            nn.Flatten(),
            *dense_block(wide * h * w, cfg.dense, nn.LeakyReLU(SLOPE, inplace=True)),
        )
        self.d_head = nn.Linear(cfg.dense, 1)
        self.q_head = nn.Sequential(*dense_block(cfg.dense, cfg.q_hidden, nn.LeakyReLU(SLOPE, inplace=True)),
                                    nn.Linear(cfg.q_hidden, latent_codes(cfg).q_width))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.d_head(h), self.q_head(h)


# --- the family ------------------------------------------------------------------------------
@register
class InfoGAN(GANFamily):
    name = "infogan"
    summary = "InfoGAN (seed 002): unsupervised codes, e.g. digit class, width and slant (--traverse c2)."
    Config = InfoGANConfig
    default_data = "mnist"

    @classmethod
    def ignored_settings(cls, cfg: InfoGANConfig) -> dict[str, list[str]]:
        reasons = super().ignored_settings(cfg)

        def set_on(*keys: str) -> list[str]:  # a weight of 0 or learn_variance=false agrees with the part's absence
            return changed_settings(cfg, InfoGANConfig(), keys, unless_off=True)

        if not cfg.categorical and (unused := set_on("lambda_cat", "q_augment")):
            reasons["there is no categorical code (model.categorical is empty)"] = unused
        elif cfg.lambda_cat == 0 and (unused := set_on("q_augment")):
            reasons["model.lambda_cat is 0, so the categorical codes' loss on moved fakes weighs nothing"] = unused
        if not cfg.continuous and (unused := set_on("lambda_cont", "learn_variance")):
            reasons["there is no continuous code (model.continuous is 0)"] = unused
        return reasons

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        if not info.is_image or info.shape[1] % 4 or info.shape[2] % 4:
            raise GankitError(f"infogan needs images whose sides are multiples of 4, not samples of shape "
                              f"{info.shape}; choose an image dataset or set data.image_size (e.g. 28).")

    @classmethod
    def build_generator(cls, cfg: InfoGANConfig, info: DataInfo) -> Generator:
        return InfoGenerator(cfg, info)

    @classmethod
    def build_discriminator(cls, cfg: InfoGANConfig, info: DataInfo) -> nn.Module:
        return InfoDiscriminator(cfg, info)

    @classmethod
    def default_train(cls, data_spec: str) -> dict[str, Any]:
        """The paper's learning rates (G and Q 1e-3, D 2e-4) at batch 128 rather than its 64: with
        seed 0 (and before ``q_augment``), 4,000 steps at batch 128 reached 99.9% code recovery and
        93.6% Q accuracy, against 90.0% and 85.4% at batch 64 (90.6% and 86.7% after 6,500 steps).
        More steps did not help (module docstring). The clock stops a slower machine at 15 minutes."""
        return {"steps": 4000, "minutes": 15.0, "batch_size": 128, "lr_g": 1e-3, "lr_d": 2e-4}

    def info_loss(self, q: Tensor, codes: Tensor) -> Tensor:
        return self.generator.codes.info_loss(q.float(), codes, self.cfg.lambda_cat, self.cfg.lambda_cont)

    def fake_labels(self, n: int, ctx: StepContext) -> Tensor:
        """The codes of the fakes, drawn from their prior: G builds its input from them and the
        information loss checks Q against them, as cGAN's random labels go to G and D."""
        return self.generator.codes.sample(n, ctx.noise, ctx.device)

    def d_loss(self, real: Tensor, real_labels: Tensor | None, fake: Tensor,
               fake_labels: Tensor | None, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        (d_real, _), (d_fake, q_fake) = self.discriminate(real, None, fake, None)
        adversarial, stats = self.adversarial_d_loss(d_real, d_fake, ctx)
        info = self.info_loss(q_fake, fake_labels)
        if self.cfg.q_update == "g":
            # Reported only: Q learns in G's update. The zero-weighted term gives Q's weights a
            # (zero) gradient, which DistributedDataParallel needs from every weight it wraps; D's
            # optimizer does not hold Q, and G's clears the gradient before its own update. It is
            # made of Q's weights, not of L_I, so a non-finite L_I cannot reach D's gradients.
            untouched = sum(p.sum() for p in self.discriminator.q_head.parameters())
            return adversarial + 0.0 * untouched, {**stats, "info": info.detach()}
        return adversarial + info, {**stats, "info": info}

    def g_loss(self, fake: Tensor, fake_labels: Tensor | None, ctx: StepContext) -> Tensor:
        d_fake, q_fake = self.discriminator(fake)  # the bare D, as in the base class
        loss = self.loss.g(d_fake.float()) + self.info_loss(q_fake, fake_labels)
        if self.cfg.q_augment > 0 and self.cfg.lambda_cat > 0 and self.generator.codes.categorical:
            loss = loss + self.cfg.lambda_cat * self.moved_category_loss(fake, fake_labels, ctx)
        return loss

    def moved_category_loss(self, fake: Tensor, codes: Tensor, ctx: StepContext) -> Tensor:
        """The categorical part of L_I on moved copies of the fakes (``q_augment``).

        Without it a run often settles on codes that split digits by pose: two codes each draw
        both 7s and 9s, told apart by slant or width, while the noise picks the digit. A code that
        must survive a rotation, a zoom and a shift cannot live in the pose, so it takes the
        digit. The continuous codes are left out: they are meant to hold the pose.
        """
        _, q_moved = self.discriminator(random_affine(fake, self.cfg.q_augment, ctx.noise))
        return self.generator.codes.categorical_loss(q_moved.float(), codes)

    def trained_with_generator(self) -> list[nn.Module]:
        """With ``q_update="g"`` Q's head belongs to G's optimizer: G and Q minimise L_I together
        in G's update, at G's learning rate, as in the paper's min_{G,Q} max_D V - lambda L_I."""
        return [self.discriminator.q_head] if self.cfg.q_update == "g" else []


# --- what `gankit sample --code / --traverse` calls ------------------------------------------
def codes_of(generator: nn.Module) -> InfoGenerator:
    if not isinstance(generator, InfoGenerator):
        raise GankitError("This model has no latent codes; --code and --traverse apply to infogan runs only.")
    return generator


def parse_code_assignments(assignments: list[str], generator: nn.Module) -> dict[str, int | float]:
    """["c1=3", "c2=0.5"] -> {"c1": 3, "c2": 0.5}, each checked against the generator's codes."""
    codes = codes_of(generator).codes
    chosen: dict[str, int | float] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise GankitError(f"--code {assignment!r} must look like NAME=VALUE, e.g. c1=3 or c2=0.5.")
        code = codes.lookup(name)
        if code.name in chosen:
            raise GankitError(f"Code {code.name} is given twice; give each code once.")
        chosen[code.name] = codes.value(code.name, value)
    return chosen


@torch.inference_mode()
@torch.inference_mode()
def save_traversal(generator: nn.Module, name: str, path: Path, steps: int = 10, seed: int = 0) -> Path:
    """Write the traversal grid of code ``name`` (see ``InfoGenerator.traverse``) to ``path``."""
    from gankit.train.preview import save_grid  # not at the top: gankit.train imports gankit.models

    G = codes_of(generator)
    device = next(G.parameters()).device
    grid = G.traverse(name, steps, torch.Generator(device=device).manual_seed(seed), device)
    images = G(grid.flatten(0, 1)).float().cpu()
    save_grid(images, grid.shape[1], Path(path))
    return Path(path)
