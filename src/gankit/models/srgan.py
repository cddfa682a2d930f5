"""SRGAN: 4x super-resolution (seed 004, Ledig et al. 2017), and SRResNet, its first phase.

G (SRResNet) maps a low-resolution image to one ``scale`` times larger: 9x9 conv 64 + PReLU,
``blocks`` residual blocks (conv-BN-PReLU-conv-BN plus the block's input), conv-BN plus the
first conv's output (the global skip), one x2 stage per factor of 2 (conv to 4x the channels,
PixelShuffle, PReLU), then a 9x9 conv to RGB. Images are in [-1, 1] on both sides, so G ends
in tanh. G is fully convolutional: it takes any input size (``upscale`` tiles large images).

One change to the paper, on by default (``model.bicubic_skip``): G's output is added to the
bicubic upscale of its input (VDSR's global residual), with the last conv starting at zero, so
an untrained G already equals bicubic and training only adds what bicubic misses. Measured on
the held-out photographs after 15 minutes on one core: the paper's G was still 1.6 dB below
bicubic; with the skip it was above bicubic from the first minutes (benchmarks/sr.py).

D (SRGAN's): eight 3x3 conv blocks from 64 to 512 channels, stride 2 every second one,
LeakyReLU(0.2), BatchNorm on all but the first, then dense 1024, LeakyReLU, one logit.

Training, the paper's two phases:
- ``srresnet``: G alone on the content loss (pixel MSE by default); there is no D.
- ``srgan``: G's loss = content (VGG19 relu5_4 features by default, ``gankit.models.vgg``)
  + 1e-3 x adversarial; D's loss = the configured adversarial loss: BCE (``nonsaturating``,
  the paper) or least squares (``lsgan``, as seed 004 trains D with MSE). Start it from a
  trained SRResNet with ``gankit train srgan --init RUN_DIR``.

Each step takes one random ``crop`` x ``crop`` HR patch from every tile of the batch, flips and
transposes it at random and makes the LR input by anti-aliased bicubic downscaling
(``gankit.data.photos``), so the pairs are always aligned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.config import TILE, DataConfig
from gankit.data.base import DataInfo, TensorData
from gankit.data.photos import bicubic_upscale, downscale, load_tiles
from gankit.errors import GankitError
from gankit.models.base import (AdversarialConfig, GANFamily, Generator, Preview, StepContext, changed_settings, frozen,
                                update)
from gankit.models.layers import channels_last
from gankit.models.registry import register
from gankit.models.vgg import LAYER_ENDS, VGGFeatures

CONTENT_LOSSES = ("mse", *LAYER_ENDS)
TILE_MARGIN = 32  # training tiles are this much larger than the crop, for random positions
PREVIEW_ROWS = 6


@dataclass
class SRGANConfig(AdversarialConfig):
    scale: int = 4  # 2, 4 or 8: one x2 PixelShuffle stage per factor of 2
    blocks: int = 16
    channels: int = 64
    crop: int = 96  # HR training patch side (the LR input is crop / scale)
    content: str = "vgg54"  # mse, vgg22 or vgg54
    bicubic_skip: bool = True  # G adds its output to the bicubic upscale of its input (see SRResNetGenerator)
    batchnorm: bool = True  # the paper's BatchNorm in G's blocks (EDSR, Lim et al. 2017, drops it)
    adversarial_weight: float = 1e-3
    vgg_weights: str = ""  # empty: $GANKIT_VGG19, then the torch hub cache
    d_channels: int = 64
    d_dense: int = 1024

    def validate(self) -> None:
        super().validate()
        if self.scale not in (2, 4, 8):
            raise GankitError(f"model.scale must be 2, 4 or 8, not {self.scale}.")
        if self.content not in CONTENT_LOSSES:
            raise GankitError(f"model.content must be one of {', '.join(CONTENT_LOSSES)}, not {self.content!r}.")
        if self.crop < 16 * 2 or self.crop % 16:  # a multiple of 16 is one of every scale (2, 4, 8) too
            raise GankitError(f"model.crop must be a multiple of 16 (D halves it four times) of at least 32, "
                              f"not {self.crop}; the paper uses 96.")
        if self.adversarial_weight < 0:
            raise GankitError(f"model.adversarial_weight must not be negative, not {self.adversarial_weight}.")
        for key in ("blocks", "channels", "d_channels", "d_dense"):
            if getattr(self, key) < 1:
                raise GankitError(f"model.{key} must be at least 1, not {getattr(self, key)}.")


DISCRIMINATOR_SETTINGS = ("loss", "label_smoothing", "adversarial_weight", "d_channels", "d_dense")

# --- the networks ----------------------------------------------------------------------------
def conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=bias)


def conv_norm(channels: int, batchnorm: bool) -> list[nn.Module]:
    # No bias before BatchNorm: its shift would be subtracted again.
    return [conv(channels, channels, bias=not batchnorm)] + ([nn.BatchNorm2d(channels)] if batchnorm else [])


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, batchnorm: bool = True):
        super().__init__()
        self.body = nn.Sequential(*conv_norm(channels, batchnorm), nn.PReLU(), *conv_norm(channels, batchnorm))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNetGenerator(Generator):
    """LR image (N, 3, h, w) in [-1, 1] -> HR image (N, 3, scale h, scale w) in [-1, 1]."""

    latent_dim = 0  # its input is an image, not a latent vector

    def __init__(self, cfg: SRGANConfig, info: DataInfo):
        super().__init__()
        self.info, self.scale = info, cfg.scale
        c = cfg.channels
        self.head = nn.Sequential(conv(3, c, 9), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(c, cfg.batchnorm) for _ in range(cfg.blocks)],
                                    *conv_norm(c, cfg.batchnorm))
        stages = int(math.log2(cfg.scale))
        self.upsample = nn.Sequential(*[m for _ in range(stages)
                                        for m in (conv(c, 4 * c), nn.PixelShuffle(2), nn.PReLU())])
        self.tail = nn.Sequential(conv(c, 3, 9), nn.Tanh())
        self.bicubic_skip = cfg.bicubic_skip
        if self.bicubic_skip:
            # G then learns only what bicubic misses (VDSR's global residual), starting from bicubic itself.
            nn.init.zeros_(self.tail[0].weight)
            nn.init.zeros_(self.tail[0].bias)
        self.to(memory_format=torch.channels_last)

    def sample_latent(self, n: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> Tensor:
        raise GankitError("A super-resolution model upscales images rather than sampling them; "
                          "use `gankit upscale RUN IMAGE -o OUT.png`.")

    def forward(self, lr: Tensor, labels: Tensor | None = None) -> Tensor:
        lr = channels_last(lr)
        features = self.head(lr)
        out = self.tail(self.upsample(features + self.blocks(features)))
        if self.bicubic_skip:
            out = (bicubic_upscale(lr, self.scale) + out).clamp(-1, 1)
        return out


def d_block(c_in: int, c_out: int, stride: int, batchnorm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [conv(c_in, c_out, stride=stride, bias=not batchnorm)]
    layers += [nn.BatchNorm2d(c_out)] if batchnorm else []
    return layers + [nn.LeakyReLU(0.2, inplace=True)]


class SRDiscriminator(nn.Module):
    """HR image (N, 3, crop, crop) -> one real/fake logit (N, 1)."""

    def __init__(self, cfg: SRGANConfig, info: DataInfo):
        super().__init__()
        widths = [cfg.d_channels * 2 ** (i // 2) for i in range(8)]  # 64 64 128 128 256 256 512 512
        layers, c_in = [], 3
        for i, width in enumerate(widths):
            layers += d_block(c_in, width, stride=1 + i % 2, batchnorm=i > 0)
            c_in = width
        side = info.shape[1] // 16
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, cfg.d_dense),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(cfg.d_dense, 1))
        self.features.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        # Flatten reads the maps in NCHW order, whatever their layout: the dense weights fit either.
        return self.head(self.features(channels_last(x)))


# --- the data each step sees -----------------------------------------------------------------
def random_crops(tiles: Tensor, crop: int, noise: torch.Generator) -> Tensor:
    """One crop x crop patch at a random position of each tile, in one of its 8 orientations
    (flips and a transpose: the dihedral group, all equally natural for photographs)."""
    n, channels, height, width = tiles.shape
    ys = torch.randint(height - crop + 1, (n,), generator=noise, device=noise.device).to(tiles.device)
    xs = torch.randint(width - crop + 1, (n,), generator=noise, device=noise.device).to(tiles.device)
    # One gather on the device: the positions are never read back to the host, which on a GPU
    # would wait for all the work queued before them.
    offsets = torch.arange(crop, device=tiles.device)
    rows, cols = ys[:, None] + offsets, xs[:, None] + offsets  # (n, crop) each
    tile_index = torch.arange(n, device=tiles.device)[:, None, None, None]
    channel_index = torch.arange(channels, device=tiles.device)[None, :, None, None]
    patches = tiles[tile_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]
    flips = torch.rand(3, n, 1, 1, 1, generator=noise, device=noise.device).to(tiles.device) < 0.5
    patches = torch.where(flips[0], patches.flip(3), patches)
    patches = torch.where(flips[1], patches.flip(2), patches)
    return torch.where(flips[2], patches.transpose(2, 3), patches)


def psnr(sr: Tensor, hr: Tensor) -> Tensor:
    """Mean PSNR (dB) over RGB in [-1, 1]: a cheap training signal, not the Y-channel protocol."""
    mse = (sr.float() - hr.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return (10 * torch.log10(4 / mse)).mean()


# --- the families ----------------------------------------------------------------------------
@register
class SRGAN(GANFamily):
    name = "srgan"
    summary = "SRGAN (seed 004): 4x super-resolution, VGG54 + 1e-3 adversarial; start it with --init SRRESNET_RUN."
    Config = SRGANConfig
    default_data = "photos"
    adversarial: ClassVar[bool] = True
    fid_scored = False  # judged by PSNR/SSIM against bicubic (gankit eval), not FID
    generator_settings = ("bicubic_skip",)

    def __init__(self, cfg: SRGANConfig, info: DataInfo):
        if self.adversarial and cfg.adversarial_weight == 0:  # srresnet's weight: its config has no D to feed
            raise GankitError("model.adversarial_weight is 0, so srgan's D would train with nothing reading it; give "
                              "it a positive weight (the paper's 1e-3), or train srresnet, which has no D.")
        super().__init__(cfg, info)
        # Built once and kept off the saved weights: a frozen measuring network, not part of G or D.
        self.content_features = VGGFeatures(cfg.content, cfg.vgg_weights or None) if cfg.content != "mse" else None

    @classmethod
    def ignored_settings(cls, cfg: SRGANConfig) -> dict[str, list[str]]:
        """Settings given that the others make meaningless, grouped by the reason."""
        if cfg.vgg_weights and cfg.content == "mse":
            return {"only the perceptual loss reads VGG19, and model.content is mse": ["vgg_weights"]}
        return {}

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        if not info.is_image or info.shape[0] != 3:
            raise GankitError(f"{cls.name} needs RGB photographs, not samples of shape {info.shape}; "
                              "use photos or folder:PATH.")

    @classmethod
    def load_data(cls, spec: str, options: DataConfig, model_cfg: SRGANConfig) -> TensorData:
        if options.image_size or options.channels not in (0, 3):  # crops are cut from the photographs, never resized
            raise GankitError(f"{cls.name} trains on {model_cfg.crop}-pixel crops of full-resolution RGB photographs; "
                              "drop data.image_size and data.channels (model.crop sets the crop).")
        return load_tiles(spec, model_cfg.crop, model_cfg.crop + TILE_MARGIN)

    @classmethod
    def build_generator(cls, cfg: SRGANConfig, info: DataInfo) -> Generator:
        return SRResNetGenerator(cfg, info)

    @classmethod
    def build_discriminator(cls, cfg: SRGANConfig, info: DataInfo) -> nn.Module:
        return SRDiscriminator(cfg, info)

    @classmethod
    def default_train(cls, data_spec: str) -> dict[str, Any]:
        """The paper's Adam (beta1 0.9) at batch 16, no EMA (the paper has none), and a budget of 15
        minutes on 2 CPU cores (the paper trains for days on a GPU). lr 4e-4 falling linearly to 0
        over the last 60% of the budget, rather than the paper's constant 1e-4: constant 1e-4, 2e-4
        and 5e-4 gave the same PSNR after 3 minutes, and 2e-4 gained +0.27 dB over bicubic after 5;
        the decay gained +0.37 dB after 5 (held-out photos, benchmarks/sr.py)."""
        return {"batch_size": 16, "lr_g": 4e-4, "lr_d": 4e-4, "lr_decay": 0.6, "beta1": 0.9, "ema": 0.0,
                "steps": 0, "minutes": 15.0,
                "log_every": 10, "sample_every": 100, "checkpoint_every": 100}  # a step takes about a second

    def content_loss(self, sr: Tensor, hr: Tensor) -> Tensor:
        if self.content_features is None:
            return F.mse_loss(sr.float(), hr.float())
        return F.mse_loss(self.content_features(sr).float(), self.content_features(hr).float())

    def pairs(self, tiles: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor]:
        """(LR input, HR target) for a batch of tiles."""
        hr = random_crops(tiles, self.cfg.crop, ctx.noise)
        return downscale(hr, self.cfg.scale), hr

    def train_step(self, batches: list[tuple[Tensor, Tensor | None]], ctx: StepContext) -> dict[str, Tensor]:
        """D updates (one per batch, when adversarial), then one G update on the last batch's SR images."""
        G = self.train_modules.generator
        stats: dict[str, Tensor] = {}
        if not self.adversarial:  # no D to update: only the batch G learns from
            batches = batches[-1:]
        for i, (tiles, _) in enumerate(batches):
            lr, hr = self.pairs(tiles, ctx)
            with ctx.autocast():
                with torch.set_grad_enabled(i == len(batches) - 1):
                    sr = G(lr)
                if self.adversarial:
                    loss_d, stats = self.d_loss(hr, None, sr.detach(), None, ctx)
            if self.adversarial:
                update(ctx.opt_d, loss_d)
                stats = {"loss_d": loss_d, **stats}
        with frozen(self.discriminator), ctx.autocast():
            content = self.content_loss(sr, hr)
            loss_g = content
            if self.adversarial:
                loss_g = content + self.cfg.adversarial_weight * self.loss.g(self.discriminator(sr).float())
        update(ctx.opt_g, loss_g)
        stats.update(loss_g=loss_g, content=content, psnr=psnr(sr.detach(), hr))
        return {k: v.detach() for k, v in stats.items()}

    def preview(self, data: TensorData, seed: int, device: torch.device) -> Preview:
        """Fixed centre crops of evenly spaced tiles: bicubic | SR | HR per row."""
        index = torch.linspace(0, len(data) - 1, min(PREVIEW_ROWS, len(data))).long()
        tiles = data.take(index.to(data.stored.device)).to(device)
        top = (tiles.shape[-1] - self.cfg.crop) // 2
        hr = tiles[..., top:top + self.cfg.crop, top:top + self.cfg.crop]
        lr = downscale(hr, self.cfg.scale)
        return Preview(lr, None, 3, beside=(bicubic_upscale(lr, self.cfg.scale), hr))


