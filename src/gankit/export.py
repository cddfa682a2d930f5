"""A trained generator as one file other runtimes can load: ONNX or TorchScript.

The exported graph takes ``z`` (float32, (batch, latent)) and, for conditional models,
``labels`` (int64, (batch, attributes)); it returns ``samples`` (float32, (batch, *shape)),
images in [-1, 1]. The batch axis is dynamic. InfoGAN's codes are columns of ``z`` (noise
first, then the one-hot categorical codes, then the continuous ones), so it has no label input.
A super-resolution generator (srresnet, srgan) takes ``lr`` (float32, (batch, 3, height, width),
RGB in [-1, 1]) and returns ``hr`` (batch, 3, scale x height, scale x width); batch, height and
width are all dynamic. It upscales the whole image at once: tile large images as ``gankit
upscale`` does to bound memory.

That layout, the attribute names and their values are written beside the file as
``<file>.json`` and inside it too (ONNX metadata ``gankit``, TorchScript extra file
``gankit.json``), so a consumer needs neither gankit nor the run folder.

ONNX uses torch's current exporter (``dynamo=True``, built on ``torch.export``, which needs
``onnxscript``): the TorchScript-based one warns that it is deprecated and slated for removal.
Both run offline. The TorchScript file is traced; ``torch.jit`` is deprecated but is what
TorchScript consumers (LibTorch, older serving stacks) load.
"""

from __future__ import annotations

import importlib.util
import io
import json
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from gankit.atomic import atomic_write_bytes, writable
from gankit.errors import GankitError
from gankit.models.infogan import InfoGenerator
from gankit.models.srgan import SRResNetGenerator
from gankit.pipeline import GeneratorPipeline, load

ExportFormat = Literal["onnx", "torchscript"]
SUFFIXES: dict[str, tuple[str, ...]] = {"onnx": (".onnx",), "torchscript": (".pt", ".pth")}  # suffixes naming each
FORMATS: dict[str, str] = {fmt: suffixes[0] for fmt, suffixes in SUFFIXES.items()}  # format -> default file suffix
METADATA_FORMAT = "gankit-export/1"
EXAMPLE_BATCH = 2  # torch.export treats sizes 0 and 1 as constants, so trace with a larger batch
EXAMPLE_SIDE = 12  # the side of the example low-resolution image a super-resolution graph is traced with


def default_path(run_dir: str | Path, fmt: str) -> Path:
    """RUN/generator.onnx or RUN/generator.pt."""
    return Path(run_dir) / f"generator{FORMATS[fmt]}"


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise GankitError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return fmt


def format_of(path: str | Path | None) -> str | None:
    """The format a model file's suffix names (.onnx, or .pt/.pth for TorchScript), or None."""
    suffix = Path(path).suffix.lower() if path is not None else ""
    return next((fmt for fmt, suffixes in SUFFIXES.items() if suffix in suffixes), None)


def check_suffix(out: Path, fmt: str) -> None:
    """A model file named as another format, or as its own input layout, misleads whoever opens it."""
    named = format_of(out)
    if named is not None and named != fmt:
        raise GankitError(f"--out {out} ends in {out.suffix}, which names the {named} format, but the format is "
                          f"{fmt}; end it in {FORMATS[fmt]} or give --format {named}.")
    if out.suffix.lower() == ".json":
        raise GankitError(f"--out {out} ends in .json, the name of an export's input layout; end it in {FORMATS[fmt]}.")


# --- the input layout ------------------------------------------------------------------------
def latent_segments(pipe: GeneratorPipeline) -> list[dict]:
    """The columns of ``z``: Gaussian noise, then InfoGAN's codes when the model has them."""
    G = pipe.generator
    if not isinstance(G, InfoGenerator):
        return [{"name": "noise", "start": 0, "width": G.latent_dim, "prior": "standard normal"}]
    segments = [{"name": "noise", "start": 0, "width": G.noise_dim, "prior": "standard normal"}]
    for code in G.codes.codes:
        segment = {"name": code.name, "start": G.noise_dim + code.start, "width": code.width}
        if code.categorical:
            segment.update(kind="categorical", encoding="one-hot", values=code.values, prior="uniform")
        else:
            segment.update(kind="continuous", prior="uniform [-1, 1]")
        segments.append(segment)
    return segments


def is_upscaler(pipe: GeneratorPipeline) -> bool:
    return isinstance(pipe.generator, SRResNetGenerator)


