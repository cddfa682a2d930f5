"""Data-parallel training with PyTorch's own DistributedDataParallel, as started by torchrun.

``torchrun --nproc_per_node N -m gankit train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; each rank
then draws its own shard of every epoch and its own noise, gradients are averaged by DDP,
and only rank 0 writes grids, metrics and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from gankit.errors import GankitError
from gankit.models.base import GANFamily, TrainModules


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device | None = None

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: GANFamily) -> TrainModules:
        """The modules the train step calls with gradients: DDP wrappers when distributed."""
        if not self.active:
            return TrainModules(model.generator, model.discriminator)
        ids = [self.device.index] if self.device.type == "cuda" else None
        # SRResNet's D has no weights: DDP refuses such a module, and there is nothing to average.
        has_d = any(p.requires_grad for p in model.discriminator.parameters())
        return TrainModules(DistributedDataParallel(model.generator, device_ids=ids),
                            DistributedDataParallel(model.discriminator, device_ids=ids) if has_d
                            else model.discriminator)

    def any_rank(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true on every rank when true on any: ranks must stop or roll back together."""
        if not self.active:
            return flags
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def setup(device_choice: str) -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_choice != "cpu" and torch.cuda.is_available()
    if device_choice == "cuda" and not use_cuda:
        raise GankitError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu.")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(rank, world, device)
