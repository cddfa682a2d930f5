"""Choosing the device: ``auto`` takes a CUDA GPU when PyTorch sees one."""

from __future__ import annotations

import torch

from gankit.errors import GankitError


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise GankitError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu.")
        return torch.device("cuda")
    return torch.device("cpu")
