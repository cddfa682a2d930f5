"""What every data source returns: one in-memory tensor of samples plus their labels.

Images reach the models as float32 in [-1, 1] with shape (N, C, H, W); vector data (the toy
distributions) as (N, D). Decoded images are held as their uint8 pixels and converted a batch
at a time (``TensorData.take``). Labels are int64 with shape (N, A), one column per categorical
attribute, so one attribute (MNIST digits) and several (hair and eye colour) are handled alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from gankit.errors import GankitError


@dataclass(frozen=True)
class Attribute:
    """A categorical attribute: its name and the names of its values, in label order."""

    name: str
    values: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.values)

    def index(self, value: str | int) -> int:
        """The label of ``value``, given as a value name or as an integer label."""
        text = str(value).strip()
        if text in self.values:
            return self.values.index(text)
        try:
            label = int(text)
        except ValueError:
            label = -1
        if 0 <= label < self.num_classes:
            return label
        raise GankitError(
            f"{value!r} is not a value of attribute {self.name!r}; choose one of "
            f"{', '.join(self.values)} (or 0-{self.num_classes - 1})."
        )

    def to_dict(self) -> dict:
        return {"name": self.name, "values": list(self.values)}

    @classmethod
    def from_dict(cls, d: dict) -> "Attribute":
        """Raises ValueError for anything ``to_dict`` does not write."""
        if not (isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("values"), list)
                and d["values"] and all(isinstance(v, str) for v in d["values"])):
            raise ValueError(f"not an attribute: {d!r}")
        return cls(d["name"], tuple(d["values"]))


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data to be built, saved with every generator."""

    shape: tuple[int, ...]  # one sample's shape: (C, H, W) or (D,)
    attributes: tuple[Attribute, ...] = ()

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def num_classes(self) -> tuple[int, ...]:
        return tuple(a.num_classes for a in self.attributes)

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "attributes": [a.to_dict() for a in self.attributes]}

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        """Raises ValueError for anything ``to_dict`` does not write."""
        shape = d.get("shape") if isinstance(d, dict) else None
        if not (isinstance(shape, list) and len(shape) in (1, 3)
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
                and isinstance(d.get("attributes"), list)):
            raise ValueError(f"not a data description: {d!r}")
        return cls(tuple(shape), tuple(Attribute.from_dict(a) for a in d["attributes"]))


def labels_outside(labels: torch.Tensor, attributes: tuple[Attribute, ...]) -> tuple[Attribute, torch.Tensor] | None:
    """The first attribute whose column of (n, A) ``labels`` holds numbers that are none of its classes,
    with those numbers; None when every label is a class."""
    for i, attribute in enumerate(attributes):
        column = labels[:, i]
        bad = column[(column < 0) | (column >= attribute.num_classes)]
        if len(bad):
            return attribute, bad
    return None


