"""What every model family shares: its config fields, its generator interface and the
adversarial training step that families extend with their own terms.

A family is an ``nn.Module`` holding ``generator`` and ``discriminator``; it owns its
``train_step`` (as in mimicry), so the training loop only draws batches and alternates.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, ContextManager, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gankit.config import DataConfig, LossName
from gankit.data.base import DataInfo, TensorData
from gankit.data.registry import load_dataset
from gankit.errors import GankitError
from gankit.models.augment import adapt_probability, augment, parse_policy
from gankit.models.losses import LOSSES, real_targets


@dataclass
class AdversarialConfig:
    """Settings every adversarial family has; families add their own fields."""

    loss: LossName = "nonsaturating"
    label_smoothing: float = 0.0  # one-sided: real targets drawn from [1 - s, 1]

    def validate(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise GankitError(f"model.label_smoothing must be in [0, 1), not {self.label_smoothing}.")
        if self.label_smoothing and not LOSSES[self.loss].smoothable:
            raise GankitError(f"model.label_smoothing is {self.label_smoothing}, which the {self.loss} loss cannot use "
                              "(acgan smooths unless told not to); add --set model.label_smoothing=0.")


@dataclass
class GANConfig(AdversarialConfig):
    """The settings of families that generate from a latent vector."""

    latent_dim: int = 100
    augment: str = ""  # DiffAugment policies for what D sees, e.g. "translation,cutout" (models/augment.py)
    augment_target: float = 0.0  # 0: augment every image; in (0, 1): adaptive (ADA), E[sign(D(real))] kept near it
    augment_ramp: float = 500_000  # images over which the adaptive probability can rise from 0 to 1

    def validate(self) -> None:
        super().validate()
        if self.latent_dim < 1:
            raise GankitError(f"model.latent_dim must be at least 1, not {self.latent_dim}.")
        parse_policy(self.augment)
        if not 0 <= self.augment_target < 1:
            raise GankitError(f"model.augment_target must be in [0, 1) (0 augments every image; ADA uses 0.6), "
                              f"not {self.augment_target}.")
        if self.augment_ramp <= 0:
            raise GankitError(f"model.augment_ramp must be a positive number of images, not {self.augment_ramp}.")


class Generator(nn.Module):
    """A generator maps latent vectors (and labels, for conditional models) to samples."""

    latent_dim: int
    info: DataInfo

    def sample_latent(self, n: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


@dataclass
class TrainModules:
    """The networks as the train step calls them for gradients (DDP wrappers when distributed)."""

    generator: nn.Module
    discriminator: nn.Module


@dataclass
class StepContext:
    """What a family's train step gets from the loop besides the data."""

    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise: torch.Generator  # the stream for latents, random labels and smoothing targets
    device: torch.device
    # Mixed precision for forward passes only. Optimizer steps must stay outside it: autocast
    # caches the low-precision copy of each weight until the region ends, so a step inside it
    # would leave the next forward with stale weights.
    autocast: Callable[[], ContextManager] = contextlib.nullcontext


@dataclass
class Preview:
    """The fixed inputs of the pictures drawn during training, so successive ones compare.

    ``columns`` is the grid's width; ``beside`` holds images drawn left and right of each output
    (for super-resolution: bicubic and the real HR image), which then fill a row each.
    """

    z: Tensor
    labels: Tensor | None
    columns: int
    beside: tuple[Tensor, Tensor] | None = None


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration (BatchNorm uses, and does not update, its running
    statistics; dropout is off), then the mode it had before."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@contextlib.contextmanager
def frozen(module: nn.Module, *trainable: nn.Module) -> Iterator[None]:
    """``module``'s weights take no gradient for the duration, except those of ``trainable``
    (its parts that G's loss trains too); then all of them do again. For G's update, where D
    only passes gradients on: skipping D's weight gradients saves a third of its backward."""
    module.requires_grad_(False)
    for part in trainable:
        part.requires_grad_(True)
    try:
        yield
    finally:
        module.requires_grad_(True)


