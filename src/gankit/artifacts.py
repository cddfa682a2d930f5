"""A trained generator as a folder anyone can load: ``generator.json`` + ``generator.safetensors``.

The JSON names the family, its settings and the data's shape and attributes, which is all
that is needed to rebuild the network; the weights are safetensors (no pickle, no code).
This is the Hugging Face layout: the file pair can be shared and loaded without the run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gankit.atomic import atomic_write_bytes, atomic_write_json, sha256_bytes
from gankit.config import config_from_dict
from gankit.data.base import DataInfo
from gankit.errors import GankitError
from gankit.models.base import Generator
from gankit.models.registry import families, get_family

FORMAT = "gankit-generator/1"


def state_to_safetensors(state: dict[str, torch.Tensor]) -> bytes:
    # safetensors refuses views that share memory: each tensor is copied once, contiguous, straight to
    # the host (a clone on the GPU first would hold a second copy of the checkpoint there).
    return save_safetensors({k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
                             for k, v in state.items()})


def save_generator(folder: Path, family: str, model_cfg: Any, info: DataInfo,
                   generator: torch.nn.Module, step: int, data_spec: str = "", held_out: tuple[str, ...] = ()) -> None:
    """``held_out``: the data's images kept out of training (``TensorData.held_out``), by name."""
    weights = state_to_safetensors(generator.state_dict())
    atomic_write_bytes(folder / "generator.safetensors", weights)
    atomic_write_json(folder / "generator.json", {
        "format": FORMAT, "family": family, "step": step,
        "model_cfg": dataclasses.asdict(model_cfg), "data": info.to_dict(), "data_spec": data_spec,
        "sha256": sha256_bytes(weights), **({"held_out": list(held_out)} if held_out else {}),
    })


def require_folder(folder: Path, where: str = "") -> None:
    """A run folder that is not there is named as such (``where``: where it must be), not as a missing file."""
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise GankitError(f"Run folder {folder} {state}; pass the folder that `gankit train` wrote{where}.")


def read_json(path: Path, what: str, keys: tuple[str, ...] = ()) -> dict:
    """The JSON object in ``path``, which must hold ``keys``; ``what`` is the fix for a user."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        require_folder(path.parent)
        raise GankitError(f"{path} is missing; {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GankitError(f"{path} is not readable JSON ({e}); {what}") from None
    missing = [key for key in keys if key not in value] if isinstance(value, dict) else list(keys)
    if not isinstance(value, dict) or missing:
        raise GankitError(f"{path} is not the file gankit wrote (it lacks {', '.join(missing) or 'a JSON object'}); "
                          f"{what}")
    return value


NO_GENERATOR = ("the folder holds no finished generator (a run writes one at its first checkpoint); let the run reach "
                "it, or train it again with --out.")


def not_a_run(folder: Path) -> str:
    """The sentence for a folder that holds no run, naming the runs inside it (a folder of runs)."""
    inside = sorted(str(p.parent) for p in folder.glob("*/generator.json"))
    hint = f", such as {' or '.join(inside[:2])} inside it" if inside else ""
    return f"{folder} is not a run folder (it has no generator.json); pass a folder that `gankit train` wrote{hint}."


def read_generator_meta(folder: Path, what: str = NO_GENERATOR) -> dict:
    """``folder``'s generator.json, checked entry by entry (``what`` is the fix when it is missing)."""
    path = Path(folder) / "generator.json"
    if path.parent.is_dir() and not any((path.parent / name).exists()
                                        for name in ("generator.json", "generator.safetensors", "config.json")):
        raise GankitError(not_a_run(path.parent))  # no run at all: training it further is no fix
    meta = read_json(path, what, ("family", "model_cfg", "data"))
    if meta.get("format") != FORMAT:
        raise GankitError(f"{path} is not a {FORMAT} file; it was not written by gankit.")
    wrong = [key for key, kind in (("family", str), ("model_cfg", dict), ("data_spec", str), ("step", int))
             if key in meta and not isinstance(meta[key], kind)]
    try:
        DataInfo.from_dict(meta["data"])
    except ValueError:
        wrong.append("data")
    if wrong:
        raise GankitError(f"{path} is not the file gankit wrote (its {', '.join(wrong)} entry does not hold what "
                          "gankit writes there); copy the run folder again.")
    return meta


def built_from_file(build: Callable[[], torch.nn.Module], cfg: Any, settings: Path, what: str) -> torch.nn.Module:
    """The network ``build`` makes from ``cfg``, read from the file ``settings``: settings out of
    range, or sizes that cannot be allocated, are a damaged file, not a traceback."""
    try:
        cfg.validate()
        return build()
    except GankitError as e:
        raise GankitError(f"{settings} holds settings gankit never writes ({str(e).rstrip('.')}); "
                          "copy the run folder again.") from None
    # Sizes that cannot be allocated (RuntimeError, MemoryError), or do not fit int64 at all (torch
    # says TypeError or OverflowError for 2**63).
    except (RuntimeError, MemoryError, TypeError, OverflowError) as e:
        raise GankitError(f"{settings} describes {what} that cannot be built here "
                          f"({str(e).strip().splitlines()[0]}); copy the run folder again.") from None


def load_generator(folder: Path) -> tuple[Generator, dict]:
    """Rebuild the generator saved in ``folder`` (a run folder or a shared copy of the pair)."""
    folder = Path(folder)
    require_folder(folder)
    meta = read_generator_meta(folder)
    try:
        raw = (folder / "generator.safetensors").read_bytes()
    except OSError as e:
        raise GankitError(f"Cannot read {folder / 'generator.safetensors'} ({e.strerror}); copy the run folder "
                          "again.") from None
    if meta.get("sha256") and sha256_bytes(raw) != meta["sha256"]:
        raise GankitError(f"{folder / 'generator.safetensors'} does not match its recorded checksum; copy it again "
                          "(in the run's own folder, resuming the run writes both files again from its checkpoint).")
    if meta["family"] not in {f.name for f in families()}:  # read_generator_meta checked it is text
        raise GankitError(f"{folder / 'generator.json'} names the model {meta['family']!r:.40}, which gankit does not "
                          f"have ({', '.join(f.name for f in families())}); the file is damaged: copy the run folder "
                          "again.")
    family = get_family(meta["family"])
    cfg = config_from_dict(family.Config, meta["model_cfg"], folder / "generator.json", "model_cfg")
    info = DataInfo.from_dict(meta["data"])  # checked by read_generator_meta
    settings = folder / "generator.json"
    generator = built_from_file(lambda: family.build_generator(cfg, info), cfg, settings, "a generator")
    weights = folder / "generator.safetensors"
    try:
        state = load_safetensors(raw)
    except Exception as e:  # safetensors raises several types for a damaged file
        raise GankitError(f"{weights} is damaged ({e}); copy the run folder again.") from None
    try:
        generator.load_state_dict(state)
    except RuntimeError:  # torch lists every missing or misshapen weight, over many lines
        raise GankitError(f"{weights} does not hold the weights of the {meta['family']} generator that "
                          f"{settings} describes; copy the two files of one run together.") from None
    return generator.eval().requires_grad_(False), meta
