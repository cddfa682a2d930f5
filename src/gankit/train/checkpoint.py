"""Training checkpoints: every tensor needed to continue a run exactly, written atomically.

A checkpoint is a folder ``checkpoints/step-NNNNNN/`` with ``weights.safetensors`` (G, D and
the EMA generator), ``optimizers.safetensors``, ``rng.safetensors`` and ``state.json``. It is
written under a temporary name, every file fsynced, ``manifest.json`` (the files' sha256)
written last, then renamed into place, so a crash at any moment leaves either the complete
folder or none; loading verifies the checksums and falls back to the previous checkpoint.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors

from gankit.artifacts import state_to_safetensors
from gankit.atomic import fsync_dir, sha256_bytes, write_bytes_synced
from gankit.errors import GankitError

STEP_DIR = re.compile(r"^step-(\d{6,})$")
FILES = ("weights.safetensors", "optimizers.safetensors", "rng.safetensors", "state.json")  # what the manifest lists


@dataclass
class Checkpoint:
    step: int
    weights: dict[str, torch.Tensor]
    optimizers: dict[str, dict]  # name -> optimizer state_dict
    rng: dict[str, torch.Tensor]
    state: dict[str, Any]  # JSON-able: elapsed time, learning rates, ...


def _flatten_optimizer(prefix: str, state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        head, index, key = name.split(".", 2)
        if head == prefix:
            state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def module_weights(ckpt: Checkpoint, prefix: str) -> dict[str, torch.Tensor]:
    """The weights of one network of ``ckpt`` ("generator", "discriminator", "ema"), named as its module names them."""
    start = prefix + "."
    return {k[len(start):]: v for k, v in ckpt.weights.items() if k.startswith(start)}


def save_checkpoint(folder: Path, ckpt: Checkpoint, keep: int) -> Path:
    """Write ``ckpt`` under ``folder/step-NNNNNN`` atomically and keep the newest ``keep``."""
    require_folder(folder)
    final = folder / f"step-{ckpt.step:06d}"
    tmp = folder / f".tmp-step-{ckpt.step:06d}"
    for stale in folder.glob(".tmp-step-*"):  # left by a crash in the middle of a write
        shutil.rmtree(stale, ignore_errors=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as e:
        raise GankitError(f"Cannot create {tmp} ({e.strerror}); make the run folder writable, then resume.") from None
    try:
        _write_checkpoint_files(tmp, ckpt)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written folder behind
        raise
    if final.exists():  # a resumed run reached the same step again (its copy was damaged): replace it
        # Moved aside, not deleted first: a crash between the two renames still leaves a copy.
        aside = folder / f".old-step-{ckpt.step:06d}"
        shutil.rmtree(aside, ignore_errors=True)
        final.rename(aside)
        tmp.rename(final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        tmp.rename(final)
    fsync_dir(folder)
    for old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write_checkpoint_files(tmp: Path, ckpt: Checkpoint) -> None:
    opt_tensors: dict[str, torch.Tensor] = {}
    opt_meta: dict[str, dict] = {}
    for name, sd in ckpt.optimizers.items():
        tensors, meta = _flatten_optimizer(name, sd)
        opt_tensors.update(tensors)
        opt_meta[name] = meta
    files = {
        "weights.safetensors": state_to_safetensors(ckpt.weights),
        "optimizers.safetensors": state_to_safetensors(opt_tensors),
        "rng.safetensors": state_to_safetensors(ckpt.rng),
        "state.json": json.dumps({"step": ckpt.step, "optimizers": opt_meta, **ckpt.state}).encode(),
    }
    for name, data in files.items():
        write_bytes_synced(tmp / name, data)
    manifest = {name: sha256_bytes(data) for name, data in files.items()}
    write_bytes_synced(tmp / "manifest.json", json.dumps(manifest).encode())
    fsync_dir(tmp)


def require_folder(folder: Path) -> None:
    """A run's checkpoints folder must be a folder when anything is there at all."""
    if folder.exists() and not folder.is_dir():
        raise GankitError(f"{folder} is a file, not the run's checkpoints folder; move it away, then try again.")


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first (temporary folders are never listed)."""
    require_folder(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def read_checkpoint(path: Path) -> Checkpoint:
    """Load one checkpoint folder, verifying every file against the manifest."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        if not isinstance(manifest, dict) or any(not isinstance(manifest.get(name), str) for name in FILES):
            raise ValueError("its manifest does not list its files")
        raw = {name: (path / name).read_bytes() for name in FILES}
    except (OSError, ValueError) as e:
        raise GankitError(f"Checkpoint {path} is incomplete ({e}).") from None
    for name in FILES:
        if sha256_bytes(raw[name]) != manifest[name]:
            raise GankitError(f"Checkpoint {path} is corrupt: {name} does not match its checksum.")
    try:
        state = json.loads(raw["state.json"])
        check_state(state)
        opt_tensors = load_safetensors(raw["optimizers.safetensors"])
        optimizers = {name: _unflatten_optimizer(name, opt_tensors, meta)
                      for name, meta in state.pop("optimizers").items()}
        return Checkpoint(state.pop("step"), load_safetensors(raw["weights.safetensors"]), optimizers,
                          load_safetensors(raw["rng.safetensors"]), state)
    except Exception as e:  # json, safetensors and the unflattening raise several types for content gankit never writes
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GankitError(f"Checkpoint {path} is damaged ({reason}).") from None