@register
class SRResNet(SRGAN):
    name = "srresnet"
    summary = "SRResNet (SRGAN's phase 1): the same 4x generator trained on pixel MSE alone, no D."
    adversarial = False

    @classmethod
    def default_config(cls, data_spec: str) -> SRGANConfig:
        return SRGANConfig(content="mse", adversarial_weight=0.0)

    @classmethod
    def ignored_settings(cls, cfg: SRGANConfig) -> dict[str, list[str]]:
        d_only = changed_settings(cfg, cls.default_config(""), DISCRIMINATOR_SETTINGS)
        reasons = super().ignored_settings(cfg)
        if d_only:
            reasons["it has no discriminator (srgan, started with --init from this run, has one)"] = d_only
        return reasons

    @classmethod
    def build_discriminator(cls, cfg: SRGANConfig, info: DataInfo) -> nn.Module:
        return nn.Module()  # no D: nothing to train or save



# --- upscaling images of any size ------------------------------------------------------------
def receptive_radius(generator: SRResNetGenerator) -> int:
    """How many LR pixels around a pixel can change its output (rounded up): 4 (head) + 2 per
    block + 1 (the global skip's conv) + 1 per x2 stage (generously) + the 9x9 tail's 4 HR
    pixels (2 LR pixels at scale 2, 1 at 4 and 8)."""
    blocks = sum(isinstance(m, ResidualBlock) for m in generator.blocks)
    return 4 + 2 * blocks + 1 + int(math.log2(generator.scale)) + math.ceil(4 / generator.scale)


@torch.inference_mode()
def upscale(generator: SRResNetGenerator, lr: Tensor, tile: int = TILE, overlap: int | None = None) -> Tensor:
    """G applied to LR images (N, 3, h, w) of any size, ``tile`` x ``tile`` LR pixels at a time.

    Each tile is run with ``overlap`` pixels of context on every side (by default G's receptive
    radius, so the result equals one pass over the whole image) and only its centre is kept:
    memory stays bounded by the tile size however large the image. The result is on the CPU, where
    a large photograph's output (4.6 GB for 6000x4000 at 4x) fits more easily than on a GPU.
    """
    if tile < 1:
        raise GankitError(f"The tile size must be at least 1 pixel, not {tile}.")
    overlap = receptive_radius(generator) if overlap is None else overlap
    s = generator.scale
    n, _, h, w = lr.shape
    out = torch.empty(n, 3, h * s, w * s)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
            part = generator(lr[..., ya:min(y1 + overlap, h), xa:min(x1 + overlap, w)]).float()
            out[..., y0 * s:y1 * s, x0 * s:x1 * s] = part[..., (y0 - ya) * s:(y1 - ya) * s,
                                                          (x0 - xa) * s:(x1 - xa) * s].cpu()
    return out
