"""Building blocks shared by several families."""

from __future__ import annotations

import torch
from torch import Tensor, nn
import torch.nn.functional as F


def channels_last(x: Tensor) -> Tensor:
    """``x`` in the NHWC layout. A DCGAN step on a CPU takes 15-20% less time (SRResNet's 13%) with every map and
    weight in it (measured at 32x32, batch 64; oneDNN's convolutions need no layout reorders)."""
    return x.contiguous(memory_format=torch.channels_last)


def keras_batchnorm(features: int) -> nn.BatchNorm1d:
    """BatchNormalization(momentum=0.8) as the Keras seeds use it.

    Keras' momentum is the weight of the old running mean, PyTorch's that of the new one,
    so 0.8 becomes 0.2; Keras' epsilon is 1e-3. (PyTorch-GAN passes 0.8 as eps: a known bug.)
    """
    return nn.BatchNorm1d(features, momentum=0.2, eps=1e-3)


def mlp_generator_body(in_dim: int, hidden: tuple[int, ...], out_dim: int, batchnorm: bool = True) -> nn.Sequential:
    """Dense -> LeakyReLU(0.2) [-> BatchNorm] per hidden layer, then Dense -> tanh (seeds 000, 003)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.LeakyReLU(0.2, inplace=True)]
        layers += [keras_batchnorm(width)] if batchnorm else []
        in_dim = width
    layers += [nn.Linear(in_dim, out_dim), nn.Tanh()]
    return nn.Sequential(*layers)


class Conditioning(nn.Module):
    """Combines a vector with labels; ``out_dim`` is the width of the result."""

    out_dim: int

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError


DROPOUT_RANGE = (0.004, 0.996)  # the rates FastDropout can represent: 1/256 to 255/256, rounded


def random_bytes(shape: torch.Size, device: torch.device) -> Tensor:
    """Uniform random bytes of ``shape``, eight from each 64-bit draw.

    Filling a uint8 tensor spends a whole draw on every byte: on a CPU that took 400 us for the
    262,144 bytes of a batch-256 CGAN dropout mask, against 100 us for the same bytes as int64
    words (all 2^64 values but one, so each byte value has its 1/256 chance to within 2^-64).
    """
    count = shape.numel()
    words = torch.empty((count + 7) // 8, dtype=torch.int64, device=device).random_(-2**63, 2**63 - 1)
    return words.view(torch.uint8)[:count].view(shape)


class FastDropout(nn.Module):
    """Dropout whose mask costs one random byte per element instead of one float.

    ``nn.Dropout`` on a CPU draws a Mersenne-Twister float per element, which took 14% of a
    CGAN step here; bytes drawn eight at a time (``random_bytes``) are about 20x cheaper. ``p`` is
    rounded to a multiple of 1/256 (0.4 becomes 0.398), which no training run can tell apart.
    """

    def __init__(self, p: float):
        super().__init__()
        self.threshold = round(p * 256)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.threshold == 0:
            return x
        keep = random_bytes(x.shape, x.device) >= self.threshold
        # One product with a mask that holds the rescaling too (0 or 1/(1-p), within 0.2% in bf16):
        # its backward is one product; scaling x * mask afterwards took twice as long fwd + bwd.
        return x * keep.to(x.dtype).mul_(256 / (256 - self.threshold))

    def extra_repr(self) -> str:
        return f"p={self.threshold / 256:.4f}"


def mlp_discriminator_body(in_dim: int, hidden: tuple[int, ...], dropout: float = 0.0) -> nn.Sequential:
    """Dense -> LeakyReLU(0.2) [-> Dropout, on every hidden layer but the first] per hidden layer, then 1 logit."""
    layers: list[nn.Module] = []
    for i, width in enumerate(hidden):
        layers += [nn.Linear(in_dim, width), nn.LeakyReLU(0.2, inplace=True)]
        if dropout and i > 0:
            layers.append(FastDropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, 1))
    return nn.Sequential(*layers)


def one_hot_labels(labels: Tensor, num_classes: tuple[int, ...]) -> Tensor:
    """Concatenated one-hot codes of every attribute column: (N, A) -> (N, sum(classes))."""
    parts = [F.one_hot(labels[:, i], k) for i, k in enumerate(num_classes)]
    return torch.cat(parts, dim=1).float()


def conv_up_block(c_in: int, c_out: int) -> list[nn.Module]:
    """4x4 transposed convolution, stride 2 (doubles the map), BatchNorm, ReLU: DCGAN's and InfoGAN's G."""
    # No bias before BatchNorm: its shift would be subtracted again.
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def conv_down_block(c_in: int, c_out: int, batchnorm: bool, slope: float = 0.2) -> list[nn.Module]:
    """4x4 convolution, stride 2 (halves the map), [BatchNorm], LeakyReLU: DCGAN's (0.2) and InfoGAN's (0.1) D."""
    conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm)
    return [conv, *([nn.BatchNorm2d(c_out)] if batchnorm else []), nn.LeakyReLU(slope, inplace=True)]


ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True), "relu": lambda: nn.ReLU(inplace=True)}


def with_activation(body: nn.Sequential, name: str) -> nn.Sequential:
    """``body`` with every LeakyReLU(0.2) of the seed bodies replaced by ``ACTIVATIONS[name]``."""
    for i, layer in enumerate(body):
        if isinstance(layer, nn.LeakyReLU):
            body[i] = ACTIVATIONS[name]()
    return body


def with_spectral_norm(body: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every Linear and Conv layer of ``body``.

    Each weight is divided by its largest singular value (one power iteration per training
    forward), which bounds D's Lipschitz constant and keeps its gradients informative.
    """
    for name, layer in list(body.named_children()):
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            setattr(body, name, nn.utils.parametrizations.spectral_norm(layer))
        else:
            with_spectral_norm(layer)
    return body