@dataclass
class TensorData:
    """A whole dataset held as one tensor, ``stored``.

    Decoded images are stored as their uint8 pixels 0-255, a quarter of float32's memory (CelebA
    at 64 px: 2.5 GB, not 10), on the host and on every GPU of a run alike; samples computed in
    floats (vectors, grey faces) are stored as float32 in the models' range. ``take`` gives any
    subset as float32, converted a batch at a time; ``samples`` gives the whole set.
    """

    stored: torch.Tensor
    labels: torch.Tensor | None
    info: DataInfo
    name: str
    notes: list[str] = field(default_factory=list)  # one line each: what loading skipped or found
    # The images of the source kept out of training (a folder's held-out photographs), which the
    # run records so that its evaluation scores these and no others, whatever the folder holds later.
    held_out: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A Python caller builds these by hand (``train(cfg, run, data=TensorData(...))``): what the
        # loaders guarantee is checked here, else it fails steps later inside a model.
        if self.stored.dtype not in (torch.uint8, torch.float32):
            raise GankitError(f"Dataset {self.name!r} holds {self.stored.dtype} samples; store uint8 pixels 0-255 or "
                              "float32 (images in [-1, 1]).")
        if len(self.stored) == 0:
            raise GankitError(f"Dataset {self.name!r} holds no samples; point it at data that has some.")
        if self.labels is not None and self.labels.shape != (len(self.stored), len(self.info.attributes)):
            raise ValueError(f"labels of shape {tuple(self.labels.shape)} do not match the data")
        if self.labels is not None and self.labels.dtype != torch.int64:
            raise GankitError(f"Dataset {self.name!r} holds {self.labels.dtype} labels; store class numbers as int64.")
        outside = labels_outside(self.labels, self.info.attributes) if self.labels is not None else None
        if outside is not None:
            attribute, bad = outside
            raise GankitError(f"Dataset {self.name!r} holds labels of {attribute.name!r} from {int(bad.min())} "
                              f"to {int(bad.max())}; its classes are 0-{attribute.num_classes - 1}.")
        # NaN passes (a divergence test feeds it); values past 1 are pixels not yet scaled, which train quietly wrong.
        if self.info.is_image and self.stored.dtype == torch.float32:
            low, high = torch.aminmax(self.stored)  # no copy of the set, as abs() would make
            if float(low) < -1.001 or float(high) > 1.001:
                raise GankitError(f"Dataset {self.name!r} holds float images with values from {float(low):g} to "
                                  f"{float(high):g}; store uint8 pixels, or floats in [-1, 1] (pixels / 127.5 - 1).")

    def __len__(self) -> int:
        return len(self.stored)

    def take(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The samples at ``index`` (a slice, or a 1-d tensor of indices on the data's device) as
        float32, images in [-1, 1]."""
        # index_select, not stored[index]: on a CPU it copied a batch of 64 digits 20x faster.
        chosen = self.stored[index] if isinstance(index, slice) else self.stored.index_select(0, index)
        return signed(chosen) if chosen.dtype == torch.uint8 else chosen

    @property
    def samples(self) -> torch.Tensor:
        """Every sample as float32: a new tensor of four bytes a value when pixels are stored, so
        code that reads a large set in parts takes them with ``take``."""
        return self.take(slice(None))

    def to(self, device: torch.device) -> "TensorData":
        labels = None if self.labels is None else self.labels.to(device)
        return TensorData(self.stored.to(device), labels, self.info, self.name, self.notes, self.held_out)


def plural(count: int, noun: str) -> str:
    """'1 image', '2 images'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def refuse_repeated(source: str, options: list[str]) -> None:
    """A spec's option ('key=value') given twice: which value was meant cannot be known, so
    neither is taken. Empty options are left to the caller's own check."""
    keys = [option.partition("=")[0].strip() for option in options]
    twice = sorted({key for key in keys if key and keys.count(key) > 1})
    if twice:
        raise GankitError(f"{source} option {twice[0]!r} is given twice; give each option once.")


def signed(pixels: Any) -> torch.Tensor:
    """Pixels in 0-255 (a uint8 or float array or tensor, any shape) as a new float32 tensor in
    [-1, 1], the range every model here works in (on the pixels' device)."""
    x = torch.as_tensor(pixels)
    x = x.float() if x.dtype != torch.float32 else x.clone()  # never a view of the caller's array
    return x.div_(127.5).sub_(1.0)


class EpochBatches:
    """Batches drawn by index from one shuffled permutation per epoch.

    The order depends only on (seed, epoch), so the batch of any step can be recomputed after
    a resume without saving sampler state, and each distributed rank takes its own slice of
    the same permutation. The last incomplete batch of an epoch is dropped. The permutation is
    drawn on the CPU (the same on every device) and moved to ``device`` once per epoch, so a
    step's indices need no copy from the host.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 device: torch.device | str = "cpu"):
        per_rank = n // world
        if per_rank < 2:  # the smallest batch train.batch_size allows
            each = f" ({per_rank} for each of {world} processes)" if world > 1 else ""
            raise GankitError(f"The data hold {plural(n, 'sample')}{each}, and a batch needs at least 2; "
                              "train on a larger dataset.")
        if per_rank < batch_size:
            raise GankitError(
                f"The batch size {batch_size} is larger than the {per_rank} samples each process "
                f"gets; lower --batch-size to at most {per_rank}."
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.device = rank, world, torch.device(device)
        self.per_epoch = per_rank // batch_size
        self._epoch = -1
        self._order: torch.Tensor | None = None

    def indices(self, batch_number: int) -> torch.Tensor:
        """Sample indices of the ``batch_number``-th batch since the start of training."""
        epoch, pos = divmod(batch_number, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.n, generator=g)
            self._order = order[self.rank :: self.world].to(self.device)
            self._epoch = epoch
        start = pos * self.batch_size
        return self._order[start : start + self.batch_size]

    def __iter__(self) -> Iterator[torch.Tensor]:
        b = 0
        while True:
            yield self.indices(b)
            b += 1