def check_state(state: object) -> None:
    """Raise ValueError when ``state.json`` does not hold what ``save_checkpoint`` writes."""
    def number(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not isinstance(state, dict):
        raise ValueError("state.json is not a JSON object")
    step, optimizers = state.get("step"), state.get("optimizers")
    if not (isinstance(step, int) and not isinstance(step, bool) and step >= 0):
        raise ValueError(f"state.json's step is {step!r}, not a whole number")
    if not (isinstance(optimizers, dict) and "g" in optimizers
            and all(isinstance(m, dict) for m in optimizers.values())):
        raise ValueError("state.json does not describe G's optimizer")
    wrong = [key for key, ok in (("elapsed", number), ("lr_scale", number), ("best_fid", number),
                                 ("family", lambda v: isinstance(v, dict)), ("model", lambda v: isinstance(v, str)),
                                 ("world", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                                 ("epochs", lambda v: number(v) and 0 <= v < math.inf))
             if key in state and not ok(state[key])]
    if "elapsed" not in state or wrong:
        raise ValueError(f"state.json's {', '.join(wrong) or 'elapsed'} entry does not hold what gankit writes")


def latest_checkpoint(folder: Path) -> tuple[Checkpoint, list[str]]:
    """The newest checkpoint that verifies, and one warning line per newer one skipped."""
    problems: list[str] = []
    found = list_checkpoints(folder)
    for path in reversed(found):
        try:
            return read_checkpoint(path), [f"skipped: {problem}" for problem in problems]
        except GankitError as e:
            problems.append(str(e))
    run = folder.parent
    if (run / "generator.json").exists():  # training again there would replace a finished generator
        what = f"None of the {len(found)} checkpoints in {folder} is intact ({problems[0]})" if found else \
            f"No complete checkpoint in {folder}"
        raise GankitError(f"{what}, so the run cannot continue; its generator ({run}/generator.safetensors) "
                          "still samples and exports. To train again, choose a new --out.")
    if found:
        raise GankitError(f"None of the {len(found)} checkpoints in {folder} is intact ({problems[0]}); start "
                          f"the run again in a new folder, or delete {folder} and train with --out {run}.")
    raise GankitError(f"No complete checkpoint in {folder}: the run stopped before its first one; start it again "
                      f"with --out {run} instead of --resume.")