def update(optimizer: torch.optim.Optimizer, loss: Tensor, averaged: Iterable[nn.Module] = ()) -> None:
    """One optimizer step on ``loss``'s gradients, those of ``averaged`` first averaged across
    ranks (modules run outside DDP's wrapper). Old gradients are dropped, not zeroed: the backward
    pass then writes fresh tensors instead of adding to zeros."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_across_ranks([p for module in averaged for p in module.parameters()])
    optimizer.step()


def changed_settings(cfg: Any, default: Any, keys: tuple[str, ...], unless_off: bool = False) -> list[str]:
    """Those of ``keys`` whose value in ``cfg`` differs from ``default``'s: the ones a user set.
    ``unless_off`` leaves out those set to 0 or False, for settings where that means off: turning off
    a part that cannot run says what the run does anyway."""
    return [key for key in keys if getattr(cfg, key) != getattr(default, key) and (getattr(cfg, key) or not unless_off)]


def halves(out: Any) -> tuple[Any, Any]:
    """A network's output on a batch of two halves (a tensor, or nested tuples and lists of them,
    as ACGAN's D returns) as its outputs on each half."""
    if isinstance(out, Tensor):
        return tuple(out.chunk(2))
    first, second = zip(*(halves(part) for part in out))
    return first, second


def world_size() -> int:
    """The number of ranks of a distributed run; 1 outside one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def average_across_ranks(parameters: list[nn.Parameter]) -> None:
    """Average the gradients of ``parameters`` over the ranks of a distributed run (else nothing)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads or world_size() == 1:
        return
    flat = torch.cat([g.flatten() for g in grads])  # one collective, not one per tensor
    dist.all_reduce(flat)
    flat /= world_size()
    for g, averaged in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(averaged.view_as(g))


def mean_across_ranks(value: Tensor) -> Tensor:
    """The mean of a tensor over the ranks of a distributed run (itself otherwise)."""
    if world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / world_size()


def random_labels(info: DataInfo, n: int, generator: torch.Generator, device: torch.device) -> Tensor | None:
    """Uniformly drawn labels, one column per attribute, or None for unlabelled data."""
    if not info.attributes:
        return None
    columns = [torch.randint(k, (n,), generator=generator, device=device) for k in info.num_classes]
    return torch.stack(columns, dim=1)


