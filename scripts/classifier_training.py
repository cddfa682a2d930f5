"""What the two classifier scripts share: the seeded training loop and writing the weights
gankit ships (safetensors + a JSON with their sha256, so loading can verify them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from gankit.artifacts import state_to_safetensors
from gankit.atomic import atomic_write_bytes, atomic_write_json, sha256_bytes

BATCH = 64
WEIGHTS = Path(__file__).resolve().parent.parent / "src/gankit/weights"


def seeded_generator(seed: int) -> torch.Generator:
    torch.set_num_threads(1)  # the thread count changes the order of float sums, hence the weights
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def fit(net: nn.Module, x: Tensor, y: Tensor, epochs: int, g: torch.Generator,
        loss_of: Callable[[nn.Module, Tensor, Tensor], Tensor],
        augment: Callable[[Tensor, torch.Generator], Tensor]) -> None:
    """AdamW with a one-cycle schedule over ``epochs`` seeded shuffles of (x, y)."""
    steps = epochs * (len(x) // BATCH)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x) - BATCH + 1, BATCH):
            idx = order[start:start + BATCH]
            loss = loss_of(net, augment(x[idx], g), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}", flush=True)


def write_weights(out: Path, name: str, net: nn.Module, record: dict[str, Any]) -> None:
    """``out/NAME.safetensors`` and ``out/NAME.json`` (its sha256 plus ``record``)."""
    weights = state_to_safetensors(net.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / f"{name}.safetensors", weights)
    atomic_write_json(out / f"{name}.json", {"sha256": sha256_bytes(weights), **record, "torch": torch.__version__})
    print(f"wrote {out / f'{name}.safetensors'}")
