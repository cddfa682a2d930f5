"""The baseline every gankit speed and quality figure is compared with: a plain PyTorch loop
of the same networks, written as the popular one-file scripts write it (PyTorch-GAN style):
a DataLoader over a TensorDataset, the default Adam, sigmoid + BCELoss, a G step on one
generated batch, then a D step on the same batch detached. Only the BatchNorm eps bug of
those scripts is left out, so the networks are the seeds' own.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

LATENT = 100


def bn(width: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(width, eps=1e-3, momentum=0.2)  # Keras BatchNormalization(momentum=0.8)


def mlp_generator(in_dim: int) -> nn.Sequential:
    layers, prev = [], in_dim
    for width in (256, 512, 1024):
        layers += [nn.Linear(prev, width), nn.LeakyReLU(0.2, inplace=True), bn(width)]
        prev = width
    return nn.Sequential(*layers, nn.Linear(prev, 784), nn.Tanh())


class PlainGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.G = mlp_generator(LATENT)
        self.D = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2, inplace=True), nn.Linear(512, 256),
                               nn.LeakyReLU(0.2, inplace=True), nn.Linear(256, 1), nn.Sigmoid())

    def generate(self, z, y):
        return self.G(z).view(-1, 1, 28, 28)

    def discriminate(self, x, y):
        return self.D(x.view(len(x), -1))


class PlainCGAN(nn.Module):
    def __init__(self):
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

    def discriminate(self, x, y):
        return self.D(x.view(len(x), -1) * self.d_emb(y))


PLAIN_MODELS = {"gan": PlainGAN, "cgan": PlainCGAN}


def plain_loop(model_name: str, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
               seconds: float, on_mark: Callable[[nn.Module, float], None] | None = None,
               marks: tuple[float, ...] = (), seed: int = 0) -> tuple[nn.Module, int, float]:
    """Train for ``seconds`` of training time; call ``on_mark(model, t)`` at each mark (its time
    is not counted). Returns the model, the number of steps and the training seconds."""
    torch.manual_seed(seed)
    model = PLAIN_MODELS[model_name]()
    opt_g = torch.optim.Adam(list(model.G.parameters()) + list(getattr(model, "g_emb", nn.Identity()).parameters()),
                             lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(model.D.parameters()) + list(getattr(model, "d_emb", nn.Identity()).parameters()),
                             lr=2e-4, betas=(0.5, 0.999))
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
        valid, fake_t = torch.ones(len(x), 1), torch.zeros(len(x), 1)
        z, gen_y = torch.randn(len(x), LATENT), torch.randint(0, 10, (len(x),))
        opt_g.zero_grad()
        gen = model.generate(z, gen_y)
        g_loss = bce(model.discriminate(gen, gen_y), valid)
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        d_loss = (bce(model.discriminate(x, y), valid) + bce(model.discriminate(gen.detach(), gen_y), fake_t)) / 2
        d_loss.backward()
        opt_d.step()
        steps += 1
        trained += time.perf_counter() - start
        while pending and trained >= pending[0]:
            if on_mark is not None:
                on_mark(model, pending[0])
            pending.pop(0)
    return model, steps, trained