class GANFamily(nn.Module):
    """Base class of adversarial families: G, D and the shared alternating update."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Config: ClassVar[type] = GANConfig
    default_data: ClassVar[str] = "mnist"
    conditional: ClassVar[bool] = False  # whether G takes labels
    fid_scored: ClassVar[bool] = True  # whether train.eval_every tracks FID (and keeps best/)
    # Settings that change what G computes without changing its weights' names or shapes: a
    # generator taken over with train.init must have been trained with the same values.
    generator_settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Any, info: DataInfo):
        super().__init__()
        self.check_data(info)
        self.refuse_ignored_settings(cfg)
        if not self.conditional:  # the data's labels mean nothing to this generator
            info = dataclasses.replace(info, attributes=())
        self.cfg, self.info = cfg, info
        self.generator = self.build_generator(cfg, info)
        self.discriminator = self.build_discriminator(cfg, info)
        self.loss = LOSSES[cfg.loss]
        # A plain attribute, not a submodule: the wrappers must not enter state_dict().
        self.train_modules = TrainModules(self.generator, self.discriminator)
        # Real and fake go through D in one batch (fewer, larger matrix products) unless D has
        # BatchNorm, whose statistics would then mix real and fake samples.
        self.joint_d_batch = not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                     for m in self.discriminator.modules())
        self.augmentations = parse_policy(cfg.augment) if isinstance(cfg, GANConfig) else []
        if self.augmentations and not info.is_image:
            raise GankitError(f"model.augment transforms images, but this data holds samples of shape {info.shape}; "
                              "set model.augment to \"\".")
        self.adaptive = bool(self.augmentations) and cfg.augment_target > 0
        # The adaptive probability: a buffer so that it follows the model to its device, saved
        # with the checkpoint's training state (``training_state``), not with the weights.
        self.register_buffer("augment_p", torch.zeros(()), persistent=False)

    # --- what a family defines -------------------------------------------------------------
    @classmethod
    def build_generator(cls, cfg: Any, info: DataInfo) -> Generator:
        raise NotImplementedError

    @classmethod
    def build_discriminator(cls, cfg: Any, info: DataInfo) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        """Raise GankitError when the family cannot train on data of this kind."""

    def check_batch(self, batch_size: int) -> None:
        """Raise GankitError when the model cannot train on batches of this size; any size by default."""

    @classmethod
    def ignored_settings(cls, cfg: Any) -> dict[str, list[str]]:
        """Settings given that the others make meaningless, grouped by the reason: here ADA's, which
        adapt model.augment's transforms (families add their own)."""
        reasons: dict[str, list[str]] = {}
        if not isinstance(cfg, GANConfig):
            return reasons
        # Set by the user: unlike both the class's default and the family's own (gan's on images
        # adapts translation at 0.4, and `model.augment=` alone must turn that off).
        defaults = (type(cfg)(), cls.default_config(cls.default_data))

        def changed(*keys: str) -> list[str]:
            return [key for key in keys if all(getattr(cfg, key) != getattr(d, key) for d in defaults)]

        if not cfg.augment and (unused := changed("augment_target", "augment_ramp")):
            reasons["they adapt the transforms model.augment chooses, and it chooses none (set it, e.g. to "
                    "translation)"] = unused
        elif cfg.augment and not cfg.augment_target and (unused := changed("augment_ramp")):
            reasons["model.augment_target is 0, so every image is transformed and nothing adapts"] = unused
        return reasons

    @classmethod
    def refuse_ignored_settings(cls, cfg: Any) -> None:
        """A setting that would silently do nothing is refused: the user meant it to do something."""
        ignored = cls.ignored_settings(cfg)
        if ignored:
            why, keys = next(iter(ignored.items()))
            raise GankitError(f"{cls.name} does not use {', '.join(f'model.{key}' for key in keys)}: {why}; "
                              f"drop {'it' if len(keys) == 1 else 'them'}.")

    @classmethod
    def load_data(cls, spec: str, options: DataConfig, model_cfg: Any) -> TensorData:
        """The training data for ``spec``; families whose data are not the registry's override it."""
        return load_dataset(spec, options)

    @classmethod
    def default_config(cls, data_spec: str) -> Any:
        """The family's settings for a dataset; families tune them per data kind."""
        return cls.Config()

    @classmethod
    def default_train(cls, data_spec: str) -> dict[str, Any]:
        """Training settings (``train.*``) that differ from the loop's defaults for this data."""
        return {}

    def trained_with_generator(self) -> list[nn.Module]:
        """Parts of D that G's optimizer trains, in G's update (InfoGAN's Q head); none by default."""
        return []

    def generator_parameters(self) -> list[nn.Parameter]:
        """What G's optimizer updates: G's weights and those of ``trained_with_generator``."""
        return [*self.generator.parameters(), *(p for m in self.trained_with_generator() for p in m.parameters())]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """What D's optimizer updates: D's weights except those G's optimizer owns."""
        shared = {id(p) for m in self.trained_with_generator() for p in m.parameters()}
        return [p for p in self.discriminator.parameters() if id(p) not in shared]

    def generator_param_groups(self) -> list[dict[str, Any]]:
        """G's optimizer groups; a group's ``lr_mult`` multiplies train.lr_g for its parameters."""
        return [{"params": self.generator_parameters()}]

    def discriminator_param_groups(self) -> list[dict[str, Any]]:
        """D's optimizer groups; a group's ``lr_mult`` multiplies train.lr_d for its parameters."""
        params = self.discriminator_parameters()
        return [{"params": params}] if params else []

    def preview(self, data: TensorData, seed: int, device: torch.device) -> Preview | None:
        """Inputs for the training pictures, or None for the loop's generic ones (latents and labels)."""
        return None

    # --- the step ----------------------------------------------------------------------------
    def fake_labels(self, n: int, ctx: StepContext) -> Tensor | None:
        """What G is asked for besides noise: random labels for conditional families."""
        if not self.conditional:
            return None
        return random_labels(self.info, n, ctx.noise, ctx.device)

    def adversarial_d_loss(self, d_real: Tensor, d_fake: Tensor, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        """The configured loss on D's real/fake logits (real targets smoothed when asked), and
        the mean D(x) and D(G(z)) the log reports."""
        d_real, d_fake = d_real.float(), d_fake.float()
        target = real_targets(len(d_real), self.cfg.label_smoothing, ctx.noise, ctx.device)
        belief_real = self.loss.belief(d_real.detach())
        stats = {"d_real": belief_real.mean(), "d_fake": self.loss.belief(d_fake.detach()).mean()}
        if self.adaptive:  # ADA's measure of D's over-fitting (adapt_augmentation): +1 where D calls a real image real
            stats["real_sign"] = torch.sign(belief_real - 0.5).mean()
        return self.loss.d(d_real, d_fake, target), stats

    def discriminate(self, real: Tensor, real_labels: Tensor | None, fake: Tensor,
                     fake_labels: Tensor | None) -> tuple[Any, Any]:
        """D's outputs (a tensor, or a tuple of heads) on the reals and on the fakes, for D's update.

        One pass over both batches when D has no BatchNorm (see ``joint_d_batch``), else two. D reads
        the labels given, in conditional families; ACGAN's D predicts them instead, so it gives none."""
        D = self.train_modules.discriminator
        if not self.conditional:
            real_labels = fake_labels = None
        if not self.joint_d_batch:
            return D(real, real_labels), D(fake, fake_labels)
        labels = None if real_labels is None else torch.cat([real_labels, fake_labels])
        return halves(D(torch.cat([real, fake]), labels))

    def d_loss(self, real: Tensor, real_labels: Tensor | None, fake: Tensor,
               fake_labels: Tensor | None, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        return self.adversarial_d_loss(*self.discriminate(real, real_labels, fake, fake_labels), ctx)

    def g_loss(self, fake: Tensor, fake_labels: Tensor | None, ctx: StepContext) -> Tensor:
        # The bare D: its weights take no gradient here, so DDP has nothing to synchronise.
        return self.loss.g(self.discriminator(fake, fake_labels).float())

    # --- augmentation of what D sees (models/augment.py) --------------------------------------
    def augment(self, *images: Tensor, ctx: StepContext) -> tuple[Tensor, ...]:
        """What D sees of each batch in ``images``, reals and fakes alike: ``model.augment``'s
        transforms, always, or with the adaptive probability. The batches go through together:
        one pass of small operations instead of one per batch."""
        skip = self.adaptive and self.augment_p.device.type == "cpu" and not self.augment_p  # free to read on a CPU
        if not self.augmentations or skip:
            return images
        together = torch.cat(images) if len(images) > 1 else images[0]
        together = augment(together, self.augmentations, ctx.noise, self.augment_p if self.adaptive else None)
        return together.split([len(x) for x in images])

    def adapt_augmentation(self, stats: dict[str, Tensor], batch: int) -> None:
        """ADA's update after a D step, from the ``real_sign`` of its stats (averaged over ranks,
        so that every rank keeps the same probability); the probability joins the stats."""
        if not self.adaptive:
            return
        stats["real_sign"] = mean_across_ranks(stats["real_sign"])
        self.augment_p.copy_(adapt_probability(self.augment_p, stats["real_sign"], batch * world_size(),
                                               self.cfg.augment_target, self.cfg.augment_ramp))
        stats["augment_p"] = self.augment_p.clone()

    def training_state(self) -> dict[str, float]:
        """What a checkpoint must keep of the family besides weights, for an exact resume."""
        return {"augment_p": float(self.augment_p)} if self.adaptive else {}

    def load_training_state(self, state: dict[str, float]) -> None:
        if self.adaptive:
            self.augment_p.fill_(state.get("augment_p", 0.0))

    def train_step(self, batches: list[tuple[Tensor, Tensor | None]], ctx: StepContext) -> dict[str, Tensor]:
        """k discriminator updates (one per batch), then one generator update.

        The fakes of the last D update are reused for the G update: one G forward per step.
        """
        G, D = self.generator, self.discriminator
        G_train = self.train_modules.generator
        for i, (real, labels) in enumerate(batches):
            last = i == len(batches) - 1
            with ctx.autocast():
                z = G.sample_latent(len(real), ctx.noise, ctx.device)
                y_fake = self.fake_labels(len(real), ctx)
                with torch.set_grad_enabled(last):
                    fake = G_train(z, y_fake)
                real_seen, fake_seen = self.augment(real, fake.detach(), ctx=ctx)
                loss_d, stats = self.d_loss(real_seen, labels, fake_seen, y_fake, ctx)
            update(ctx.opt_d, loss_d)
            self.adapt_augmentation(stats, len(real))
        shared = self.trained_with_generator()
        with frozen(D, *shared):
            with ctx.autocast():
                loss_g = self.g_loss(*self.augment(fake, ctx=ctx), y_fake, ctx)
            update(ctx.opt_g, loss_g, averaged=shared)  # g_loss runs the bare D: DDP averages none of it
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **{k: v.detach() for k, v in stats.items()}}
