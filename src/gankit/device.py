"""Choosing the device: ``auto`` takes a CUDA GPU when PyTorch sees one."""

from __future__ import annotations

import torch

from gankit.errors import GankitError


def resolve_device(choice: str | torch.device) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a device; a GPU that is not there is an error, not a CPU."""
    text = str(choice)
    kind, _, index = text.partition(":")
    if kind not in ("auto", "cpu", "cuda") or (index and (kind != "cuda" or not index.isdecimal())):
        raise GankitError(f"Unknown device {text!r}; use auto, cpu, cuda or cuda:N.")
    if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise GankitError(f"Device {text} was asked for but PyTorch sees no CUDA GPU; use --device cpu (or auto).")
        if index and int(index) >= torch.cuda.device_count():
            raise GankitError(f"Device {text} does not exist: PyTorch sees {torch.cuda.device_count()} GPU(s).")
        return torch.device(text if index else "cuda")
    return torch.device("cpu")