def export_metadata(pipe: GeneratorPipeline, fmt: str) -> dict:
    """What a consumer needs to feed the exported graph and read its output."""
    if is_upscaler(pipe):
        scale = pipe.generator.scale
        inputs = {"lr": {"dtype": "float32", "shape": ["batch", 3, "height", "width"], "range": [-1.0, 1.0]}}
        output = {"name": "hr", "dtype": "float32", "shape": ["batch", 3, f"{scale}*height", f"{scale}*width"],
                  "range": [-1.0, 1.0], "scale": scale}
    else:
        inputs = {"z": {"dtype": "float32", "shape": ["batch", pipe.generator.latent_dim],
                        "segments": latent_segments(pipe)}}
        if pipe.info.attributes:
            inputs["labels"] = {"dtype": "int64", "shape": ["batch", len(pipe.info.attributes)],
                                "columns": [a.to_dict() for a in pipe.info.attributes]}
        output = {"name": "samples", "dtype": "float32", "shape": ["batch", *pipe.info.shape],
                  "range": [-1.0, 1.0] if pipe.info.is_image else None}
    return {"format": METADATA_FORMAT, "model_format": fmt, "family": pipe.family,
            "step": pipe.meta.get("step"), "inputs": inputs, "output": output}


def example_inputs(pipe: GeneratorPipeline, n: int = EXAMPLE_BATCH, side: int = EXAMPLE_SIDE) -> tuple[Tensor, ...]:
    seeded = torch.Generator().manual_seed(0)
    if is_upscaler(pipe):
        return (torch.rand(n, 3, side, side + 1, generator=seeded) * 2 - 1,)  # unequal sides: no square assumed
    z = pipe.generator.sample_latent(n, seeded)
    if not pipe.info.attributes:
        return (z,)
    return z, torch.zeros(n, len(pipe.info.attributes), dtype=torch.int64)


def dynamic_axes(pipe: GeneratorPipeline) -> list[dict[int, str]]:
    """For each input, its axes that take any size: batch, and an image's height and width."""
    if is_upscaler(pipe):
        return [{0: "batch", 2: "height", 3: "width"}]
    return [{0: "batch"}] * (2 if pipe.info.attributes else 1)  # z, and labels for conditional models


def size_pinned(family: str) -> RuntimeError:
    # A bug in the family's code, not a user error: refuse to write a file that only takes one size.
    return RuntimeError(f"The {family} generator fixes its batch size or image size when exported; "
                        "it must read sizes as x.shape[i], not len(x).")


# --- the two formats ---------------------------------------------------------------------------
def onnx_bytes(pipe: GeneratorPipeline, metadata: dict) -> bytes:
    if importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnx") is None:
        raise GankitError("ONNX export needs onnx and onnxscript; install them with pip install 'gankit[export]'.")
    axes = dynamic_axes(pipe)
    dims = {name: torch.export.Dim(name) for input_axes in axes for name in input_axes.values()}
    with warnings.catch_warnings():
        # z and labels share the one batch axis, which torch reports as a name it could not reuse.
        warnings.filterwarnings("ignore", message=r".*axis name: \w+ will not be used")
        program = torch.onnx.export(pipe.generator, example_inputs(pipe), dynamo=True, verbose=False,
                                    input_names=list(metadata["inputs"]), output_names=[metadata["output"]["name"]],
                                    dynamic_shapes=tuple({i: dims[name] for i, name in a.items()} for a in axes))
    # The exporter falls back to a fixed size when the model's code pins it (len(z) does).
    shape = program.model.graph.inputs[0].shape
    if any(isinstance(shape[i], int) for i in axes[0]):
        raise size_pinned(pipe.family)
    program.model.metadata_props["gankit"] = json.dumps(metadata)
    return program.model_proto.SerializeToString()


def torchscript_bytes(pipe: GeneratorPipeline, metadata: dict) -> bytes:
    with warnings.catch_warnings():
        # The user asked for TorchScript; torch's notice that it is deprecated is no news to them.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        traced = torch.jit.trace(pipe.generator, example_inputs(pipe))
        other = example_inputs(pipe, EXAMPLE_BATCH + 1, EXAMPLE_SIDE + 3)
        try:  # tracing can record len(z) or an image size as a constant, which only other sizes reveal
            with torch.no_grad():
                pinned = traced(*other).shape != pipe.generator(*other).shape
        except RuntimeError:
            pinned = True
        if pinned:
            raise size_pinned(pipe.family)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"gankit.json": json.dumps(metadata)})
    return buffer.getvalue()


def export_generator(run_dir: str | Path, fmt: ExportFormat = "onnx", out_path: str | Path | None = None) -> Path:
    """Write the generator of ``run_dir`` as ONNX or TorchScript (default RUN/generator.onnx or
    .pt) and its input layout as ``<out_path>.json``; returns the model file's path."""
    check_format(fmt)
    pipe = load(run_dir)  # on the CPU: exported graphs are device-independent
    out = Path(out_path) if out_path is not None else default_path(run_dir, fmt)
    check_suffix(out, fmt)
    out = writable(out, "--out")  # before the slow part
    writable(sidecar_path(out), "The input layout of --out")  # RUN/generator as --out would replace generator.json
    metadata = export_metadata(pipe, fmt)
    data = onnx_bytes(pipe, metadata) if fmt == "onnx" else torchscript_bytes(pipe, metadata)
    # Each file is whole or absent; the layout goes second, so a layout beside a model is that model's.
    atomic_write_bytes(out, data)
    atomic_write_bytes(sidecar_path(out), (json.dumps(metadata, indent=2) + "\n").encode())
    return out


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")
