"""Data-parallel training with PyTorch's own DistributedDataParallel, as started by torchrun.

``torchrun --nproc_per_node N -m gankit train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; each rank
then draws its own shard of every epoch and its own noise, gradients are averaged by DDP,
and only rank 0 writes grids, metrics and checkpoints. Only rank 0 reads them back, too (a
checkpoint for a resume or a rollback is sent to the others), so machines need not share a
filesystem for training.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from gankit.errors import GankitError
from gankit.models.base import GANFamily, TrainModules

T = TypeVar("T")


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

    def agree(self, elapsed: float, *flags: bool) -> tuple[float, ...]:
        """The longest training time of any rank, then each flag, true on every rank when true on
        any: ranks must stop or roll back together, and follow one clock (for the learning rates)."""
        if not self.active:
            return (elapsed, *flags)
        t = torch.tensor([elapsed, *(float(f) for f in flags)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        values = t.tolist()
        return (values[0], *(bool(v) for v in values[1:]))

    def check_same(self, settings: dict[str, Any]) -> None:
        """Stop every rank, in one sentence, when any rank's ``settings`` (nested dicts) differ from
        rank 0's. On several machines each has its own command line, --config file and copy of a
        run's config.json: ranks with different budgets would wait in collectives that never match
        (until the backend's timeout, with nothing saved), different networks end in DDP's own
        traceback, and a different seed or batch silently shards the data wrong."""
        if not self.active:
            return
        everyone: list = [None] * self.world
        dist.all_gather_object(everyone, flattened(settings))  # pickled between the ranks of this run
        main = everyone[0]
        for rank, theirs in enumerate(everyone[1:], start=1):
            for key in sorted(main.keys() | theirs.keys()):
                if main.get(key) != theirs.get(key):
                    raise GankitError(f"Rank {rank} of the distributed run has {key}={short(theirs.get(key))} where "
                                      f"rank 0 has {short(main.get(key))}; give every machine the same command line, "
                                      "--config file, run config.json and data.")

    def gather_to_main(self, value: T) -> list[T] | None:
        """Every rank's ``value`` in rank order on rank 0 (None on the others)."""
        if not self.active:
            return [value]
        gathered: list | None = [None] * self.world if self.is_main else None
        dist.gather_object(value, gathered, dst=0)  # pickled between the ranks of this run, never to a file
        return gathered

    def from_main(self, read: Callable[[], T]) -> T:
        """What ``read`` returns on rank 0, on every rank (or the GankitError it raised there, raised
        on every rank). For what only rank 0 may be able to read: on several machines without a
        shared filesystem the run folder, checkpoints included, exists on rank 0's machine only."""
        if not self.active:
            return read()
        box: list = [None]
        if self.is_main:
            try:
                box[0] = (read(), None)
            except GankitError as e:
                box[0] = (None, str(e))
        dist.broadcast_object_list(box, src=0)  # pickled between the ranks of this run, never to a file
        value, error = box[0]
        if error is not None:
            raise GankitError(error)
        return value

    def close(self, finished: bool = True) -> None:
        """Leave the process group: after a finished run once every rank has finished. A rank
        that failed leaves at once, since the others wait in collectives of their own and would
        never reach a barrier; its leaving makes theirs fail, so the run stops instead of hanging."""
        if self.active and dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()


def short(value: Any, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters: a label list can hold thousands of names."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def flattened(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one, with dotted keys: {"train": {"steps": 5}} -> {"train.steps": 5}."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(flattened(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def lost_a_rank(error: RuntimeError) -> bool:
    """Whether a collective failed because another rank went away (gloo and NCCL say so in words)."""
    return isinstance(error, dist.DistError) or any(word in str(error) for word in ("gloo", "NCCL", "Connection"))


@contextlib.contextmanager
def lost_rank_as_sentence(run_dir: Path) -> Iterator[None]:
    """In a distributed run, a collective that failed because another rank went away ends in one
    sentence (that rank has said why itself); any other error passes through as it is."""
    try:
        yield
    except RuntimeError as e:
        if launched_world() == 1 or not lost_a_rank(e):
            raise
        text = str(e).strip()
        # gloo and NCCL begin with the source location and end with advice: keep what happened
        reason = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0]).split(". ")[0] if text else type(e).__name__
        raise GankitError(f"Rank {launched_rank()} of the distributed run stopped ({reason}); the usual cause is "
                          "another rank that failed or was stopped, and its own message says why. Once that is "
                          f"fixed, continue with --resume {run_dir} from the last checkpoint (or start again if the "
                          "run stopped before its first).") from e


def launcher_number(name: str, default: int) -> int:
    """A whole number torchrun puts in the environment, or a GankitError naming the variable."""
    text = os.environ.get(name, str(default))
    try:
        return int(text)
    except ValueError:
        raise GankitError(f"The environment variable {name} is {text!r}, not a whole number; start distributed runs "
                          "with torchrun, which sets it, or unset it.") from None


def launched_world() -> int:
    """How many ranks torchrun started (1 without torchrun); readable before the ranks connect."""
    return launcher_number("WORLD_SIZE", 1)


def launched_rank() -> int:
    """This process's rank among those torchrun started (0 without torchrun)."""
    return launcher_number("RANK", 0)


def setup(device_choice: str, timeout_minutes: float = 0.0) -> Distributed:
    """This rank's place in a torchrun launch (a single process without one). ``timeout_minutes``
    (train.dist_timeout) bounds each wait in a collective; 0 keeps the backend's default."""
    world = launched_world()
    if world <= 1:
        return Distributed()
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise GankitError(f"WORLD_SIZE is {world} but {', '.join(missing)} {verb} not set, so this process was not "
                          f"started by torchrun: run `torchrun --nproc_per_node {world} -m gankit train ...`, or unset "
                          "WORLD_SIZE.")
    rank, local_rank = launched_rank(), launcher_number("LOCAL_RANK", 0)
    use_cuda = device_choice != "cpu" and torch.cuda.is_available()
    if device_choice == "cuda" and not use_cuda:
        raise GankitError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu.")
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise GankitError(f"Local rank {local_rank} has no GPU of its own: this machine has "
                          f"{torch.cuda.device_count()}; start torchrun with --nproc_per_node no larger than that.")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        timeout = {"timeout": timedelta(minutes=timeout_minutes)} if timeout_minutes else {}
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", **timeout)
    return Distributed(rank, world, device)
