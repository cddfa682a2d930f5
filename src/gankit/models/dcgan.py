"""DCGAN: the deep convolutional GAN (seed 002, Radford et al. 2015).

G: z -> linear projection, reshaped to a 4x4 map (7x7 for 28-pixel images) -> transposed
convolutions (4x4, stride 2), each with BatchNorm and ReLU, channels halving as the map
doubles -> tanh. D mirrors it: strided 4x4 convolutions with LeakyReLU(0.2) and BatchNorm
(not on the first layer), channels doubling, no pooling and no hidden dense layer, then one
convolution over the whole remaining map to the logits. Weights start from N(0, 0.02).

The networks are sized by the data (channels and an image side of 4 or 7 times a power of
two: 16, 28, 32, 64, 128, ...); ``acgan`` builds on the same two bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gankit.data.base import DataInfo
from gankit.errors import GankitError
from gankit.models.base import GANConfig, GANFamily, Generator
from gankit.models.layers import Conditioning, channels_last, conv_down_block, conv_up_block
from gankit.models.registry import register

START_SIDES = (4, 7)  # the side of G's first map: 4 as in the paper, 7 for MNIST's 28 pixels
MIN_DOUBLINGS, MAX_DOUBLINGS = 2, 6  # at least two layers with BatchNorm in G


@dataclass
class DCGANConfig(GANConfig):
    g_width: int = 64  # channels of G's last hidden layer; doubled per layer towards the 4x4 map
    d_width: int = 64  # channels of D's first layer; doubled per layer
    max_width: int = 512  # cap on any layer's channels (the paper's 64x64 G stops at 1024)

    def validate(self) -> None:
        super().validate()
        for key, value in {"g_width": self.g_width, "d_width": self.d_width, "max_width": self.max_width}.items():
            if value < 1:
                raise GankitError(f"model.{key} must be at least 1, not {value}.")


def conv_plan(info: DataInfo) -> tuple[int, int]:
    """(start side, number of stride-2 layers) for square images of the data's size."""
    if not info.is_image or info.shape[1] != info.shape[2]:
        raise GankitError(f"The convolutional models need square images, not samples of shape {info.shape}; "
                          "choose an image dataset or set data.image_size.")
    side = info.shape[1]
    for start in START_SIDES:
        doublings = (side // start).bit_length() - 1
        if MIN_DOUBLINGS <= doublings <= MAX_DOUBLINGS and start << doublings == side:
            return start, doublings
    supported = sorted(s << d for s in START_SIDES for d in range(MIN_DOUBLINGS, MAX_DOUBLINGS + 1))
    raise GankitError(f"Images of side {side} do not fit the convolutional models; set data.image_size to one "
                      f"of {', '.join(map(str, supported))}.")


def layer_widths(width: int, doublings: int, cap: int) -> list[int]:
    """Channels of the hidden maps from the largest map to the smallest: width, 2*width, ..."""
    return [min(width << i, cap) for i in range(doublings)]


def init_dcgan_weights(module: nn.Module) -> None:
    """The paper's initialisation: every weight from N(0, 0.02); BatchNorm scales from N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ConvGenerator(Generator):
    """z (and, with ``condition``, labels) -> image in [-1, 1]."""

    def __init__(self, latent_dim: int, info: DataInfo, width: int, max_width: int,
                 condition: Conditioning | None = None):
        super().__init__()
        self.latent_dim, self.info, self.condition = latent_dim, info, condition
        start, doublings = conv_plan(info)
        widths = layer_widths(width, doublings, max_width)[::-1]  # from the start map outwards
        self.start_shape = (widths[0], start, start)
        in_dim = condition.out_dim if condition is not None else latent_dim
        self.project = nn.Linear(in_dim, widths[0] * start * start, bias=False)
        self.start_norm = nn.Sequential(nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += conv_up_block(c_in, c_out)
        layers += [nn.ConvTranspose2d(widths[-1], info.shape[0], 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        init_dcgan_weights(self)
        self.to(memory_format=torch.channels_last)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.condition(z, labels) if self.condition is not None else z
        h = channels_last(self.project(h).view(z.shape[0], *self.start_shape))
        return self.body(self.start_norm(h))


class ConvDiscriminator(nn.Module):
    """Image -> (N, outputs) logits; ``features`` is the last map, shared by every head."""

    def __init__(self, info: DataInfo, width: int, max_width: int, outputs: int = 1):
        super().__init__()
        start, doublings = conv_plan(info)
        widths = layer_widths(width, doublings, max_width)
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip([info.shape[0], *widths], widths)):
            layers += conv_down_block(c_in, c_out, batchnorm=i > 0)
        self.features = nn.Sequential(*layers)
        # A convolution over the whole last map: the paper's final dense layer, as a conv.
        self.head = nn.Conv2d(widths[-1], outputs, start)
        init_dcgan_weights(self)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.features(channels_last(x))).flatten(1)


def check_images(family: str, info: DataInfo) -> None:
    """Raise GankitError unless the data are square images the conv networks can be sized for."""
    if not info.is_image:
        raise GankitError(f"{family} needs image data, not vectors of shape {info.shape}; choose an image dataset "
                          "(e.g. faces or mnist) or model gan.")
    conv_plan(info)


@register
class DCGAN(GANFamily):
    name = "dcgan"
    summary = "Deep convolutional GAN (seed 002): unconditional, square images (16, 28, 32, 64, 128, ...)."
    Config = DCGANConfig
    default_data = "faces"

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        check_images(cls.name, info)

    @classmethod
    def default_train(cls, data_spec: str) -> dict[str, Any]:
        return {"batch_size": 128}  # the paper's; its Adam (2e-4, beta1 0.5) is the loop's default

    @classmethod
    def build_generator(cls, cfg: DCGANConfig, info: DataInfo) -> Generator:
        return ConvGenerator(cfg.latent_dim, info, cfg.g_width, cfg.max_width)

    @classmethod
    def build_discriminator(cls, cfg: DCGANConfig, info: DataInfo) -> nn.Module:
        return ConvDiscriminator(info, cfg.d_width, cfg.max_width)
