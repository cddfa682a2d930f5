"""The baseline every gankit speed and quality figure is compared with: a plain PyTorch loop
of the same networks, written as the popular one-file scripts write it (PyTorch-GAN style):
a DataLoader over a TensorDataset, the default Adam, sigmoid + BCELoss, a G step on one
generated batch, then a D step on the same batch detached, all in fp32. Only the BatchNorm
eps bug of those scripts is left out, so the MLP networks are the seeds' own.

The convolutional families (dcgan, acgan, infogan) run gankit's own networks in this loop
(``PlainFamily``): the same layers and the same channels_last layout, so their speed ratio
counts only what the loop does differently. Their extra losses are added the way the
scripts add them: ACGAN's class cross-entropy to both updates, InfoGAN's information loss
to G's update (Q learns there, as in gankit, rather than in a third pass).

The super-resolution families (srresnet, srgan) have their own loop (``plain_sr_loop``), as
seed 004 writes it: a DataLoader of fixed (LR, HR) crop pairs, gankit's G and D, the L1 content
loss on VGG19 features plus 1e-3 x a least-squares adversarial loss for G, least squares for
D, all in fp32; srresnet's G alone on the pixel MSE.

The benchmarks run this loop in a fresh process (``in_fresh_process``), as a script runs:
nothing a gankit run leaves behind in the benchmark's process (allocator state, thread
settings, compiled code) reaches it. On a GPU (``device="cuda"``) the loop is the scripts'
too: networks on the GPU, each batch copied there from the DataLoader, noise drawn there, and
the losses read back every step (the scripts print them every batch).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from gankit.data.base import DataInfo
from gankit.data.photos import downscale
from gankit.models import get_family
from gankit.models.acgan import auxiliary_loss
from gankit.models.vgg import LAYER_ENDS

LATENT = 100


def bn(width: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(width, eps=1e-3, momentum=0.2)  # Keras BatchNormalization(momentum=0.8)


def mlp_generator(in_dim: int) -> nn.Sequential:
    layers, prev = [], in_dim
    for width in (256, 512, 1024):
        layers += [nn.Linear(prev, width), nn.LeakyReLU(0.2, inplace=True), bn(width)]
        prev = width
    return nn.Sequential(*layers, nn.Linear(prev, 784), nn.Tanh())


class PlainModel(nn.Module):
    """What the loop needs of a model: its two parameter sets, fakes' inputs, probabilities."""

    G: nn.Module
    D: nn.Module

    def g_parameters(self) -> list[nn.Parameter]:
        return list(self.G.parameters())

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.D.parameters())

    def draw(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Noise and the labels the fakes are asked for."""
        return torch.randn(n, LATENT, device=device), torch.randint(0, 10, (n,), device=device)

    def discriminate(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """(probability of real, any other outputs of D)."""
        raise NotImplementedError

    def g_extra_loss(self, extra: Tensor | None, y: Tensor) -> Tensor | float:
        return 0.0

    def d_extra_loss(self, extra: Tensor | None, y: Tensor) -> Tensor | float:
        return 0.0


class PlainGAN(PlainModel):
    def __init__(self, info: DataInfo | None = None):
        super().__init__()
        self.G = mlp_generator(LATENT)
        self.D = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2, inplace=True), nn.Linear(512, 256),
                               nn.LeakyReLU(0.2, inplace=True), nn.Linear(256, 1), nn.Sigmoid())

    def generate(self, z, y):
        return self.G(z).view(-1, 1, 28, 28)

    def discriminate(self, x, y):
        return self.D(x.view(len(x), -1)), None


class PlainCGAN(PlainModel):
    def __init__(self, info: DataInfo | None = None):
        super().__init__()
        self.g_emb, self.d_emb = nn.Embedding(10, LATENT), nn.Embedding(10, 784)
        self.G = mlp_generator(LATENT)
        layers, prev = [], 784
        for i in range(3):
            layers += [nn.Linear(prev, 512), nn.LeakyReLU(0.2, inplace=True)] + ([nn.Dropout(0.4)] if i else [])
            prev = 512
        self.D = nn.Sequential(*layers, nn.Linear(512, 1), nn.Sigmoid())

    def generate(self, z, y):
        return self.G(z * self.g_emb(y)).view(-1, 1, 28, 28)

    def g_parameters(self) -> list[nn.Parameter]:
        return [*self.G.parameters(), *self.g_emb.parameters()]

    def d_parameters(self) -> list[nn.Parameter]:
        return [*self.D.parameters(), *self.d_emb.parameters()]

    def discriminate(self, x, y):
        return self.D(x.view(len(x), -1) * self.d_emb(y)), None


class PlainFamily(PlainModel):
    """A convolutional family's own G and D (its default configuration) in the plain loop."""

    def __init__(self, name: str, info: DataInfo):
        super().__init__()
        family = get_family(name)
        self.family = family(family.default_config(family.default_data), info)
        self.G, self.D = self.family.generator, self.family.discriminator
        self.with_g = [p for m in self.family.trained_with_generator() for p in m.parameters()]  # InfoGAN's Q head

    def g_parameters(self) -> list[nn.Parameter]:
        return [*self.G.parameters(), *self.with_g]

    def d_parameters(self) -> list[nn.Parameter]:
        held = {id(p) for p in self.with_g}
        return [p for p in self.D.parameters() if id(p) not in held]

    def draw(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        if self.family.name == "infogan":
            codes = self.G.codes.sample(n, None, device)
            return torch.cat([torch.randn(n, self.G.noise_dim, device=device), codes], dim=1), codes
        labels = torch.stack([torch.randint(0, k, (n,), device=device) for k in self.G.info.num_classes], 1) \
            if self.G.info.num_classes else torch.zeros(n, 0, dtype=torch.long, device=device)
        return torch.randn(n, self.G.latent_dim, device=device), labels

    def generate(self, z, y):
        return self.G(z, y if self.family.name == "acgan" else None)  # InfoGAN's codes are inside z

    def discriminate(self, x, y):
        out = self.D(x)
        adversarial, extra = out if isinstance(out, tuple) else (out, None)
        return torch.sigmoid(adversarial), extra

    def g_extra_loss(self, extra, y):
        if self.family.name == "acgan":
            return auxiliary_loss(extra, y, self.family.aux_weights)
        if self.family.name == "infogan":
            return self.family.info_loss(extra, y)
        return 0.0

    def d_extra_loss(self, extra, y):
        return auxiliary_loss(extra, y, self.family.aux_weights) if self.family.name == "acgan" else 0.0


PLAIN_MODELS = {"gan": PlainGAN, "cgan": PlainCGAN}
CONV_FAMILIES = ("dcgan", "acgan", "infogan")
SR_FAMILIES = ("srresnet", "srgan")


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a new Python process, with the process defaults a one-file script starts
    with (malloc's state, PyTorch's thread count), whatever this process has done before."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def plain_model(name: str, info: DataInfo | None = None) -> PlainModel:
    return PLAIN_MODELS[name](info) if name in PLAIN_MODELS else PlainFamily(name, info)


def plain_loop(model_name: str, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
               seconds: float, on_mark: Callable[[nn.Module, float], None] | None = None,
               marks: tuple[float, ...] = (), seed: int = 0, info: DataInfo | None = None,
               device: str = "cpu") -> tuple[nn.Module, int, float]:
    """Train for ``seconds`` of training time; call ``on_mark(model, t)`` at each mark (its time
    is not counted). ``labels`` are what the model's D takes: the digit (N,) for the MLP models,
    every attribute (N, A) for the conv families (which also need the data's ``info``).
    Returns the model, the number of steps and the training seconds."""
    torch.manual_seed(seed)
    device = torch.device(device)
    model = plain_model(model_name, info).to(device)
    opt_g = torch.optim.Adam(model.g_parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.d_parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, drop_last=True)
    steps, trained, pending = 0, 0.0, list(marks)
    batches = iter(loader)
    while trained < seconds:
        start = time.perf_counter()  # the clock includes the DataLoader's work
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        x, y = x.to(device), y.to(device)
        valid, fake_t = torch.ones(len(x), 1, device=device), torch.zeros(len(x), 1, device=device)
        z, gen_y = model.draw(len(x), device)
        opt_g.zero_grad()
        gen = model.generate(z, gen_y)
        p_fake, extra = model.discriminate(gen, gen_y)
        g_loss = bce(p_fake, valid) + model.g_extra_loss(extra, gen_y)
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        p_real, extra = model.discriminate(x, y)
        d_loss = (bce(p_real, valid) + model.d_extra_loss(extra, y)
                  + bce(model.discriminate(gen.detach(), gen_y)[0], fake_t)) / 2
        d_loss.backward()
        opt_d.step()
        d_loss.item(), g_loss.item()  # the scripts print both every batch; on a GPU this waits for the step
        steps += 1
        trained += time.perf_counter() - start
        while pending and trained >= pending[0]:
            if on_mark is not None:
                on_mark(model, pending[0])
            pending.pop(0)
    return model, steps, trained


def random_vgg_features(layer: str = "vgg54") -> nn.Module:
    """VGG19's convolutions up to ``layer`` with random weights: the same work as the ImageNet
    weights, which a speed measurement does not need (and this machine does not have)."""
    from torchvision.models import vgg19

    return vgg19(weights=None).features[:LAYER_ENDS[layer]].eval().requires_grad_(False)


def plain_sr_loop(model_name: str, tiles: torch.Tensor, batch_size: int, seconds: float,
                  info: DataInfo, device: str = "cpu") -> tuple[nn.Module, nn.Module, int, float]:
    """Seed 004's loop on gankit's SR networks for ``seconds`` of training time:
    (G, D, steps, training seconds)."""
    family = get_family(model_name)
    cfg = family.default_config(family.default_data)
    device = torch.device(device)
    G, D = family.build_generator(cfg, info).to(device), family.build_discriminator(cfg, info).to(device)
    adversarial = any(p.requires_grad for p in D.parameters())  # srresnet's D is empty
    vgg = random_vgg_features().to(device) if adversarial else None
    crop, margin = cfg.crop, (tiles.shape[-1] - cfg.crop) // 2
    hr = tiles[..., margin:margin + crop, margin:margin + crop]  # fixed centre crops, as a dataset folder holds
    loader = DataLoader(TensorDataset(downscale(hr, cfg.scale), hr), batch_size=batch_size, shuffle=True,
                        drop_last=True)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.9, 0.999)) if adversarial else None
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    steps, trained, batches = 0, 0.0, iter(loader)
    while trained < seconds:
        start = time.perf_counter()
        try:
            lr, real = next(batches)
        except StopIteration:
            batches = iter(loader)
            lr, real = next(batches)
        lr, real = lr.to(device), real.to(device)
        opt_g.zero_grad()
        sr = G(lr)
        if adversarial:
            valid, fake = torch.ones(len(lr), 1, device=device), torch.zeros(len(lr), 1, device=device)
            loss_g = l1(vgg(sr), vgg(real).detach()) + 1e-3 * mse(D(sr), valid)
        else:
            loss_g = mse(sr, real)
        loss_g.backward()
        opt_g.step()
        if adversarial:
            opt_d.zero_grad()
            loss_d = (mse(D(real), valid) + mse(D(sr.detach()), fake)) / 2
            loss_d.backward()
            opt_d.step()
        loss_g.item()  # printed every batch, as above
        steps += 1
        trained += time.perf_counter() - start
    return G, D, steps, trained
